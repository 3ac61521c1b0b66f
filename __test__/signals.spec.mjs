// auto_close and the app's own signal handlers.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `code` in a child Node process; resolves with { code, signal, out } or rejects after ms. */
function runChild(code, ms = 8000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`child did not exit within ${ms} ms; output: ${out}`));
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out });
    });
  });
}

test('an app that handles SIGTERM with process.once and awaits shutdown() finishes it and exits by itself', { timeout: 15000 }, async () => {
  const r = await runChild(`
    const { Server } = require('.');
    const app = new Server();
    app.get('/', (req, res) => res.send('x'));
    process.once('SIGTERM', async () => { await app.shutdown(1000); console.log('shutdown done'); });
    app.listen(0, '127.0.0.1').then(() => process.kill(process.pid, 'SIGTERM'));
  `);
  assert.equal(r.signal, null, r.out);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /shutdown done/);
});

test('without a handler of the app, SIGINT still terminates the process after auto_close', { timeout: 15000 }, async () => {
  const r = await runChild(`
    const { Server } = require('.');
    const app = new Server();
    app.get('/', (req, res) => res.send('x'));
    app.listen(0, '127.0.0.1').then(() => {
      process.kill(process.pid, 'SIGINT');
      setTimeout(() => console.log('still alive'), 2000);
    });
  `);
  assert.equal(r.signal, 'SIGINT', r.out);
  assert.doesNotMatch(r.out, /still alive/);
});

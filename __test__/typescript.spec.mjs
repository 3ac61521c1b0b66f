// index.d.ts against real TypeScript code (issue 5, "Must show" 3): the typed sample app in
// __test__/types/app.ts passes `tsc --noEmit --strict`, and __test__/types/wrong.ts fails with
// exactly the errors its `// @expect TSxxxx` markers name. Uses the `typescript` devDependency.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TYPES = path.join(ROOT, '__test__', 'types');
const TSC = path.join(ROOT, 'node_modules', '.bin', 'tsc');

/** Runs tsc with `args` (bounded); resolves `{ code, out }`. */
function tsc(args, ms = 120000) {
  return new Promise((resolve, reject) => {
    const child = spawn(TSC, [...args, '--pretty', 'false'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tsc ${args.join(' ')} did not finish within ${ms} ms`));
    }, ms);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

test('tsc and Node\'s types are devDependencies (a fresh clone gets them from npm install); the sample tsconfig is strict', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  // index.d.ts references Node's types (Buffer, streams, EventEmitter): without @types/node every
  // TypeScript user, and this test, gets TS2688 "Cannot find type definition file for 'node'".
  assert.ok(pkg.devDependencies && pkg.devDependencies.typescript, 'typescript devDependency');
  assert.ok(pkg.devDependencies && pkg.devDependencies['@types/node'], '@types/node devDependency');
  assert.ok(fs.existsSync(TSC), `${TSC} missing: run npm install`);
  assert.ok(fs.existsSync(path.join(ROOT, 'node_modules', '@types', 'node', 'package.json')), '@types/node missing: run npm install');
  const config = fs.readFileSync(path.join(TYPES, 'tsconfig.json'), 'utf8');
  assert.match(config, /"strict": true/);
  assert.match(config, /"noEmit": true/);
});

test('the typed sample app (handlers, middleware, res.sse, Channel, options) compiles with --strict', { timeout: 150000 }, async () => {
  const { code, out } = await tsc(['-p', path.join(TYPES, 'tsconfig.json'), '--noEmit', '--strict']);
  assert.equal(out.trim(), '', out);
  assert.equal(code, 0, out);
});

test('deliberately wrong calls fail to compile, with exactly the expected error codes', { timeout: 150000 }, async () => {
  const source = fs.readFileSync(path.join(TYPES, 'wrong.ts'), 'utf8').split('\n');
  const expected = [];
  source.forEach((line, i) => {
    const m = /\/\/ @expect (TS\d+)\s*$/.exec(line);
    if (m) expected.push(`${i + 1} ${m[1]}`);
  });
  assert.ok(expected.length >= 10, `markers in wrong.ts: ${expected.length}`);

  const { code, out } = await tsc(['-p', path.join(TYPES, 'tsconfig.wrong.json'), '--noEmit', '--strict']);
  assert.notEqual(code, 0, `tsc accepted wrong.ts:\n${out}`);
  const errors = [...out.matchAll(/wrong\.ts\((\d+),\d+\): error (TS\d+):/g)].map((m) => `${m[1]} ${m[2]}`);
  const others = out.split('\n').filter((l) => /error TS\d+/.test(l) && !/wrong\.ts\(/.test(l));
  assert.deepEqual(others, [], `errors outside wrong.ts:\n${out}`);
  assert.deepEqual(errors.sort(), expected.sort(), out);
});

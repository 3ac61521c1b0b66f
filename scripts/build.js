#!/usr/bin/env node
// Builds the Rust addon with cargo and copies it to ./hyper-sse.node.
// Installed as a dependency (inside node_modules), cargo's target directory goes to the OS temp
// directory and is removed afterwards, so no 100+ MB build tree is left in node_modules.
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const debug = process.argv.includes('--debug');
const asDependency = root.split(path.sep).includes('node_modules');
const targetDir = asDependency
  ? fs.mkdtempSync(path.join(os.tmpdir(), 'hyper-sse-build-'))
  : path.join(root, 'target');

const args = ['build', '--lib'];
if (!debug) args.push('--release');
const result = spawnSync('cargo', args, {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CARGO_TARGET_DIR: targetDir },
});
/** Exits with `code`; as a dependency, the temporary build directory goes first. */
function fail(code) {
  if (asDependency) fs.rmSync(targetDir, { recursive: true, force: true });
  process.exit(code);
}
if (result.error) {
  console.error(`hyper-sse: could not run cargo (${result.error.message}). Install Rust (https://rustup.rs) and retry.`);
  fail(1);
}
if (result.status !== 0) fail(result.status || 1);

const profile = debug ? 'debug' : 'release';
const names = { linux: 'libhyper_sse.so', darwin: 'libhyper_sse.dylib', win32: 'hyper_sse.dll' };
const built = path.join(targetDir, profile, names[process.platform] || names.linux);
const dest = path.join(root, 'hyper-sse.node');
// Copy to a temporary name then rename, so a running process never maps a half-written file.
fs.copyFileSync(built, dest + '.tmp');
fs.renameSync(dest + '.tmp', dest);
if (asDependency) fs.rmSync(targetDir, { recursive: true, force: true });
console.log(`hyper-sse: built ${path.relative(root, dest)} (${profile})`);

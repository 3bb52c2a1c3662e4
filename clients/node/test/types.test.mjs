// types.test.mjs - the typings: ok.ts compiles, bad.ts fails on exactly its
// marked lines (tsc --noEmit against the built dist/*.d.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'types');
const tsc = join(dir, '..', '..', 'node_modules', 'typescript', 'bin', 'tsc');
const run = (file) =>
  spawnSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--skipLibCheck', '--types', 'node', join(dir, file)], { encoding: 'utf8' });

test('a correct use type-checks', () => {
  const r = run('ok.ts');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('wrong types, names and shapes are refused on each marked line', () => {
  const r = run('bad.ts');
  assert.notEqual(r.status, 0);
  const want = readFileSync(join(dir, 'bad.ts'), 'utf8').split('\n').flatMap((l, i) => (l.includes('// expect-error') ? [i + 1] : []));
  const got = [...new Set([...r.stdout.matchAll(/bad\.ts\((\d+),\d+\): error/g)].map((m) => Number(m[1])))];
  assert.deepEqual(got.sort((a, b) => a - b), want, r.stdout);
});

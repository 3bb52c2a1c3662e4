// test.mjs - the node suite for meson (tests/node): builds dist/ with tsc,
// runs test/*.test.mjs with node --test (TAP) against a real eventbusd
// ($EVENTBUSD) and ends with the project's "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = spawnSync(process.execPath, [join(pkg, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(pkg, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.log('0 passed, 1 failed (tsc)');
  process.exit(1);
}
const files = readdirSync(join(pkg, 'test')).filter((f) => f.endsWith('.test.mjs')).map((f) => join('test', f));
const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files], { cwd: pkg, encoding: 'utf8', maxBuffer: 64 << 20 });
process.stdout.write(r.stdout);
process.stderr.write(r.stderr);
const n = (k) => Number((r.stdout.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? 0);
const failed = n('fail') + n('cancelled') + (r.status !== 0 && n('fail') === 0 ? 1 : 0);
console.log(`${n('pass')} passed, ${failed} failed, ${n('skipped') + n('todo')} skipped`);
process.exit(failed ? 1 : 0);

// pack.test.mjs - `npm pack` makes a tarball that installs into an empty
// project (no network: the package has no dependencies) and imports, types included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

test('npm pack installs into an empty project and imports', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'eb-pack-'));
  try {
    const npmEnv = { ...process.env, npm_config_cache: join(tmp, 'cache'), npm_config_update_notifier: 'false' };
    const out = execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: pkg, encoding: 'utf8', env: npmEnv });
    const [{ filename, files }] = JSON.parse(out);
    assert.ok(files.some((f) => f.path === 'dist/index.d.ts'));
    assert.ok(!files.some((f) => f.path.startsWith('src/') || f.path.startsWith('test/')));
    const app = join(tmp, 'app');
    execFileSync('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', type: 'module', private: true }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', join(tmp, filename)], { cwd: app, encoding: 'utf8', env: npmEnv });
    assert.ok(existsSync(join(app, 'node_modules', '@eventbus', 'client', 'dist', 'index.d.ts')));
    const got = execFileSync(process.execPath, ['--input-type=module', '-e',
      "import { EventBus, SchemaViolationError } from '@eventbus/client'; const b = new EventBus({ url: 'http://127.0.0.1:1' }); console.log(typeof b.consume, SchemaViolationError.name);"],
      { cwd: app, encoding: 'utf8' });
    assert.equal(got.trim(), 'function SchemaViolationError');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('docs/openapi.json is generated from the current docs/openapi.yaml', () => {
  execFileSync(process.execPath, [join(pkg, 'scripts', 'openapi-json.mjs'), '--check'], { encoding: 'utf8' });
});

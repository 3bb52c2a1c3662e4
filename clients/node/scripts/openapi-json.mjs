// openapi-json.mjs - writes docs/openapi.json from docs/openapi.yaml (the
// integration harness reads the JSON: its suites are Python stdlib only).
// Usage: node scripts/openapi-json.mjs [--check]   (--check: exit 1 if stale)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs');
const text = JSON.stringify(parse(readFileSync(join(docs, 'openapi.yaml'), 'utf8')), null, 1) + '\n';
const out = join(docs, 'openapi.json');
if (process.argv.includes('--check')) {
  let old = '';
  try { old = readFileSync(out, 'utf8'); } catch { /* missing: stale */ }
  if (old !== text) {
    console.error('docs/openapi.json is stale: run node clients/node/scripts/openapi-json.mjs');
    process.exit(1);
  }
  console.log('docs/openapi.json is current');
} else {
  writeFileSync(out, text);
}

// server.mjs - a real eventbusd for the tests: free port, fresh data
// directory (or `store`: a PostgreSQL URI, see startPostgres), start/stop
// (SIGTERM, must exit 0)/kill -9/restart on the same data.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DAEMON = process.env.EVENTBUSD || join(root, 'build', 'src', 'eventbusd');

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export class Server {
  constructor(args = [], { store } = {}) {
    this.dir = mkdtempSync(join(tmpdir(), 'eb-node-'));
    this.args = args;
    this.where = store ? ['--store', store] : ['--data', join(this.dir, 'data')];
    this.proc = null;
    this.port = 0;
  }
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  async start({ samePort = false } = {}) {
    if (!samePort || !this.port) this.port = await freePort();
    const log = openSync(join(this.dir, 'server.log'), 'a');
    this.proc = spawn(DAEMON, ['--listen', `127.0.0.1:${this.port}`, ...this.where, ...this.args], {
      stdio: ['ignore', log, log],
    });
    const exited = new Promise((r) => this.proc.once('exit', (code, sig) => r({ code, sig })));
    this.exited = exited;
    for (let i = 0; i < 500; i++) {
      try {
        const r = await fetch(`${this.url}/healthz`);
        if (r.ok) return this;
      } catch {}
      if (this.proc.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`eventbusd did not start:\n${this.log()}`);
  }
  log() {
    try {
      return readFileSync(join(this.dir, 'server.log'), 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  }
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const { code } = await this.exited;
    this.proc = null;
    if (code !== 0) throw new Error(`eventbusd exited ${code} on SIGTERM\n${this.log()}`);
  }
  async kill9() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
    this.proc = null;
  }
  async cleanup() {
    await this.kill9();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A throwaway PostgreSQL cluster (tests/tools/pgcluster.py): resolves to
 * { uri, stop } once it runs, or to undefined when PostgreSQL is not
 * installed (the caller skips). stop() ends it and removes its files.
 */
export function startPostgres() {
  const tool = join(root, 'tests', 'tools', 'pgcluster.py');
  const p = spawn('python3', [tool, '--', 'sh', '-c', 'echo "URI $EB_TEST_PG_URI"; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const done = new Promise((r) => p.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/^URI (\S+)$/m);
      if (m) resolve({ uri: m[1], stop: () => (p.stdin.end(), done) });
    });
    done.then((code) => (code === 77 ? resolve(undefined) : reject(new Error(`pgcluster.py exited ${code}: ${out}`))));
  });
}

// http.ts - one JSON request to eventbusd, with the server's error answers
// turned into error classes, failing over from node to node when the client
// has several URLs. http:// goes over Node's fetch (keep-alive connections
// pooled by Node's built-in HTTP client); https:// over node:https with a
// keep-alive Agent of its own, which is where the `ca` option goes (Node's
// fetch takes no CA without the undici package, and the client has no
// runtime dependency).
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { CertificateError, ConnectionError, errorFromAnswer, TimeoutError } from './errors.js';

export interface TransportOptions {
  /**
   * Base URL of eventbusd (http:// or https://; default `$EVENTBUS_URL`), or
   * several nodes of one bus: an array, or one string with commas
   * ('http://bus-1:8470,http://bus-2:8470'). A request goes to the node that
   * answered last and moves to the next (each at most once per request) on a
   * connection error, a timeout or a 503. Several nodes on one PostgreSQL
   * database: a follower names the leader in its answers (`Eventbus-Leader`);
   * when that URL is one of the list (same scheme, host, port and path), the
   * requests after that answer go to it, the others staying as fallbacks. A
   * URL not in the list is never contacted.
   */
  url: string | readonly string[];
  /**
   * The API token, sent as `Authorization: Bearer <token>`. Default
   * `$EVENTBUS_TOKEN`; `''` sends none (and does not read the variable).
   */
  token?: string;
  /**
   * https:// only: the certificate authorities to trust instead of Node's
   * default store, as PEM text or the path of a PEM file (read once, when
   * the client is made: an unreadable file throws then). Default
   * `$EVENTBUS_CACERT`; without either, Node's default store (its bundled
   * Mozilla roots plus `NODE_EXTRA_CA_CERTS`; the system's store with
   * `node --use-openssl-ca`). `''` forces the default store.
   */
  ca?: string | Buffer;
  /** Per-request timeout in ms (long polls add their wait). Default 30000. */
  timeoutMs?: number;
  /** A fetch to use instead of the built-in transports (tests, proxies); `ca` does not apply to it. */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  headers?: Record<string, string>;
  /** A body already serialized (with its content type). */
  raw?: { body: string; contentType: string };
  /** Not safe to send twice: after a failure that may have reached the server, throw instead of moving on. */
  once?: boolean;
}

/** At most this many URLs (as libeventbus). */
const MAX_URLS = 16;

/** The URL list: an array, or a string split at commas; trailing slashes dropped. */
export function parseUrls(url: string | readonly string[]): string[] {
  const list = (typeof url === 'string' ? url.split(',') : [...url]).map((u) => u.trim().replace(/\/+$/, ''));
  if (!list.length || list.length > MAX_URLS || list.some((u) => !/^https?:\/\/[^/]/.test(u)))
    throw new TypeError(`url: 1 to ${MAX_URLS} http:// or https:// URLs expected, got ${JSON.stringify(url)}`);
  return list;
}

/**
 * The form two spellings of one node's URL share (scheme, host in lower case,
 * port, path without a trailing slash), or undefined for what is not an
 * http(s) URL: how an `Eventbus-Leader` header is matched against the list.
 */
export function urlKey(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return undefined;
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return `${u.protocol}//${u.hostname.toLowerCase()}:${port}${u.pathname.replace(/\/+$/, '')}`;
  } catch {
    return undefined;
  }
}

/** Transport failures where the request surely did not leave: nothing reached a server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
function notSent(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  return NOT_SENT.has(e.cause?.code ?? e.code ?? ''); // fetch wraps the socket's error; node:https does not
}

/** An answer as the transports hand it over: status, a header getter, the body text. */
interface Answer {
  status: number;
  header(name: string): string | null;
  text: string;
}
type Send = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal }) => Promise<Answer>;

function viaFetch(f: typeof fetch): Send {
  return async (url, init) => {
    const res = await f(url, init);
    return { status: res.status, header: (n) => res.headers.get(n), text: await res.text() };
  };
}

function viaHttps(agent: HttpsAgent): Send {
  return (url, init) =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string | number> = { ...init.headers };
      if (init.body !== undefined) headers['content-length'] = Buffer.byteLength(init.body);
      const req = httpsRequest(url, { method: init.method, headers, agent, signal: init.signal }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const header = (n: string) => {
            const v = res.headers[n.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          };
          resolve({ status: res.statusCode ?? 0, header, text: Buffer.concat(chunks).toString('utf8') });
        });
      });
      req.on('error', reject);
      req.end(init.body);
    });
}

/** The `ca` option (or $EVENTBUS_CACERT) as PEM: text as given, else the file it names. */
function loadCa(ca: string | Buffer | undefined): string | Buffer | undefined {
  if (ca === undefined) ca = process.env.EVENTBUS_CACERT;
  if (ca === undefined || ca === '') return undefined;
  if (typeof ca !== 'string' || ca.includes('-----BEGIN')) return ca;
  try {
    return readFileSync(ca);
  } catch (err) {
    throw new Error(`cannot read the CA file ${ca}: ${(err as Error).message}`, { cause: err });
  }
}

export class Transport {
  /** The nodes, in the order given. */
  readonly urls: readonly string[];
  private readonly keys: readonly (string | undefined)[];
  private current = 0;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly send: Send;

  constructor(o: TransportOptions) {
    this.urls = parseUrls(o.url);
    this.keys = this.urls.map(urlKey);
    this.headers = { accept: 'application/json' };
    const token = o.token ?? process.env.EVENTBUS_TOKEN;
    if (token) this.headers.authorization = `Bearer ${token}`;
    this.timeoutMs = o.timeoutMs ?? 30000;
    if (o.fetch) this.send = viaFetch(o.fetch);
    else {
      const plain = viaFetch(globalThis.fetch);
      const https = this.urls.some((u) => /^https:/i.test(u))
        ? viaHttps(new HttpsAgent({ keepAlive: true, ca: loadCa(o.ca) }))
        : undefined;
      this.send = (url, init) => (https && /^https:/i.test(url) ? https : plain)(url, init);
    }
  }

  /** The URL in use: the node that answered last, or the leader it named (the first before any answer). */
  get base(): string {
    return this.urls[this.current];
  }

  /**
   * Sends the request; resolves to the parsed answer body (undefined for 204), throws an EventBusError.
   * Fails over: the next node (round robin from the one that answered last, each once) after a
   * connection error, a timeout or a 503; after a failure that may have reached the server only
   * unless o.once. Each try gets the whole timeout.
   */
  async request<T>(method: string, path: string, body?: unknown, o: RequestOptions = {}): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = { ...this.headers, ...o.headers };
    let payload: string | undefined;
    if (o.raw) {
      payload = o.raw.body;
      headers['content-type'] = o.raw.contentType;
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    let res: Answer | undefined;
    let failure: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      const at = (this.current + i) % this.urls.length;
      const timeout = AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs);
      const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
      try {
        res = await this.send(this.urls[at] + path, { method, headers, body: payload, signal });
      } catch (err) {
        res = undefined;
        failure = this.failure(err, method, path, o.signal, timeout);
        if (o.signal?.aborted || (o.once && !notSent(err))) break;
        continue;
      }
      if (res.status === 503 && i + 1 < this.urls.length) continue; // not carried out: the next node
      if (res.status !== 503) this.current = this.leaderOf(res) ?? at;
      break;
    }
    if (!res) throw failure;
    const text = res.text;
    let parsed: unknown;
    if (text && (res.header('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    } else {
      parsed = text || undefined;
    }
    if (res.status >= 400) throw errorFromAnswer(res.status, parsed, res.header('retry-after'));
    return { status: res.status, body: parsed as T };
  }

  /** The list's index of the leader an answer names (`Eventbus-Leader`), if it is in the list. */
  private leaderOf(res: Answer): number | undefined {
    const named = res.header('eventbus-leader');
    if (!named || this.urls.length < 2) return undefined;
    const key = urlKey(named.trim());
    const i = key === undefined ? -1 : this.keys.indexOf(key);
    return i < 0 ? undefined : i;
  }

  private failure(err: unknown, method: string, path: string, user: AbortSignal | undefined, timeout: AbortSignal): unknown {
    if (user?.aborted) return user.reason ?? err;
    if (timeout.aborted) return new TimeoutError(`${method} ${path}: no answer in time`, 'timeout', 0, [], { cause: err });
    const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
    const code = e.cause?.code ?? e.code;
    const why = code ?? e.cause?.message ?? e.message;
    if (code && /CERT|SELF_SIGNED|ISSUER|SIGNATURE|ALTNAME/.test(code))
      return new CertificateError(`${method} ${path}: the server's certificate was refused: ${code} (${e.cause?.message ?? e.message})`, 'certificate', 0, [], { cause: err });
    return new ConnectionError(`${method} ${path}: ${why}`, 'connection', 0, [], { cause: err });
  }
}

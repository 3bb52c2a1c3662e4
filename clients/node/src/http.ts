// http.ts - one JSON request to eventbusd, with the server's error answers
// turned into error classes. http:// goes over Node's fetch (keep-alive
// connections pooled by Node's built-in HTTP client); https:// over
// node:https with a keep-alive Agent of its own, which is where the `ca`
// option goes (Node's fetch takes no CA without the undici package, and
// the client has no runtime dependency).
import { readFileSync } from 'node:fs';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { CertificateError, ConnectionError, errorFromAnswer, TimeoutError } from './errors.js';

export interface TransportOptions {
  url: string;
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
  readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly send: Send;

  constructor(o: TransportOptions) {
    this.base = o.url.replace(/\/+$/, '');
    this.headers = { accept: 'application/json' };
    const token = o.token ?? process.env.EVENTBUS_TOKEN;
    if (token) this.headers.authorization = `Bearer ${token}`;
    this.timeoutMs = o.timeoutMs ?? 30000;
    if (o.fetch) this.send = viaFetch(o.fetch);
    else if (/^https:/i.test(this.base)) this.send = viaHttps(new HttpsAgent({ keepAlive: true, ca: loadCa(o.ca) }));
    else this.send = viaFetch(globalThis.fetch);
  }

  /** Sends the request; resolves to the parsed answer body (undefined for 204), throws an EventBusError. */
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
    const timeout = AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs);
    const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
    let res: Answer;
    try {
      res = await this.send(this.base + path, { method, headers, body: payload, signal });
    } catch (err) {
      throw this.failure(err, method, path, o.signal, timeout);
    }
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

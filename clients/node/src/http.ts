// http.ts - one JSON request to eventbusd over Node's fetch (keep-alive
// connections are pooled by Node's built-in HTTP client), with the
// server's error answers turned into error classes, failing over from node
// to node when the client has several URLs.
import { ConnectionError, errorFromAnswer, TimeoutError } from './errors.js';

export interface TransportOptions {
  /**
   * Base URL of eventbusd, or several nodes of one bus: an array, or one
   * string with commas ('http://bus-1:8470,http://bus-2:8470'). A request
   * goes to the node that answered last and moves to the next (each at most
   * once per request) on a connection error, a timeout or a 503.
   */
  url: string | readonly string[];
  token?: string;
  /** Per-request timeout in ms (long polls add their wait). Default 30000. */
  timeoutMs?: number;
  /** A fetch to use instead of the global one (tests, proxies). */
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

/** fetch failures where the request surely did not leave: nothing reached a server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);
function notSent(err: unknown): boolean {
  return NOT_SENT.has((err as { cause?: { code?: string } }).cause?.code ?? '');
}

export class Transport {
  /** The nodes, in the order given. */
  readonly urls: readonly string[];
  private current = 0;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(o: TransportOptions) {
    this.urls = parseUrls(o.url);
    this.headers = { accept: 'application/json' };
    if (o.token) this.headers.authorization = `Bearer ${o.token}`;
    this.timeoutMs = o.timeoutMs ?? 30000;
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  /** The URL in use: the node that answered last (the first before any answer). */
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
    let res: Response | undefined;
    let text = '';
    let failure: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      const at = (this.current + i) % this.urls.length;
      const timeout = AbortSignal.timeout(o.timeoutMs ?? this.timeoutMs);
      const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
      try {
        res = await this.fetch(this.urls[at] + path, { method, headers, body: payload, signal });
        text = await res.text();
      } catch (err) {
        res = undefined;
        failure = this.failure(err, method, path, o.signal, timeout);
        if (o.signal?.aborted || (o.once && !notSent(err))) break;
        continue;
      }
      if (res.status === 503 && i + 1 < this.urls.length) continue; // not carried out: the next node
      if (res.status !== 503) this.current = at;
      break;
    }
    if (!res) throw failure;
    let parsed: unknown;
    if (text && (res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    } else {
      parsed = text || undefined;
    }
    if (res.status >= 400) throw errorFromAnswer(res.status, parsed);
    return { status: res.status, body: parsed as T };
  }

  private failure(err: unknown, method: string, path: string, user: AbortSignal | undefined, timeout: AbortSignal): unknown {
    if (user?.aborted) return user.reason ?? err;
    if (timeout.aborted) return new TimeoutError(`${method} ${path}: no answer in time`, 'timeout', 0, [], { cause: err });
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    return new ConnectionError(`${method} ${path}: ${why}`, 'connection', 0, [], { cause: err });
  }
}

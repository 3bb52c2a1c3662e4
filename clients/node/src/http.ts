// http.ts - one JSON request to eventbusd over Node's fetch (keep-alive
// connections are pooled by Node's built-in HTTP client), with the
// server's error answers turned into error classes.
import { ConnectionError, errorFromAnswer, TimeoutError } from './errors.js';

export interface TransportOptions {
  url: string;
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
}

export class Transport {
  readonly base: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(o: TransportOptions) {
    this.base = o.url.replace(/\/+$/, '');
    this.headers = { accept: 'application/json' };
    if (o.token) this.headers.authorization = `Bearer ${o.token}`;
    this.timeoutMs = o.timeoutMs ?? 30000;
    this.fetch = o.fetch ?? globalThis.fetch;
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
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(this.base + path, { method, headers, body: payload, signal });
      text = await res.text();
    } catch (err) {
      throw this.failure(err, method, path, o.signal, timeout);
    }
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

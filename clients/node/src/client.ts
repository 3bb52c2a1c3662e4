// client.ts - EventBus: every endpoint of the HTTP API (docs/openapi.yaml)
// as a typed method, and consume(), the worker loop (worker.ts).
import { Transport, type TransportOptions } from './http.js';
import { Worker, type ConsumeOptions, type Handler } from './worker.js';
import { ulid } from './ulid.js';
import { toJsonSchema } from './zod.js';
import type {
  AckResult, BrowseOptions, CloudEvent, Compatibility, DeadLetterPage, EventInput, EventMap, EventMapOf,
  EventOf, EventPage, ExtendResult, GroupDetail, GroupOptions, GroupPut, GroupSummary, GetEventOptions, JsonSchema, KeyStreamOptions,
  KeyStreamPage, NackOptions, NackResult,
  PublishOptions, PublishResult, PullOptions, ReplayBound, ReplayOptions, ReplayResult, SchemaCheck,
  SchemaRegistered, SchemaSummary, SchemaType, SchemaVersion, Stats, StoredEventOf, TokenSelf, ZodLike,
} from './types.js';

export interface ClientOptions extends Partial<TransportOptions> {
  /**
   * Base URL of eventbusd, http:// or https:// (default `$EVENTBUS_URL`,
   * else http://127.0.0.1:8470), or the nodes of
   * one bus: an array or a comma-separated string (up to 16). Requests fail
   * over from node to node (README, "Several servers").
   */
  url?: string | readonly string[];
}

const seg = encodeURIComponent;
/** A query string; the server does not percent-decode query values, so only what must be escaped is. */
function query(params: Record<string, string | number | undefined>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params))
    if (v !== undefined) parts.push(`${k}=${String(v).replace(/[^A-Za-z0-9\-._~:@!$'()*,;/?+]/g, encodeURIComponent)}`);
  return parts.length ? `?${parts.join('&')}` : '';
}
const time = (t: string | Date) => (t instanceof Date ? t.toISOString() : t);
const bound = (b: ReplayBound) => (b instanceof Date ? b.toISOString() : b);

/** The wire names of options whose client name differs (the rest are the same on both sides). */
const wireName: Record<string, string> = { expectedVersion: 'expected_version', deliverAt: 'deliver_at' };

/** One event; without an id it gets a ULID here, before the first try, so a copy sent again is a duplicate. */
function envelope(type: string, data: unknown, o: PublishOptions | undefined): Record<string, unknown> {
  const e: Record<string, unknown> = { type, data };
  if (o) for (const [k, v] of Object.entries(o)) if (v !== undefined) e[wireName[k] ?? k] = v instanceof Date ? v.toISOString() : v;
  if (e.id === undefined) e.id = ulid();
  return e;
}

/** The server's receipt with `key_version` as `keyVersion`, `deliver_at` as `deliverAt`. */
function receipt(r: PublishResult & { key_version?: number; deliver_at?: string }): PublishResult {
  if (r.key_version === undefined && r.deliver_at === undefined) return r;
  const { key_version, deliver_at, ...rest } = r;
  const out: PublishResult = { ...rest };
  if (key_version !== undefined) out.keyVersion = key_version;
  if (deliver_at !== undefined) out.deliverAt = deliver_at;
  return out;
}

export interface RegisterOptions {
  compatibility?: Compatibility;
  /** Passed to Zod's toJSONSchema (default: target draft-2020-12). */
  zod?: Record<string, unknown>;
}

/** The schema registry. */
export class Schemas<M extends EventMap> {
  constructor(private readonly t: Transport) {}

  /** Registers the next version of type's schema: a Zod 4 schema (converted with Zod's own toJSONSchema) or a JSON Schema. */
  async register<K extends keyof M & string>(type: K, schema: ZodLike<M[K]> | JsonSchema, o: RegisterOptions = {}): Promise<SchemaRegistered> {
    const body = await this.body(schema, o);
    return (await this.t.request<SchemaRegistered>('PUT', `/v1/schemas/${seg(type)}`, body)).body;
  }
  /** The registration checks, nothing written. */
  async check<K extends keyof M & string>(type: K, schema: ZodLike<M[K]> | JsonSchema, o: RegisterOptions = {}): Promise<SchemaCheck> {
    const body = await this.body(schema, o);
    return (await this.t.request<SchemaCheck>('POST', `/v1/schemas/${seg(type)}/check`, body)).body;
  }
  async list(): Promise<SchemaSummary[]> {
    return (await this.t.request<{ schemas: SchemaSummary[] }>('GET', '/v1/schemas')).body.schemas;
  }
  async get(type: keyof M & string): Promise<SchemaType> {
    return (await this.t.request<SchemaType>('GET', `/v1/schemas/${seg(type)}`)).body;
  }
  async version(type: keyof M & string, version: number | 'latest'): Promise<SchemaVersion> {
    return (await this.t.request<SchemaVersion>('GET', `/v1/schemas/${seg(type)}/versions/${version}`)).body;
  }
  private async body(schema: unknown, o: RegisterOptions) {
    const body: Record<string, unknown> = { schema: await toJsonSchema(schema, o.zod) };
    if (o.compatibility) body.compatibility = o.compatibility;
    return body;
  }
}

function groupBody(o: GroupOptions): Record<string, unknown> {
  const b: Record<string, unknown> = { types: o.types };
  if (o.start !== undefined) b.start = time(o.start);
  if (o.maxAttempts !== undefined) b.max_attempts = o.maxAttempts;
  if (o.ackTimeoutMs !== undefined) b.ack_timeout_ms = o.ackTimeoutMs;
  if (o.ordering !== undefined) b.ordering = o.ordering;
  if (o.backoff) {
    const bo: Record<string, number> = {};
    if (o.backoff.initialMs !== undefined) bo.initial_ms = o.backoff.initialMs;
    if (o.backoff.multiplier !== undefined) bo.multiplier = o.backoff.multiplier;
    if (o.backoff.maxMs !== undefined) bo.max_ms = o.backoff.maxMs;
    if (o.backoff.jitter !== undefined) bo.jitter = o.backoff.jitter;
    b.backoff = bo;
  }
  return b;
}

/** Consumer groups: configuration and the raw delivery calls (consume() uses them). */
export class Groups<M extends EventMap> {
  constructor(private readonly t: Transport) {}

  /** Creates the group, or updates its configuration (`created` says which). */
  async create(name: string, o: GroupOptions): Promise<GroupPut> {
    return (await this.t.request<GroupPut>('PUT', `/v1/groups/${seg(name)}`, groupBody(o))).body;
  }
  /** The same PUT as create(): the configuration is replaced. */
  update(name: string, o: GroupOptions): Promise<GroupPut> {
    return this.create(name, o);
  }
  async list(): Promise<GroupSummary[]> {
    return (await this.t.request<{ groups: GroupSummary[] }>('GET', '/v1/groups')).body.groups;
  }
  async get(name: string): Promise<GroupDetail> {
    return (await this.t.request<GroupDetail>('GET', `/v1/groups/${seg(name)}`)).body;
  }
  async delete(name: string): Promise<void> {
    await this.t.request('DELETE', `/v1/groups/${seg(name)}`);
  }
  async pause(name: string): Promise<{ group: string; paused: boolean }> {
    return (await this.t.request<{ group: string; paused: boolean }>('POST', `/v1/groups/${seg(name)}/pause`)).body;
  }
  async resume(name: string): Promise<{ group: string; paused: boolean }> {
    return (await this.t.request<{ group: string; paused: boolean }>('POST', `/v1/groups/${seg(name)}/resume`)).body;
  }
  /** Leases up to max events (long poll of waitMs). */
  async pull(name: string, o: PullOptions): Promise<EventOf<M>[]> {
    const body: Record<string, unknown> = { consumer: o.consumer };
    if (o.max !== undefined) body.max = o.max;
    if (o.waitMs !== undefined) body.wait_ms = o.waitMs;
    const r = await this.t.request<{ events: EventOf<M>[] }>('POST', `/v1/groups/${seg(name)}/pull`, body, {
      signal: o.signal,
      timeoutMs: 30000 + (o.waitMs ?? 0),
    });
    return r.body.events;
  }
  async ack(name: string, deliveryIds: string[]): Promise<AckResult> {
    return (await this.t.request<AckResult>('POST', `/v1/groups/${seg(name)}/ack`, { ids: deliveryIds })).body;
  }
  /** Failed attempts: retried after delayMs (or the backoff); `deadLetter` sends them straight to the DLQ. */
  async nack(name: string, deliveryIds: string[], o: NackOptions = {}): Promise<NackResult> {
    const body: Record<string, unknown> = { ids: deliveryIds };
    if (o.error !== undefined) body.error = o.error;
    if (o.delayMs !== undefined) body.delay_ms = o.delayMs;
    if (o.deadLetter) body.dead_letter = true;
    return (await this.t.request<NackResult>('POST', `/v1/groups/${seg(name)}/nack`, body)).body;
  }
  /** Pushes each lease's deadline to now + ms (default: the group's ack_timeout_ms). */
  async extend(name: string, deliveryIds: string[], ms?: number): Promise<ExtendResult> {
    const body: Record<string, unknown> = { ids: deliveryIds };
    if (ms !== undefined) body.ms = ms;
    return (await this.t.request<ExtendResult>('POST', `/v1/groups/${seg(name)}/extend`, body)).body;
  }
}

/** A group's dead-letter queue. */
export class DeadLetters<M extends EventMap> {
  constructor(private readonly t: Transport) {}

  async list(group: string, o: { limit?: number; after?: string } = {}): Promise<DeadLetterPage<StoredEventOf<M>>> {
    const qs = query({ limit: o.limit, after: o.after });
    return (await this.t.request<DeadLetterPage<StoredEventOf<M>>>('GET', `/v1/groups/${seg(group)}/dlq${qs}`)).body;
  }
  /** Sends dead letters (these event ids, or all) back for delivery with fresh attempts. */
  async redrive(group: string, eventIds?: string[]): Promise<number> {
    const body = eventIds ? { ids: eventIds } : {};
    return (await this.t.request<{ redriven: number }>('POST', `/v1/groups/${seg(group)}/dlq/redrive`, body)).body.redriven;
  }
  /** Purges all dead letters, or the one of this event id. */
  async purge(group: string, eventId?: string): Promise<number> {
    const qs = query({ id: eventId });
    return (await this.t.request<{ purged: number }>('DELETE', `/v1/groups/${seg(group)}/dlq${qs}`)).body.purged;
  }
}

/**
 * A client of one eventbusd. M maps event types to their data types:
 * `new EventBus<{ 'order.created': OrderCreated }>({ url })`, or
 * `EventBus.withSchemas({ 'order.created': OrderCreatedZod }, { url })`.
 */
export class EventBus<M extends EventMap = EventMap> {
  readonly schemas: Schemas<M>;
  readonly groups: Groups<M>;
  readonly dlq: DeadLetters<M>;
  /** @internal */
  readonly transport: Transport;

  constructor(o: ClientOptions = {}) {
    this.transport = new Transport({ ...o, url: o.url ?? process.env.EVENTBUS_URL ?? 'http://127.0.0.1:8470' });
    this.schemas = new Schemas<M>(this.transport);
    this.groups = new Groups<M>(this.transport);
    this.dlq = new DeadLetters<M>(this.transport);
  }

  /** A client typed by Zod schemas (z.infer of each); registerSchemas() registers them. */
  static withSchemas<S extends Record<string, ZodLike>>(schemas: S, o: ClientOptions = {}): EventBus<EventMapOf<S>> & { registerSchemas(opts?: RegisterOptions): Promise<SchemaRegistered[]> } {
    const bus = new EventBus<EventMapOf<S>>(o) as EventBus<EventMapOf<S>> & { registerSchemas(opts?: RegisterOptions): Promise<SchemaRegistered[]> };
    bus.registerSchemas = async (opts?: RegisterOptions) => {
      const out: SchemaRegistered[] = [];
      for (const [type, s] of Object.entries(schemas)) out.push(await bus.schemas.register(type, s as never, opts));
      return out;
    };
    return bus;
  }

  /** The URL in use: the node that answered last (the first before any answer). */
  get url(): string {
    return this.transport.base;
  }

  /** Publishes one event; resolves once it is durable. */
  async publish<K extends keyof M & string>(type: K, data: M[K], o?: PublishOptions): Promise<PublishResult> {
    return receipt((await this.transport.request<PublishResult>('POST', '/v1/events', envelope(type, data, o))).body);
  }

  /** Publishes up to 1000 events atomically: all are written, or none (the error lists every fault by index). */
  async publishBatch(events: EventInput<M>[]): Promise<PublishResult[]> {
    const body = events.map(({ type, data, ...o }) => envelope(type, data, o));
    return (await this.transport.request<{ results: PublishResult[] }>('POST', '/v1/events/batch', body)).body.results.map(receipt);
  }

  /** Publishes CloudEvents 1.0 (structured mode; an array is one atomic batch). */
  async publishCloudEvents(events: CloudEvent | CloudEvent[]): Promise<PublishResult[]> {
    if (Array.isArray(events)) {
      const raw = { body: JSON.stringify(events), contentType: 'application/cloudevents-batch+json' };
      return (await this.transport.request<{ results: PublishResult[] }>('POST', '/v1/events/batch', undefined, { raw })).body.results.map(receipt);
    }
    const raw = { body: JSON.stringify(events), contentType: 'application/cloudevents+json' };
    return [receipt((await this.transport.request<PublishResult>('POST', '/v1/events', undefined, { raw })).body)];
  }

  /**
   * One event by id: the newest with it, or with `source` the one from that source
   * (CloudEvents ids are unique per source; `source: ''` is an event published without one).
   */
  async event(id: string, o: GetEventOptions = {}): Promise<StoredEventOf<M>> {
    // The source is percent-decoded by the server ('+' is a space), so it is encoded whole.
    const qs = o.source === undefined ? '' : `?source=${encodeURIComponent(o.source)}`;
    return (await this.transport.request<StoredEventOf<M>>('GET', `/v1/events/${seg(id)}${qs}`)).body;
  }

  /** One page of the log, oldest first. */
  async events(o: BrowseOptions = {}): Promise<EventPage<StoredEventOf<M>>> {
    const qs = query({
      type: o.type,
      since: o.since === undefined ? undefined : time(o.since),
      until: o.until === undefined ? undefined : time(o.until),
      after_seq: o.afterSeq,
      limit: o.limit,
    });
    return (await this.transport.request<EventPage<StoredEventOf<M>>>('GET', `/v1/events${qs}`)).body;
  }

  /** Every event of the range, page by page. */
  async *browse(o: BrowseOptions = {}): AsyncGenerator<StoredEventOf<M>> {
    let after = o.afterSeq;
    for (;;) {
      const page = await this.events({ ...o, afterSeq: after });
      yield* page.events;
      if (page.next_after_seq === null) return;
      after = page.next_after_seq;
    }
  }

  /** One page of a key's stream, in version order (the work is proportional to the page, not the log). */
  async keyStream(key: string, o: KeyStreamOptions = {}): Promise<KeyStreamPage<StoredEventOf<M>>> {
    // The key is percent-decoded by the server ('+' is a space), so it is encoded whole.
    const qs = `?key=${encodeURIComponent(key)}${query({ from_version: o.fromVersion, limit: o.limit }).replace('?', '&')}`;
    return (await this.transport.request<KeyStreamPage<StoredEventOf<M>>>('GET', `/v1/events${qs}`)).body;
  }

  /** A key's stream page by page from fromVersion to its current end: `for await (const page of bus.stream(key))`. */
  async *stream(key: string, o: KeyStreamOptions = {}): AsyncGenerator<KeyStreamPage<StoredEventOf<M>>> {
    let from = o.fromVersion;
    for (;;) {
      const page = await this.keyStream(key, { ...o, fromVersion: from });
      if (!page.events.length) return;
      yield page;
      from = page.next_from_version;
    }
  }

  /** Queues a range of the log again for this group only. */
  async replay(group: string, o: ReplayOptions): Promise<ReplayResult> {
    const body: Record<string, unknown> = { since: bound(o.since) };
    if (o.until !== undefined) body.until = bound(o.until);
    if (o.types) body.types = o.types;
    return (await this.transport.request<ReplayResult>('POST', `/v1/groups/${seg(group)}/replay`, body)).body;
  }

  async stats(): Promise<Stats> {
    return (await this.transport.request<Stats>('GET', '/v1/stats')).body;
  }

  /** True when the server answers its health check. */
  async health(): Promise<boolean> {
    try {
      await this.transport.request('GET', '/healthz', undefined, { timeoutMs: 5000 });
      return true;
    } catch {
      return false;
    }
  }

  /** The Prometheus metrics text. */
  async metrics(): Promise<string> {
    return (await this.transport.request<string>('GET', '/metrics')).body;
  }

  /** The calling token: name, scopes, expiry (`GET /v1/tokens/self`; any valid token), or `{ auth: 'none' }` when the server checks none. */
  async tokenSelf(): Promise<TokenSelf> {
    return (await this.transport.request<TokenSelf>('GET', '/v1/tokens/self')).body;
  }

  /**
   * Runs handler on the group's events until opts.signal aborts (or
   * worker.close()): long polls, up to `concurrency` handlers at once,
   * successes acked in batches, a thrown error nacked with its message (a NonRetryableError
   * dead-lettered at once),
   * leases of slow handlers extended, connection errors and 503s ridden
   * through with backoff. `worker.closed` resolves once stopped cleanly.
   */
  consume<K extends keyof M & string = keyof M & string>(group: string, handler: Handler<EventOf<M, K>>, o: ConsumeOptions<K> = {}): Worker<EventOf<M, K>> {
    return new Worker<EventOf<M, K>>(this.groups as unknown as Groups<EventMap>, group, handler, o);
  }
}

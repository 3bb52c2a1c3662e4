// types.ts - the shapes the server takes and answers (docs/openapi.yaml),
// and the type-map machinery that types events by their `type`.

/** Event type name -> the type of its `data`. */
export type EventMap = Record<string, unknown>;

/** Anything with a Zod 4 schema's inferred output type. */
export interface ZodLike<T = unknown> {
  _zod: { output: T };
}
/** The data type a Zod schema validates. */
export type InferZod<S> = S extends { _zod: { output: infer T } } ? T : unknown;
/** The event map of a record of Zod schemas. */
export type EventMapOf<S extends Record<string, ZodLike>> = { [K in keyof S]: InferZod<S[K]> };

/** A JSON Schema document (2020-12 by default; draft-07 with its `$schema`). */
export type JsonSchema = Record<string, unknown> | boolean;

export interface PublishOptions {
  /** Client-chosen id: a repeat within the dedupe window writes nothing. */
  id?: string;
  /** Ordering key (groups with ordering "key" deliver one at a time per key). */
  key?: string;
  source?: string;
  subject?: string;
  correlationId?: string;
  causationId?: string;
  /** The schema version to validate against (default: the latest). */
  version?: number;
  /**
   * Optimistic concurrency (needs `key`): the key's current version (its last
   * event's keyVersion), 0 = the key must not exist yet, -1 or absent = no check.
   * A mismatch writes nothing and throws VersionConflictError.
   */
  expectedVersion?: number;
  /**
   * Delayed delivery: stored now, but no consumer group gets it before this
   * time (a Date or RFC 3339 text; the past means now). At most the server's
   * --max-delay (30 days) ahead, else InvalidRequestError naming /deliver_at.
   */
  deliverAt?: Date | string;
  /** Delayed delivery after a duration with a unit ("500ms", "90s", "15m", "2h", "7d"); not with deliverAt. */
  delay?: string;
  datacontenttype?: string;
  extensions?: Record<string, unknown>;
}

/** One event of a batch. */
export type EventInput<M extends EventMap, K extends keyof M & string = keyof M & string> = {
  [T in K]: { type: T; data: M[T] } & PublishOptions;
}[K];

export interface PublishResult {
  id: string;
  seq: number;
  time: string;
  /** A repeat of a client-chosen id: nothing written. */
  duplicate?: true;
  /** Keyed events: the event's version within its key (1, 2, 3 ...). */
  keyVersion?: number;
  /** Delayed events: when groups get it (RFC 3339). */
  deliverAt?: string;
}

/** A stored event, its data typed by its type. */
export interface StoredEvent<T extends string = string, D = unknown> {
  seq: number;
  time: string;
  id: string;
  type: T;
  source?: string;
  key?: string;
  /** Keyed events: the event's version within its key. */
  key_version?: number;
  /** Delayed events: when groups get it (RFC 3339). */
  deliver_at?: string;
  /** A delayed event as a group gets it: the seq its publish answered (seq is where it was appended when due). */
  published_seq?: number;
  version?: number;
  correlationId: string;
  causationId?: string;
  subject?: string;
  datacontenttype?: string;
  extensions?: Record<string, unknown>;
  data: D;
}

export interface Delivery {
  /** Opaque; names this attempt (an ack of an earlier attempt is refused). */
  id: string;
  attempt: number;
  deadline: string;
}

/** A leased event: the event and its delivery. */
export type DeliveredEvent<T extends string = string, D = unknown> = StoredEvent<T, D> & { delivery: Delivery };

/** The union of the map's events, discriminated by `type`. */
export type EventOf<M extends EventMap, K extends keyof M = keyof M> = {
  [T in K & string]: DeliveredEvent<T, M[T]>;
}[K & string];
export type StoredEventOf<M extends EventMap, K extends keyof M = keyof M> = {
  [T in K & string]: StoredEvent<T, M[T]>;
}[K & string];

export interface EventPage<E> {
  events: E[];
  next_after_seq: number | null;
}

/** One page of a key's stream (GET /v1/events?key=). */
export interface KeyStreamPage<E> {
  events: E[];
  /** The key's current version (0: no such key). */
  key_version: number;
  /** The fromVersion of the next page (an empty page means the end). */
  next_from_version: number;
}
export interface GetEventOptions {
  /** Only the event with the id from this source ('': published without a source); absent: the newest with the id. */
  source?: string;
}

export interface KeyStreamOptions {
  /** First version to read (default: the oldest retained). */
  fromVersion?: number;
  /** Events per page, 1-1000 (default 100). */
  limit?: number;
}

export interface BrowseOptions {
  type?: string;
  /** RFC 3339, or a duration back from now (`30s`, `15m`, `2h`, `7d`). */
  since?: string | Date;
  until?: string | Date;
  afterSeq?: number;
  limit?: number;
}

export type Compatibility = 'backward' | 'forward' | 'full' | 'none';

export interface SchemaRegistered {
  type: string;
  version: number;
  compatibility: Compatibility;
  existing?: true;
}
export interface SchemaChange {
  path: string;
  message: string;
  undecidable?: true;
}
export interface SchemaCheck {
  compatible: boolean;
  compatibility: Compatibility;
  version: number;
  existing?: true;
  changes: SchemaChange[];
}
export interface SchemaVersion {
  type: string;
  version: number;
  registered_at: string;
  schema: JsonSchema;
}
export interface SchemaSummary {
  type: string;
  compatibility: Compatibility;
  versions: number[];
}
export interface SchemaType extends SchemaSummary {
  latest: SchemaVersion;
}

export interface Backoff {
  initialMs?: number;
  multiplier?: number;
  maxMs?: number;
  jitter?: number;
}
export interface GroupOptions {
  /** Exact names, `prefix.*` or `*`. */
  types: string[];
  /** `latest` (default), `earliest` or an RFC 3339 time; used at creation only. */
  start?: 'latest' | 'earliest' | string | Date;
  /** Deliveries before the dead-letter queue (4 = 1 delivery + 3 retries). */
  maxAttempts?: number;
  backoff?: Backoff;
  ackTimeoutMs?: number;
  ordering?: 'none' | 'key';
}
export interface GroupConfig {
  types: string[];
  start: string;
  max_attempts: number;
  backoff: { initial_ms: number; multiplier: number; max_ms: number; jitter: number };
  ack_timeout_ms: number;
  ordering: 'none' | 'key';
}
export interface GroupPut {
  group: string;
  created: boolean;
  config: GroupConfig;
}
export interface GroupSummary {
  name: string;
  paused: boolean;
  lag: number;
  /** True while the lag of a group with a content filter is being counted,
   * off the request path (after its creation, a config change or a restart):
   * lag (and ready) are then a lower bound, exact once this is false. */
  lag_counting: boolean;
  /** Delayed events of the group's types not due yet (not in lag). */
  delayed?: number;
  in_flight: number;
  retry_scheduled: number;
  dead_letters: number;
  /** Waiting for a pull, what a replay queued included (lag = ready + in_flight + retry_scheduled + blocked_by_key). */
  ready: number;
}
export interface GroupDetail extends GroupSummary {
  config: GroupConfig;
  position: { cursor: number; head: number };
  blocked_by_key: number;
  oldest_unacked_age_ms: number;
  consumers: { name: string; last_pull: string; in_flight: number }[];
  counters: Record<
    'delivered' | 'acked' | 'nacked' | 'expired' | 'redelivered' | 'dead_lettered' | 'redriven' | 'replayed' | 'purged' | 'retention_skipped',
    number
  >;
}

export interface PullOptions {
  consumer: string;
  max?: number;
  waitMs?: number;
  signal?: AbortSignal;
}
export interface AckResult { acked: number; unknown: string[] }
export interface NackOptions {
  error?: string;
  delayMs?: number;
  /** A failure no retry can fix: straight to the dead-letter queue. */
  deadLetter?: boolean;
}
export interface NackResult { nacked: number; unknown: string[] }
export interface ExtendResult { extended: number; unknown: string[] }

export interface DeadLetter<E = StoredEvent> {
  event: E;
  error: string;
  attempts: number;
  consumer?: string;
  /** The last failure (= last_failed_at). */
  failed_at: string;
  /** When the first attempt failed (across redrives too). */
  first_failed_at: string;
  last_failed_at: string;
  /** The last few failures (up to 5), oldest first. */
  errors: DeadLetterFailure[];
}
export interface DeadLetterFailure {
  attempt: number;
  at: string;
  consumer?: string;
  error: string;
}
export interface DeadLetterPage<E = StoredEvent> {
  dead_letters: DeadLetter<E>[];
  next: string | null;
}

/** A replay bound: a duration ago (`2h`), an RFC 3339 time, a Date or a seq. */
export type ReplayBound = string | Date | { seq: number };
export interface ReplayOptions {
  since: ReplayBound;
  until?: ReplayBound;
  types?: string[];
}
export interface ReplayResult { requeued: number; expired: number }

export interface Stats {
  events: {
    /** Events in the log (counted from it at start; survives a restart). */
    published: number;
    /** Per process, from 0 at each start. */
    published_since_start: number;
    duplicates_since_start: number;
    schema_rejected_since_start: number;
    first_seq: number;
    head_seq: number;
    bytes: number;
    segments: number;
    publish_p50_ms: number;
    publish_p99_ms: number;
    /** At most 1,000 types by name, the rest under "_other". */
    types: Record<string, { published: number; published_since_start: number }>;
    /** Delayed events: waiting, handed to groups and removed by retention first since start, the earliest time. */
    delayed?: { waiting: number; released_since_start: number; expired_since_start: number; next: string | null };
  };
  groups: GroupDetail[];
}

/** A CloudEvent 1.0 in structured JSON form. */
export interface CloudEvent<D = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject?: string;
  datacontenttype?: string;
  time?: string;
  data?: D;
  [extension: string]: unknown;
}

/** GET /v1/tokens/self: the calling token, or that the server checks none (`--auth none`: every route open). */
export type TokenSelf =
  | { auth: 'none' }
  | {
      auth: 'token';
      name: string;
      scopes: string[];
      /** Milliseconds since the epoch. */
      created: number;
      /** Milliseconds since the epoch; null: never. */
      expires: number | null;
      expired: false;
    };

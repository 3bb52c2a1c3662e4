// worker.ts - consume(): the worker loop over one consumer group.
//
// One pull at a time (a long poll for as many events as there are free
// handler slots); each event runs its handler at once; results are queued
// and sent by one flusher (all successes that finished meanwhile in one
// ack, failures in one nack per error message; a NonRetryableError's nack
// has dead_letter: true, so the event goes straight to the DLQ), so acks batch themselves
// under load and cost nothing extra when idle. A ticker extends the leases
// of handlers past half their lease. Connection errors, 5xx and 503 are
// retried with capped exponential backoff; a 404 (the group is gone) or
// another 4xx stops the worker with that error.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { EventBusError, NonRetryableError, NotFoundError } from './errors.js';
import type { Groups } from './client.js';
import type { DeliveredEvent, EventMap } from './types.js';

export interface HandlerContext {
  /** Aborted when the worker is asked to stop (the handler may finish early). */
  signal: AbortSignal;
}
export type Handler<E> = (event: E, ctx: HandlerContext) => unknown;

export interface ConsumeOptions<K extends string = string> {
  /** Handlers running at once (and events leased at once). Default 10. */
  concurrency?: number;
  /** This consumer's name in the group. Default host-pid-random. */
  consumer?: string;
  /** Aborting it stops the worker: no new pulls, running handlers finish, their results are sent. */
  signal?: AbortSignal;
  /** Long-poll wait of each pull, ms. Default 20000. */
  waitMs?: number;
  /** Most delivery ids per ack request. Default 1000. */
  ackBatch?: number;
  /** Backoff after a connection error or 5xx: first and longest wait, ms. Default 100 and 5000. */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** Narrows the handler's event type to these types (typing only; the group decides delivery). */
  types?: K[];
  /** Told of every error the worker rides through (connection, 5xx, a result it could not send). */
  onError?: (err: unknown) => void;
  /** Told of events whose ack the server confirmed (durable). */
  onAck?: (events: DeliveredEvent[]) => void;
}

export interface WorkerStats {
  delivered: number;
  acked: number;
  nacked: number;
  extended: number;
  /** Acks or nacks the server no longer knew (lease expired or server restarted: redelivered). */
  stale: number;
  errors: number;
}

interface Lease {
  ev: DeliveredEvent;
  deadline: number;
  leaseMs: number;
}

const sleepAbortable = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

const DL_PREFIX = 'D';
const RETRY_PREFIX = 'R';
/** A NonRetryableError (or any error marked `nonRetryable`, across copies of this package). */
const isNonRetryable = (err: unknown) => err instanceof NonRetryableError || (err as { nonRetryable?: unknown } | null)?.nonRetryable === true;

function messageOf(err: unknown): string {
  const m = err instanceof Error ? err.message || err.name : String(err);
  return m.length > 1000 ? m.slice(0, 1000) : m;
}

export class Worker<E> {
  /** Resolves when the worker stopped cleanly; rejects with the error that stopped it. */
  readonly closed: Promise<void>;
  readonly consumer: string;
  readonly stats: WorkerStats = { delivered: 0, acked: 0, nacked: 0, extended: 0, stale: 0, errors: 0 };

  private readonly concurrency: number;
  private readonly waitMs: number;
  private readonly ackBatch: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly stop = new AbortController();
  private readonly leases = new Map<string, Lease>();
  private inFlight = 0;
  private slotWaiter: (() => void) | null = null;
  private acks: DeliveredEvent[] = [];
  /** Failures by message; dead-letter ones (NonRetryableError) under a DL_PREFIX'ed key. */
  private nacks = new Map<string, DeliveredEvent[]>();
  private flushing: Promise<void> | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private tickerMs = 0;
  private fatal: unknown = null;

  constructor(
    private readonly groups: Groups<EventMap>,
    private readonly group: string,
    private readonly handler: Handler<E>,
    private readonly o: ConsumeOptions<string>,
  ) {
    this.concurrency = Math.max(1, Math.min(o.concurrency ?? 10, 1000));
    this.waitMs = o.waitMs ?? 20000;
    this.ackBatch = Math.max(1, Math.min(o.ackBatch ?? 1000, 10000));
    this.retryInitialMs = o.retryInitialMs ?? 100;
    this.retryMaxMs = o.retryMaxMs ?? 5000;
    this.consumer = o.consumer ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    if (o.signal) {
      if (o.signal.aborted) this.stop.abort();
      else o.signal.addEventListener('abort', () => this.stop.abort(), { once: true });
    }
    this.stop.signal.addEventListener('abort', () => this.slotWaiter?.(), { once: true });
    this.closed = this.run();
    this.closed.catch(() => {}); // rejection is for whoever awaits it
  }

  /** Stops the worker as an abort of opts.signal does; resolves like `closed`. */
  close(): Promise<void> {
    this.stop.abort();
    return this.closed;
  }

  private async run(): Promise<void> {
    let backoff = this.retryInitialMs;
    try {
      while (!this.stop.signal.aborted && !this.fatal) {
        if (this.inFlight >= this.concurrency) {
          await new Promise<void>((r) => (this.slotWaiter = r));
          this.slotWaiter = null;
          continue;
        }
        let events: DeliveredEvent[];
        try {
          events = (await this.groups.pull(this.group, {
            consumer: this.consumer,
            max: this.concurrency - this.inFlight,
            waitMs: this.waitMs,
            signal: this.stop.signal,
          })) as DeliveredEvent[];
          backoff = this.retryInitialMs;
        } catch (err) {
          if (this.stop.signal.aborted) break;
          if (!(err instanceof EventBusError) || !err.retryable) throw err;
          this.report(err);
          await sleepAbortable(backoff * (0.8 + 0.4 * Math.random()), this.stop.signal);
          backoff = Math.min(backoff * 2, this.retryMaxMs);
          continue;
        }
        for (const ev of events) this.start(ev);
      }
    } catch (err) {
      this.fatal = err;
    }
    while (this.inFlight > 0) {
      await new Promise<void>((r) => (this.slotWaiter = r));
      this.slotWaiter = null;
    }
    await this.flush();
    if (this.ticker) clearInterval(this.ticker);
    if (this.fatal) throw this.fatal;
  }

  private start(ev: DeliveredEvent): void {
    this.stats.delivered++;
    this.inFlight++;
    const now = Date.now();
    const deadline = Date.parse(ev.delivery.deadline);
    const leaseMs = Math.max(100, deadline - now);
    this.leases.set(ev.delivery.id, { ev, deadline, leaseMs });
    if (!this.ticker || leaseMs / 4 < this.tickerMs) this.startTicker(leaseMs);
    let result: unknown;
    try {
      result = this.handler(ev as E, { signal: this.stop.signal });
    } catch (err) {
      this.done(ev, err, true);
      return;
    }
    if (result && typeof (result as Promise<unknown>).then === 'function')
      (result as Promise<unknown>).then(() => this.done(ev, null, false), (err) => this.done(ev, err, true));
    else this.done(ev, null, false);
  }

  private done(ev: DeliveredEvent, err: unknown, failed: boolean): void {
    this.leases.delete(ev.delivery.id);
    if (failed) {
      const msg = (isNonRetryable(err) ? DL_PREFIX : RETRY_PREFIX) + messageOf(err);
      const list = this.nacks.get(msg);
      if (list) list.push(ev);
      else this.nacks.set(msg, [ev]);
    } else {
      this.acks.push(ev);
    }
    this.inFlight--;
    this.slotWaiter?.();
    if (!this.flushing) this.flushing = new Promise<void>((r) => setImmediate(r)).then(() => this.flushLoop());
  }

  /** Waits until every queued result is sent (or given up). */
  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    let backoff = this.retryInitialMs;
    let failures = 0;
    while (this.acks.length || this.nacks.size) {
      try {
        if (this.acks.length) {
          const batch = this.acks.slice(0, this.ackBatch);
          const r = await this.groups.ack(this.group, batch.map((e) => e.delivery.id));
          this.acks.splice(0, batch.length);
          this.stats.acked += r.acked;
          this.stats.stale += r.unknown.length;
          const unknown = new Set(r.unknown);
          const ok = unknown.size ? batch.filter((e) => !unknown.has(e.delivery.id)) : batch;
          if (ok.length) this.o.onAck?.(ok);
        } else {
          const [msg, batch] = this.nacks.entries().next().value as [string, DeliveredEvent[]];
          const r = await this.groups.nack(this.group, batch.map((e) => e.delivery.id), {
            error: msg.slice(1),
            deadLetter: msg[0] === DL_PREFIX,
          });
          this.nacks.delete(msg);
          this.stats.nacked += r.nacked;
          this.stats.stale += r.unknown.length;
        }
        backoff = this.retryInitialMs;
        failures = 0;
      } catch (err) {
        this.report(err);
        const retryable = err instanceof EventBusError && err.retryable;
        // A group deleted, a bad request, or a server gone for good while stopping: drop the results
        // (the events are delivered again: at-least-once).
        if (!retryable || err instanceof NotFoundError || (this.stop.signal.aborted && ++failures > 20)) {
          this.acks = [];
          this.nacks.clear();
          break;
        }
        await new Promise((r) => setTimeout(r, backoff * (0.8 + 0.4 * Math.random())));
        backoff = Math.min(backoff * 2, this.retryMaxMs);
      }
    }
    this.flushing = null;
  }

  private startTicker(leaseMs: number): void {
    if (this.ticker) clearInterval(this.ticker);
    this.tickerMs = Math.max(25, Math.min(5000, Math.floor(leaseMs / 4)));
    this.ticker = setInterval(() => void this.extendDue(), this.tickerMs);
    this.ticker.unref();
  }

  /** Extends the leases of handlers past half their lease. */
  private async extendDue(): Promise<void> {
    const now = Date.now();
    const due: Lease[] = [];
    for (const l of this.leases.values()) if (l.deadline - now < l.leaseMs / 2) due.push(l);
    if (!due.length) return;
    for (const l of due) l.deadline = now + l.leaseMs; // no second extend while this one is out
    try {
      const r = await this.groups.extend(this.group, due.map((l) => l.ev.delivery.id), Math.max(100, Math.round(due[0].leaseMs)));
      this.stats.extended += r.extended;
    } catch (err) {
      for (const l of due) l.deadline = now; // try again next tick
      this.report(err);
    }
  }

  private report(err: unknown): void {
    this.stats.errors++;
    this.o.onError?.(err);
  }
}

// index.ts - @eventbus/client: a typed client for eventbusd (see README.md).
export { EventBus, Schemas, Groups, DeadLetters } from './client.js';
export type { ClientOptions, RegisterOptions } from './client.js';
export { Worker } from './worker.js';
export type { ConsumeOptions, Handler, HandlerContext, WorkerStats } from './worker.js';
export * from './errors.js';
export * from './types.js';
export { toJsonSchema } from './zod.js';
export { toCloudEvent } from './cloudevents.js';

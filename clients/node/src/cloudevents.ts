// cloudevents.ts - a stored or delivered event as a CloudEvent 1.0
// (structured JSON), the mapping of docs/api.md read backwards.
import type { CloudEvent, StoredEvent } from './types.js';

export function toCloudEvent<D>(e: StoredEvent<string, D>): CloudEvent<D> {
  const ce: CloudEvent<D> = {
    ...(e.extensions ?? {}),
    specversion: '1.0',
    id: e.id,
    source: e.source ?? '/eventbus',
    type: e.type,
    time: e.time,
    data: e.data,
  };
  if (e.subject !== undefined) ce.subject = e.subject;
  if (e.datacontenttype !== undefined) ce.datacontenttype = e.datacontenttype;
  if (e.key !== undefined) ce.partitionkey = e.key;
  if (e.correlationId !== undefined) ce.correlationid = e.correlationId;
  if (e.causationId !== undefined) ce.causationid = e.causationId;
  if (e.version !== undefined) ce.schemaversion = e.version;
  ce.sequence = String(e.seq);
  return ce;
}

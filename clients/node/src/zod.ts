// zod.ts - a Zod 4 schema to the JSON Schema the registry takes, with Zod's
// own converter (the schema's toJSONSchema, else zod's z.toJSONSchema):
// draft 2020-12, as the server validates it. zod-to-json-schema is not
// used: it emits an empty schema for Zod 4.
import type { JsonSchema } from './types.js';

export function isZodSchema(s: unknown): s is { _zod: unknown } {
  return typeof s === 'object' && s !== null && '_zod' in s;
}

function isZod3(s: unknown): boolean {
  return typeof s === 'object' && s !== null && '_def' in s && 'safeParse' in s && !('_zod' in s);
}

/** The JSON Schema of s: a Zod 4 schema is converted, a JSON Schema passes as is. */
export async function toJsonSchema(s: unknown, zodOptions?: Record<string, unknown>): Promise<JsonSchema> {
  if (isZod3(s))
    throw new TypeError('a Zod 3 schema cannot be converted: use Zod 4 (zod@^4) or pass a JSON Schema');
  if (!isZodSchema(s)) {
    if (typeof s === 'boolean' || (typeof s === 'object' && s !== null && !Array.isArray(s))) return s as JsonSchema;
    throw new TypeError('a schema is a Zod 4 schema, a JSON Schema object or a boolean');
  }
  const opts = { target: 'draft-2020-12', ...zodOptions };
  const own = (s as { toJSONSchema?: (o: unknown) => JsonSchema }).toJSONSchema;
  if (typeof own === 'function') return own.call(s, opts);
  const mod = (await import('zod' as string)) as { z?: { toJSONSchema: (s: unknown, o: unknown) => JsonSchema }; toJSONSchema?: (s: unknown, o: unknown) => JsonSchema };
  const fn = mod.toJSONSchema ?? mod.z?.toJSONSchema;
  if (!fn) throw new TypeError('this zod has no toJSONSchema: use zod@^4');
  return fn(s, opts);
}

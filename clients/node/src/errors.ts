// errors.ts - the error classes: one per server error code, each with the
// server's `code`, HTTP `status` and `details`, plus the client's own
// (connection failures, timeouts) and the handler's NonRetryableError.

/** One entry of an error's `details` (the field, the violation, the change). */
export interface ErrorDetail {
  field?: string;
  index?: number;
  path?: string;
  schemaPath?: string;
  message?: string;
  undecidable?: boolean;
  /** version_conflict: the key's current version. */
  current_version?: number;
  /** forbidden: the scope the token lacks. */
  scope?: string;
}

/** Any error answer of the server, or a failure to reach it. */
export class EventBusError extends Error {
  /** The server's error code (`schema_violation`, ...) or the client's (`connection`, `timeout`). */
  readonly code: string;
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  readonly details: ErrorDetail[];
  constructor(message: string, code: string, status: number, details: ErrorDetail[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = status;
    this.details = details;
  }
  /** Worth trying again later: no answer, 503 or 5xx. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500;
  }
}

export class MalformedJsonError extends EventBusError {}
export class InvalidRequestError extends EventBusError {}
export class InvalidSchemaError extends EventBusError {}
export class BadRequestError extends EventBusError {}
export class NotFoundError extends EventBusError {}
export class MethodNotAllowedError extends EventBusError {}
export class ConflictError extends EventBusError {}
/** A publish's expectedVersion is not its key's current version: nothing was written. */
export class VersionConflictError extends ConflictError {
  /** The key's current version (of the first conflicting event; -1 if the server did not say). */
  get currentVersion(): number {
    const v = this.details.find((d) => typeof d.current_version === 'number')?.current_version;
    return v ?? -1;
  }
}
/** A schema breaks its type's compatibility mode; `details` lists each breaking change. */
export class IncompatibleSchemaError extends ConflictError {}
/** A bound of the server (--max-groups, --max-schemas) would be passed: nothing written. */
export class LimitExceededError extends ConflictError {}
/** The request did not arrive within the server's header or body timeout (408). */
export class RequestTimeoutError extends EventBusError {}
/** A schema's `$schema` names a draft the server does not validate (2020-12 and draft-07 only). */
export class UnsupportedSchemaError extends EventBusError {}
export class PayloadTooLargeError extends EventBusError {}
export class UnsupportedMediaTypeError extends EventBusError {}
/** Event data breaks its schema; `details` has every violation. */
export class SchemaViolationError extends EventBusError {}
export class UnknownSchemaVersionError extends EventBusError {}
export class SchemaRequiredError extends EventBusError {}
export class HeadersTooLargeError extends EventBusError {}
export class InternalError extends EventBusError {}
/** The server is stopping (503). */
export class ShuttingDownError extends EventBusError {}
/** 401: no token, or an unknown, malformed, expired or revoked one (`token` option, `$EVENTBUS_TOKEN`). */
export class UnauthorizedError extends EventBusError {}
/** 403: the token is valid but lacks the route's scope; `scope` names it (`groups:write`, `publish:users.created`). */
export class ForbiddenError extends EventBusError {
  /** The missing scope, from the answer's details ('' if the server did not say). */
  get scope(): string {
    return this.details.find((d) => typeof d.scope === 'string')?.scope ?? '';
  }
}
/**
 * 429: refused for now (`auth_backoff`: too many failed authentications
 * from this client's address); `retryAfter` is the server's Retry-After in
 * seconds (0 if it sent none). Worth trying again after it.
 */
export class RateLimitedError extends EventBusError {
  retryAfter = 0;
  override get retryable(): boolean {
    return true;
  }
}
/** No answer: connection refused or reset, DNS, ... (`cause` has the system error). */
export class ConnectionError extends EventBusError {}
/**
 * https: the server's certificate did not verify against the trusted CAs
 * (the `ca` option, else Node's store) or does not name the host. Not
 * retryable: the next try meets the same certificate.
 */
export class CertificateError extends ConnectionError {
  override get retryable(): boolean {
    return false;
  }
}
/** No answer within the request's timeout. */
export class TimeoutError extends EventBusError {}

const byCode: Record<string, new (m: string, c: string, s: number, d: ErrorDetail[]) => EventBusError> = {
  malformed_json: MalformedJsonError,
  invalid_request: InvalidRequestError,
  invalid_schema: InvalidSchemaError,
  bad_request: BadRequestError,
  not_found: NotFoundError,
  method_not_allowed: MethodNotAllowedError,
  conflict: ConflictError,
  incompatible_schema: IncompatibleSchemaError,
  version_conflict: VersionConflictError,
  limit_exceeded: LimitExceededError,
  request_timeout: RequestTimeoutError,
  unsupported_schema: UnsupportedSchemaError,
  payload_too_large: PayloadTooLargeError,
  unsupported_media_type: UnsupportedMediaTypeError,
  schema_violation: SchemaViolationError,
  unknown_schema_version: UnknownSchemaVersionError,
  schema_required: SchemaRequiredError,
  headers_too_large: HeadersTooLargeError,
  internal: InternalError,
  shutting_down: ShuttingDownError,
  unauthorized: UnauthorizedError,
  forbidden: ForbiddenError,
  auth_backoff: RateLimitedError,
};
/** The class of an answer whose code is not known here, by its status. */
const byStatus: Record<number, new (m: string, c: string, s: number, d: ErrorDetail[]) => EventBusError> = {
  401: UnauthorizedError,
  403: ForbiddenError,
  429: RateLimitedError,
};

/** The error class for a server answer `{"error": {...}}` with this status (and Retry-After header, if any). */
export function errorFromAnswer(status: number, body: unknown, retryAfter?: string | null): EventBusError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error;
  const code = typeof e?.code === 'string' ? e.code : `http_${status}`;
  const message = typeof e?.message === 'string' ? e.message : `HTTP ${status}`;
  const details = Array.isArray(e?.details) ? (e!.details as ErrorDetail[]) : [];
  const Cls = byCode[code] ?? byStatus[status] ?? EventBusError;
  const err = new Cls(message, code, status, details);
  if (err instanceof RateLimitedError) err.retryAfter = Math.max(0, Number(retryAfter) || 0);
  return err;
}

/**
 * Thrown by a handler: the event cannot succeed however often it is tried.
 * The worker nacks it with the message and `dead_letter: true`: it goes
 * straight to the group's dead-letter queue, whatever attempts remain.
 */
export class NonRetryableError extends Error {
  readonly nonRetryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

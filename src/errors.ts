/** The one error body shape of every stickylb listener: `{"error": CODE, "message": TEXT}`. */
export interface ErrorBody {
  error: string;
  message: string;
}

/**
 * Every error stickylb raises, each with a stable `code` and the HTTP status it maps to.
 * Match on `code`, never on the message. The README's error table lists every code
 * (a test keeps the two in step).
 */
export class StickyError extends Error {
  readonly code: string;
  readonly statusCode: number;

  constructor(code: string, statusCode: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.statusCode = statusCode;
  }

  /** The JSON body the proxy and the admin API answer with. */
  toJSON(): ErrorBody {
    return { error: this.code, message: this.message };
  }
}

/** The config file is invalid; `problems` holds one `key.path: message` line each. */
export class ConfigError extends StickyError {
  readonly problems: readonly string[];
  constructor(file: string, problems: readonly string[], options?: { cause?: unknown }) {
    super('SLB_CONFIG_INVALID', 500, `${file}: invalid config\n  ${problems.join('\n  ')}`, options);
    this.problems = problems;
  }
}

/** `maxSessions` is reached and every session is active, so none can be evicted. */
export class SessionLimitError extends StickyError {
  constructor(maxSessions: number) {
    super('SLB_SESSION_LIMIT', 503, `session limit of ${maxSessions} reached and every session is active`);
  }
}

/** A write carried a version older than (or equal to) the one stored: refused, never applied. */
export class VersionConflictError extends StickyError {
  readonly expected: number;
  readonly actual: number;
  constructor(id: string, expected: number, actual: number) {
    super('SLB_VERSION_CONFLICT', 409, `session ${id}: version ${expected} is stale, store has ${actual}`);
    this.expected = expected;
    this.actual = actual;
  }
}

/** The session does not exist (never created, deleted, expired or evicted). */
export class SessionNotFoundError extends StickyError {
  constructor(id: string) {
    super('SLB_SESSION_NOT_FOUND', 404, `session ${id} not found`);
  }
}

/** A compartment path is malformed (empty segment, bad characters, too deep). */
export class CompartmentPathError extends StickyError {
  constructor(path: string, reason: string) {
    super('SLB_COMPARTMENT_PATH', 400, `compartment path ${JSON.stringify(path)}: ${reason}`);
  }
}

/** No node is up (and not draining) to take the request. */
export class NoHealthyNodeError extends StickyError {
  constructor() {
    super('SLB_NO_HEALTHY_NODE', 503, 'no healthy node can take this request');
  }
}

/** The node failed while handling the request and it could not be retried safely. */
export class UpstreamError extends StickyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLB_UPSTREAM_FAILED', 502, message, options);
  }
}

/** The node did not answer (or a session move did not finish) within `proxy.timeouts.upstream`. */
export class UpstreamTimeoutError extends StickyError {
  constructor(timeoutMs: number, what = 'node did not answer') {
    super('SLB_UPSTREAM_TIMEOUT', 504, `${what} within ${timeoutMs} ms`);
  }
}

/** The client's request is malformed (bad framing, bad Host, bad URL). */
export class BadRequestError extends StickyError {
  constructor(message: string) {
    super('SLB_BAD_REQUEST', 400, message);
  }
}

/** The client's request headers exceed the configured size. */
export class HeadersTooLargeError extends StickyError {
  constructor() {
    super('SLB_HEADERS_TOO_LARGE', 431, 'request headers too large');
  }
}

/** The client took longer than `proxy.timeouts.headers` / `request` to send its request. */
export class RequestTimeoutError extends StickyError {
  constructor() {
    super('SLB_REQUEST_TIMEOUT', 408, 'request not received in time');
  }
}

/** The request body is larger than `proxy.maxBodyBytes`. */
export class BodyTooLargeError extends StickyError {
  constructor(maxBodyBytes: number) {
    super('SLB_BODY_TOO_LARGE', 413, `request body larger than ${maxBodyBytes} bytes`);
  }
}

/** A route or resource that does not exist (also what internal node routes look like to clients). */
export class NotFoundError extends StickyError {
  constructor(message = 'not found') {
    super('SLB_NOT_FOUND', 404, message);
  }
}

/** The admin or replication request lacks a valid token or shared secret. */
export class UnauthorizedError extends StickyError {
  constructor(message = 'missing or invalid credentials') {
    super('SLB_UNAUTHORIZED', 401, message);
  }
}

/** A state-changing admin request came from another site (CSRF). */
export class ForbiddenError extends StickyError {
  constructor(message: string) {
    super('SLB_FORBIDDEN', 403, message);
  }
}

/** The replica store could not be reached or refused the write. */
export class ReplicaStoreError extends StickyError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SLB_REPLICA_UNAVAILABLE', 503, message, options);
  }
}

/** A failover moved the session to another node while this one was cut off: drop the local copy and fail the request. */
export class SessionMovedError extends StickyError {
  readonly key: string;
  constructor(key: string) {
    super('SLB_SESSION_MOVED', 409, `session ${key.slice(0, 6)}… moved to another node`);
    this.key = key;
  }
}

/** Every error class, for the test that keeps codes unique and documented. */
export const errorClasses = [
  ConfigError,
  SessionLimitError,
  VersionConflictError,
  SessionNotFoundError,
  CompartmentPathError,
  NoHealthyNodeError,
  UpstreamError,
  UpstreamTimeoutError,
  BadRequestError,
  HeadersTooLargeError,
  RequestTimeoutError,
  BodyTooLargeError,
  NotFoundError,
  UnauthorizedError,
  ForbiddenError,
  ReplicaStoreError,
  SessionMovedError,
] as const;

/** Codes for the 4xx errors a framework raises on its own (validation, bad JSON, body too large). */
const CLIENT_ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'SLB_BAD_REQUEST',
  401: 'SLB_UNAUTHORIZED',
  403: 'SLB_FORBIDDEN',
  404: 'SLB_NOT_FOUND',
  413: 'SLB_BODY_TOO_LARGE',
};

/**
 * What a route's error answers, for the error handlers of every Fastify listener: a
 * StickyError keeps its status and code; a framework client error keeps its 4xx status with a
 * stable code; anything else is `500 SLB_INTERNAL` without details (never a stack trace), and
 * `unexpected` is set so the caller logs it once.
 */
export function errorAnswer(error: Error & { statusCode?: number }): {
  status: number;
  body: ErrorBody;
  unexpected: boolean;
} {
  if (error instanceof StickyError)
    return { status: error.statusCode, body: error.toJSON(), unexpected: false };
  const status = error.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const code = CLIENT_ERROR_CODES[status] ?? 'SLB_BAD_REQUEST';
    return { status, body: { error: code, message: error.message }, unexpected: false };
  }
  return { status: 500, body: { error: 'SLB_INTERNAL', message: 'internal error' }, unexpected: true };
}

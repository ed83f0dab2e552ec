import { NoHealthyNodeError, StickyError, UpstreamError } from '../errors.js';
import type { FailureEvidence } from '../health/index.js';

/** Connection-level failures that mean the node is unreachable or died: passive health evidence. */
const NODE_FAILURE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ETIMEDOUT',
  // undici: the node closed the connection before its answer was complete ('other side closed').
  'UND_ERR_SOCKET',
]);

/** The error's system or undici code (`ECONNREFUSED`, `UND_ERR_SOCKET`), if it has one. */
function codeOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** Whether an upstream error says the node itself failed (as opposed to our own timeout). */
export function isNodeFailure(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && NODE_FAILURE_CODES.has(code);
}

/** Codes that say nothing listens at the node's address (not one exchange gone wrong). */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH']);

/**
 * How much a node failure proves (HealthChecker.reportFailure): a refused or unreachable
 * connection is conclusive; anything else (a reset, a timeout, an error answer to an internal
 * call) only makes the node suspect. The code may sit on the error's cause (a wrapped one).
 */
export function failureEvidence(error: unknown): FailureEvidence {
  const unreachable = (code: string | undefined): boolean =>
    code !== undefined && UNREACHABLE_CODES.has(code);
  return unreachable(codeOf(error)) || unreachable(codeOf((error as { cause?: unknown } | undefined)?.cause))
    ? 'conclusive'
    : 'suspect';
}

/** Methods a proxy may replay after the node may have seen them (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function isIdempotent(method: string | undefined): boolean {
  return IDEMPOTENT.has(method ?? '');
}

/** The connection broke under the request (reset, or closed before any answer). */
export function isConnectionLost(error: unknown): boolean {
  const code = codeOf(error);
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}

/** Whether the request surely never reached the node (safe to replay, whatever the method). */
export function isConnectRefused(error: unknown): boolean {
  return codeOf(error) === 'ECONNREFUSED';
}

/**
 * The one place an upstream failure becomes a client-facing error: our own timeout stays
 * a 504; refused on the last attempt is a 503 (no node took the request, and none saw it:
 * safe to send again); reset or anything else the node did is a 502.
 */
export function toClientError(error: unknown): StickyError {
  if (error instanceof StickyError) return error;
  const code = codeOf(error);
  if (code === 'ECONNREFUSED') return new NoHealthyNodeError();
  const reason =
    code === 'ECONNRESET' || code === 'UND_ERR_SOCKET'
      ? 'node closed the connection mid-request'
      : 'node failed while handling the request';
  return new UpstreamError(reason, { cause: error });
}

import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { StickyError } from '../../src/errors.js';

/** The one error body shape of the node: `{"error": CODE, "message": TEXT}`. */
export interface ErrorBody {
  error: string;
  message: string;
}

/** Fastify's own client errors (validation, bad JSON, body too large) mapped to stable codes. */
function codeOfClientError(statusCode: number): string {
  if (statusCode === 404) return 'SLB_NOT_FOUND';
  if (statusCode === 413) return 'SLB_BODY_TOO_LARGE';
  return 'SLB_BAD_REQUEST';
}

/**
 * Error handler of the demo node: every error leaves as JSON with a stable code, never as a
 * stack trace. Client mistakes keep their 4xx status; anything else is logged once and
 * answered 500 without details.
 */
export function handleError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): ErrorBody {
  if (error instanceof StickyError) {
    if (error.statusCode >= 500) request.log.warn({ err: error }, 'request failed');
    reply.code(error.statusCode);
    return error.toJSON();
  }
  const statusCode = (error as Partial<FastifyError>).statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    reply.code(statusCode);
    return { error: codeOfClientError(statusCode), message: error.message };
  }
  request.log.error({ err: error }, 'request failed');
  reply.code(500);
  return { error: 'SLB_INTERNAL', message: 'internal error' };
}

/** 404 for every route the node does not serve (including the internal `/_stickylb/` prefix). */
export function handleNotFound(request: FastifyRequest, reply: FastifyReply): ErrorBody {
  reply.code(404);
  return {
    error: 'SLB_NOT_FOUND',
    message: `no route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`,
  };
}

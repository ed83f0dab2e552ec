import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { errorAnswer, type ErrorBody } from '../../src/errors.js';

export type { ErrorBody };

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
  const { status, body, unexpected } = errorAnswer(error);
  if (unexpected) request.log.error({ err: error }, 'request failed');
  else if (status >= 500) request.log.warn({ err: error }, 'request failed');
  reply.code(status);
  return body;
}

/** 404 for every route the node does not serve (including the internal `/_stickylb/` prefix). */
export function handleNotFound(request: FastifyRequest, reply: FastifyReply): ErrorBody {
  reply.code(404);
  return {
    error: 'SLB_NOT_FOUND',
    message: `no route ${request.method} ${(request.url.split('?')[0] ?? '').slice(0, 200)}`,
  };
}

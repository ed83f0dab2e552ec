import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { BadRequestError, HeadersTooLargeError, RequestTimeoutError, type StickyError } from '../errors.js';

/** Answers a request with the error's JSON body and status; a no-op once headers are out. */
export function sendError(
  res: ServerResponse,
  error: StickyError,
  extraHeaders?: Record<string, string>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  res.writeHead(error.statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extraHeaders,
  });
  res.end(body);
}

/** Writes a raw HTTP/1.1 error response on a socket (upgrade requests, parser errors) and closes it. */
export function sendSocketError(socket: Duplex, error: StickyError): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(error.toJSON());
  socket.end(
    `HTTP/1.1 ${error.statusCode} ${statusText(error.statusCode)}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'connection: close\r\n\r\n' +
      body,
  );
}

/**
 * A Node HTTP server's `clientError` (a request its parser refused, or too slow), answered in
 * our JSON shape: 431 for headers too large, 408 for a timeout, else 400. A reset socket, or
 * one whose response is already under way (an error written now would land inside that
 * response's body), is just cut.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  const current = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || current?.headersSent === true) {
    socket.destroy();
    return;
  }
  const answer =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLargeError()
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' || error.code === 'ERR_HTTP_HEADERS_TIMEOUT'
        ? new RequestTimeoutError()
        : new BadRequestError(`malformed request (${error.code ?? 'parse error'})`);
  sendSocketError(socket, answer);
}

function statusText(status: number): string {
  switch (status) {
    case 400:
      return 'Bad Request';
    case 404:
      return 'Not Found';
    case 408:
      return 'Request Timeout';
    case 413:
      return 'Payload Too Large';
    case 431:
      return 'Request Header Fields Too Large';
    case 502:
      return 'Bad Gateway';
    case 503:
      return 'Service Unavailable';
    case 504:
      return 'Gateway Timeout';
    default:
      return 'Error';
  }
}

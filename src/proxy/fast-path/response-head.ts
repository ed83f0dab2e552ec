import { SESSION_USED_HEADER } from '../../protocol.js';
import { isInternalHeaderName } from '../header-hygiene.js';

/*
 * The fast path's reader of a node's answer head. The answer is relayed with the node's
 * own framing (Content-Length, chunked, or until the node closes), minus the hop-by-hop
 * headers and our internal one. A head it cannot vouch for (ambiguous framing, bare LF,
 * obs-fold, control characters) is a protocol error: the request fails like any other
 * upstream failure (502 on the full path), as undici would fail it.
 */

export enum Framing {
  /** No body: HEAD, 204, 304. */
  None,
  Length,
  Chunked,
  /** HTTP/1.0 style: the body ends when the node closes. */
  Close,
}

export interface FastResponse {
  status: number;
  /** Status line and kept header lines, without the final CRLF. */
  head: string;
  /** Bytes of the head, blank line included. */
  headSize: number;
  framing: Framing;
  /** Body bytes when `framing` is Length. */
  length: number;
  /** The node's session-used header (stripped from the answer), if any. */
  sessionUsed: string | undefined;
  /** The node keeps the connection open after this answer. */
  isReusable: boolean;
  /** The node's `Keep-Alive: timeout=` hint, in ms. */
  keepAliveMs: number | undefined;
}

export class ResponseProtocolError extends Error {
  readonly code = 'SLB_UPSTREAM_PROTOCOL';
}

const CRLF2 = Buffer.from('\r\n\r\n');
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?: [\t -~\x80-\xff]*)?$/;
/** Values may carry obs-text (bytes ≥ 0x80, e.g. a UTF-8 file name): relayed byte for byte. */
const HEADER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~\x80-\xff]*$/;
const DIGITS = /^\d{1,15}$/;
const KEEP_ALIVE_TIMEOUT = /timeout=(\d{1,9})/i;
const MAX_HEAD_BYTES = 64 * 1024;

/** Reads an answer head from the start of `buf`; undefined while it is still arriving. */
export function readFastResponse(buf: Buffer, isHeadRequest: boolean): FastResponse | undefined {
  const end = buf.indexOf(CRLF2);
  if (end < 0) {
    if (buf.length > MAX_HEAD_BYTES) throw new ResponseProtocolError('answer head too large');
    return undefined;
  }
  const text = buf.toString('latin1', 0, end);
  let lineEnd = text.indexOf('\r\n');
  const statusLine = STATUS_LINE.exec(lineEnd < 0 ? text : text.slice(0, lineEnd));
  if (statusLine === null) throw new ResponseProtocolError('malformed status line');
  const status = Number(statusLine[2]);
  let isReusable = statusLine[1] === '1';
  let contentLength: string | undefined;
  let isChunked = false;
  let sessionUsed: string | undefined;
  let listed: string[] | undefined;
  let keepAliveMs: number | undefined;
  let head: string | undefined;
  let keptFrom = 0;
  while (lineEnd >= 0) {
    const start = lineEnd + 2;
    lineEnd = text.indexOf('\r\n', start);
    const line = lineEnd < 0 ? text.slice(start) : text.slice(start, lineEnd);
    if (!HEADER_LINE.test(line)) throw new ResponseProtocolError('malformed header line');
    const colon = line.indexOf(':');
    let drop = false;
    switch (colon) {
      case 10: {
        const name = line.slice(0, colon).toLowerCase();
        if (name === 'connection') {
          drop = true;
          for (const token of line
            .slice(colon + 1)
            .toLowerCase()
            .split(',')) {
            const listedName = token.trim();
            if (listedName === 'close') isReusable = false;
            else if (listedName === 'keep-alive') isReusable ||= statusLine[1] === '0';
            else if (listedName && listedName !== 'content-length' && listedName !== 'transfer-encoding')
              (listed ??= []).push(listedName);
          }
        } else if (name === 'keep-alive') {
          drop = true;
          const timeout = KEEP_ALIVE_TIMEOUT.exec(line);
          if (timeout !== null) keepAliveMs = Number(timeout[1]) * 1000;
        }
        break;
      }
      case 14:
        if (line.slice(0, colon).toLowerCase() === 'content-length') {
          const value = line.slice(colon + 1).trim();
          if (!DIGITS.test(value) || (contentLength !== undefined && contentLength !== value))
            throw new ResponseProtocolError('malformed Content-Length');
          contentLength = value;
        }
        break;
      case 16:
        drop = line.slice(0, colon).toLowerCase() === 'proxy-connection';
        break;
      case 17:
        if (line.slice(0, colon).toLowerCase() === 'transfer-encoding') {
          // Only plain `chunked` is relayed as is; anything else the node would frame oddly.
          if (
            isChunked ||
            line
              .slice(colon + 1)
              .trim()
              .toLowerCase() !== 'chunked'
          )
            throw new ResponseProtocolError('unsupported Transfer-Encoding');
          isChunked = true;
        }
        break;
      case SESSION_USED_HEADER.length:
        if (line.slice(0, colon).toLowerCase() === SESSION_USED_HEADER) {
          sessionUsed = line.slice(colon + 1).trim();
          drop = true;
        }
        break;
    }
    // Our other internal headers (`x-stickylb-*`, any case, `-` or `_`) are for us, never the client.
    if (!drop && isInternalHeaderName(line)) drop = true;
    if (drop) {
      head = (head ?? '') + text.slice(keptFrom, start - 2);
      keptFrom = lineEnd < 0 ? text.length : lineEnd;
    }
  }
  if (isChunked && contentLength !== undefined)
    throw new ResponseProtocolError('both Content-Length and Transfer-Encoding');
  // HTTP/1.0 has no chunked encoding (RFC 9112 §6.1): its client would misread the framing.
  if (isChunked && statusLine[1] === '0') throw new ResponseProtocolError('chunked HTTP/1.0 answer');
  if (head !== undefined) head += text.slice(keptFrom);
  if (listed !== undefined) head = dropListed(head ?? text, listed);
  let framing: Framing;
  if (isHeadRequest || status === 204 || status === 304 || status < 200) framing = Framing.None;
  else if (isChunked) framing = Framing.Chunked;
  else if (contentLength !== undefined) framing = Framing.Length;
  else {
    framing = Framing.Close;
    isReusable = false;
  }
  return {
    status,
    head: head ?? text,
    headSize: end + 4,
    framing,
    length: contentLength === undefined ? 0 : Number(contentLength),
    sessionUsed,
    isReusable,
    keepAliveMs,
  };
}

/** Removes the header lines named in `listed` (lower case) from a head. */
function dropListed(head: string, listed: readonly string[]): string {
  const lines = head.split('\r\n');
  return lines
    .filter((line, index) => index === 0 || !listed.includes(line.slice(0, line.indexOf(':')).toLowerCase()))
    .join('\r\n');
}

import { HOST_VALUE, isInternalHeaderName } from '../header-hygiene.js';

/*
 * The fast path's request reader. It accepts only a strict, common subset of HTTP/1.1 and
 * says SLOW for everything else, which then goes to Node's HTTP server (llhttp) and the full
 * path, with its checks and its JSON errors. So this reader never has to decide whether
 * odd input is an attack or merely unusual: anything it has not vetted byte by byte is
 * handed on untouched. What it accepts: a GET/HEAD/POST/PUT/DELETE/PATCH/OPTIONS request
 * line with an origin-form target and `HTTP/1.1`; CRLF line ends only (no bare CR/LF, no
 * obs-fold); token header names; values of visible ASCII, space and tab only; exactly one
 * valid Host; at most one Content-Length of plain digits, within `maxBodyBytes`; no
 * Transfer-Encoding, Expect or Upgrade; Connection only as `keep-alive` or
 * `close`; no X-Forwarded-*
 * or Forwarded from a trusted peer (whose hops the full path appends to).
 */

/** Not in the fast subset: hand the connection, bytes and all, to the full path. */
export const SLOW = 0;
/** The head has not fully arrived yet. */
export const INCOMPLETE = 1;

export interface FastRequest {
  method: string;
  /** Origin-form target (`/path?query`). */
  target: string;
  /** The Cookie lines, joined with `; ` as Node does. */
  cookie: string | undefined;
  host: string;
  /** Request line and the header lines to forward, without the final CRLF. */
  head: string;
  /** Bytes of the whole request (head, blank line and body), once it has all arrived. */
  size: number;
  /** Where the body starts, and its length (Content-Length; 0 without one). */
  bodyStart: number;
  bodyLength: number;
  /** POST/PUT/PATCH without Content-Length: the forwarded head says `content-length: 0`. */
  addsZeroLength: boolean;
  /** `Connection: close`: the connection ends after this answer. */
  closes: boolean;
}

export interface RequestLimits {
  maxHeaderBytes: number;
  maxHeaderCount: number;
  /** Largest body the fast path buffers whole (a replay needs all of it). */
  maxBodyBytes: number;
}

const CRLF2 = Buffer.from('\r\n\r\n');
const REQUEST_LINE = /^(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (\/[!-~]*) HTTP\/1\.1$/;
/** A header line: token name, colon, value of visible ASCII, space and tab. */
const HEADER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t -~]*$/;
const DIGITS = /^\d{1,15}$/;
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * Reads one request's head from the start of `buf`. Returns SLOW when it is not in the
 * fast subset (see above), INCOMPLETE while the head is still arriving. The body may still
 * be arriving: the request is whole once `buf` holds `size` bytes.
 */
export function readFastRequest(
  buf: Buffer,
  limits: RequestLimits,
  isTrustedPeer: boolean,
  /** Where the end of the head may start: bytes before it were searched by an earlier call. */
  searchFrom = 0,
): FastRequest | typeof SLOW | typeof INCOMPLETE {
  const end = buf.indexOf(CRLF2, searchFrom);
  if (end < 0) {
    // A head over the limit, or one ending lines with a bare LF (which would never end
    // with CRLFCRLF): the full path answers (431, 400).
    if (buf.length > limits.maxHeaderBytes || hasBareLf(buf, searchFrom)) return SLOW;
    return INCOMPLETE;
  }
  if (end + 4 > limits.maxHeaderBytes) return SLOW;
  const text = buf.toString('latin1', 0, end);
  let lineEnd = text.indexOf('\r\n');
  const requestLine = REQUEST_LINE.exec(lineEnd < 0 ? text : text.slice(0, lineEnd));
  if (requestLine === null) return SLOW;
  const method = requestLine[1] as string;
  const target = requestLine[2] as string;

  let cookie: string | undefined;
  let host: string | undefined;
  let contentLength: string | undefined;
  let closes = false;
  let count = 0;
  // The forwarded head is `text` itself unless a line is dropped: then it is rebuilt from
  // the kept stretches (from `keptFrom` up to a dropped line, then on from its end).
  let head: string | undefined;
  let keptFrom = 0;
  while (lineEnd >= 0) {
    const start = lineEnd + 2;
    lineEnd = text.indexOf('\r\n', start);
    const line = lineEnd < 0 ? text.slice(start) : text.slice(start, lineEnd);
    if (!HEADER_LINE.test(line)) return SLOW;
    if (++count > limits.maxHeaderCount) return SLOW;
    const colon = line.indexOf(':');
    let drop = false;
    // Lower-cased only when the length says it may be a header we act on.
    switch (colon) {
      case 2: // te
      case 7: // trailer
        drop = isNamed(line, colon, 'te') || isNamed(line, colon, 'trailer');
        if (!drop && isNamed(line, colon, 'upgrade')) return SLOW;
        break;
      case 4:
        if (isNamed(line, colon, 'host')) {
          if (host !== undefined) return SLOW;
          host = line.slice(colon + 1).trim();
          if (host === '' || !HOST_VALUE.test(host)) return SLOW;
        }
        break;
      case 6:
        if (isNamed(line, colon, 'cookie')) {
          const value = line.slice(colon + 1).trim();
          cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        } else if (isNamed(line, colon, 'expect')) return SLOW;
        break;
      case 9:
        if (isNamed(line, colon, 'forwarded')) {
          if (isTrustedPeer) return SLOW;
          drop = true;
        }
        break;
      case 10:
        if (isNamed(line, colon, 'connection')) {
          // `keep-alive` (the HTTP/1.1 default) or `close`; listing headers: the full path.
          const value = line
            .slice(colon + 1)
            .trim()
            .toLowerCase();
          if (value === 'close') closes = true;
          else if (value !== 'keep-alive') return SLOW;
          drop = true;
        } else drop = isNamed(line, colon, 'keep-alive');
        break;
      case 14:
        if (isNamed(line, colon, 'content-length')) {
          if (contentLength !== undefined) return SLOW;
          contentLength = line.slice(colon + 1).trim();
          if (!DIGITS.test(contentLength)) return SLOW;
        }
        break;
      case 15:
      case 16:
      case 17:
        if (
          isNamed(line, colon, 'x-forwarded-for') ||
          isNamed(line, colon, 'x-forwarded-host') ||
          isNamed(line, colon, 'x-forwarded-proto')
        ) {
          if (isTrustedPeer) return SLOW;
          drop = true;
        } else if (isNamed(line, colon, 'transfer-encoding')) return SLOW;
        else drop = isNamed(line, colon, 'proxy-connection');
        break;
      case 19:
        drop = isNamed(line, colon, 'proxy-authorization');
        break;
    }
    if (!drop && isInternalHeaderName(line)) drop = true;
    if (drop) {
      head = (head ?? '') + text.slice(keptFrom, start - 2);
      keptFrom = lineEnd < 0 ? text.length : lineEnd;
    }
  }
  if (host === undefined) return SLOW;
  if (head !== undefined) head += text.slice(keptFrom);
  const bodyLength = contentLength === undefined ? 0 : Number(contentLength);
  if (bodyLength > limits.maxBodyBytes) return SLOW;
  const bodyStart = end + 4;
  return {
    method,
    target,
    cookie,
    host,
    head: head ?? text,
    size: bodyStart + bodyLength,
    bodyStart,
    bodyLength,
    addsZeroLength: contentLength === undefined && EXPECTS_BODY.has(method),
    closes,
  };
}

/** Whether the header name of `line` (ending at `colon`) is `lower`, in any case. */
function isNamed(line: string, colon: number, lower: string): boolean {
  return colon === lower.length && line.slice(0, colon).toLowerCase() === lower;
}

/** A LF not preceded by CR (a head llhttp refuses, and that never ends with CRLFCRLF). */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let at = buf.indexOf(10, from); at >= 0; at = buf.indexOf(10, at + 1)) {
    if (at === 0 || buf[at - 1] !== 13) return true;
  }
  return false;
}

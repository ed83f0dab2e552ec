import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BadRequestError, HeadersTooLargeError, type StickyError } from '../errors.js';
import { SESSION_NEW_HEADER } from '../protocol.js';

/*
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe the client↔proxy connection, not the
 * request: forwarding them would, e.g., let a client's `Connection: close` tear down the
 * proxy's kept-alive socket to the node. Proxy-Authorization is for us, never for a node.
 */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization'] as const;

/** End-to-end headers a client cannot have stripped by naming them in `Connection:`. */
const KEPT_IF_LISTED = new Set(['host', 'content-length', 'transfer-encoding']);

/** Headers that only we may set toward a node. */
const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'] as const;

/**
 * Rewrites a request's headers in place before it is forwarded: strips hop-by-hop headers
 * and every header listed in `Connection:`, strips client-sent copies of our internal
 * `x-stickylb-*` headers (also spelt with `_`, which some frameworks map to `-`), and sets
 * X-Forwarded-For/-Proto/-Host. Client-sent X-Forwarded-* survive only from a trusted
 * proxy, which gets our hop appended.
 */
export function sanitizeRequestHeaders(
  headers: IncomingHttpHeaders,
  remoteAddress: string,
  isTrustedPeer: boolean,
  isEncrypted: boolean,
  isUpgrade: boolean,
): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      // An upgrade keeps `Connection: upgrade` and `Upgrade`; everything else listed is dropped,
      // except what frames or routes the request: `Connection: content-length` must not lose
      // a body's length (nor the copy kept to replay it), nor `Connection: host` the Host.
      if (name && !(isUpgrade && name === 'upgrade') && !KEPT_IF_LISTED.has(name)) delete headers[name];
    }
    if (!isUpgrade) delete headers.connection;
  }
  if (!isUpgrade) delete headers.upgrade;
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];

  deleteInternalHeaders(headers);

  const priorFor = isTrustedPeer ? headers['x-forwarded-for'] : undefined;
  const priorProto = isTrustedPeer ? headers['x-forwarded-proto'] : undefined;
  const priorHost = isTrustedPeer ? headers['x-forwarded-host'] : undefined;
  if (!isTrustedPeer) for (const name of FORWARDED) if (headers[name] !== undefined) delete headers[name];
  headers['x-forwarded-for'] = priorFor ? `${priorFor}, ${remoteAddress}` : remoteAddress;
  headers['x-forwarded-proto'] = priorProto ?? (isEncrypted ? 'https' : 'http');
  const host = priorHost ?? headers.host;
  if (host !== undefined) headers['x-forwarded-host'] = host;
}

const INTERNAL_HEADER = /^x[-_]stickylb[-_]/i;

/**
 * `x-stickylb-…` in any case, with `-` or `_`; `name` may also be a whole `name: value` line.
 * Two character tests before the regex: this runs for every header of every request and
 * answer, and all but ours (X-Request-Id, X-Frame-Options…) stop there.
 */
export function isInternalHeaderName(name: string): boolean {
  return (
    name.length > 10 &&
    (name.charCodeAt(0) | 32) === 120 &&
    (name.charCodeAt(2) | 32) === 115 &&
    INTERNAL_HEADER.test(name)
  );
}

/** Deletes our internal headers from a headers object (a client's request, a node's answer to an upgrade). */
export function deleteInternalHeaders(headers: IncomingHttpHeaders): void {
  for (const name in headers) if (isInternalHeaderName(name)) delete headers[name];
}

/** Strips an IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` compares equal to `127.0.0.1`. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

/** What the proxy needs from a request's head, read from its raw header lines in one pass. */
export interface RequestHead {
  /** The headers to send to the node, flat (`[name, value, …]`), ending with our session header. */
  headers: string[];
  /** The Cookie header (several lines joined with `; `, as Node does). */
  cookie: string | undefined;
  /** A body follows: Transfer-Encoding, or a Content-Length other than 0. */
  hasBody: boolean;
  /** The request says how long its body is (Content-Length or Transfer-Encoding, even `0`). */
  hasFraming: boolean;
  /** The (last) Host header, and how many there were (checkReadHead refuses more than one). */
  host: string | undefined;
  hostCount: number;
}

/**
 * The same hygiene as sanitizeRequestHeaders, for a plain (non-upgrade) request, done on
 * `req.rawHeaders` while building the flat header array the forwarder sends: Node never
 * builds the `req.headers` object, and nothing is deleted from one (the CPU profile showed
 * both). Transfer-Encoding and Expect are not forwarded: the forwarder frames the body
 * itself. The last pair is `sessionHeader` with an empty value; see setSessionHeader.
 */
export function readRequestHead(
  raw: readonly string[],
  remoteAddress: string,
  isTrustedPeer: boolean,
  isEncrypted: boolean,
  sessionHeader: string,
): RequestHead {
  const listed = connectionListed(raw);
  const headers: string[] = [];
  let cookie: string | undefined;
  let hasBody = false;
  let hasFraming = false;
  let host: string | undefined;
  let hostCount = 0;
  let priorFor: string | undefined;
  let priorProto: string | undefined;
  let priorHost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    // Lower-cased only when the length says it may be a header we act on.
    switch (name.length) {
      case 2: // te
      case 7: // trailer, upgrade
      case 10: // connection, keep-alive
      case 19: // proxy-authorization
        if (HOP_BY_HOP_RAW.has(name.toLowerCase())) continue;
        break;
      case 4:
        if (name.toLowerCase() === 'host') {
          host = value;
          hostCount++;
        }
        break;
      case 6: {
        const lower = name.toLowerCase();
        if (lower === 'cookie') cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        // `Expect: 100-continue` was answered by our server already (Node sends the 100); the
        // body follows on its own. (Any other expectation got Node's 417 before reaching us.)
        else if (lower === 'expect') continue;
        break;
      }
      case 9:
        if (!isTrustedPeer && name.toLowerCase() === 'forwarded') continue;
        break;
      case 14:
        // `Content-Length: 0` (a body-less POST, as fetch sends it) is no body to pipe or keep.
        if (name.toLowerCase() === 'content-length') {
          hasFraming = true;
          if (value !== '0') hasBody = true;
        }
        break;
      case 15:
        if (name.toLowerCase() === 'x-forwarded-for') {
          if (isTrustedPeer) priorFor = priorFor === undefined ? value : `${priorFor}, ${value}`;
          continue;
        }
        break;
      case 16: {
        const lower = name.toLowerCase();
        if (lower === 'proxy-connection') continue;
        if (lower === 'x-forwarded-host') {
          if (isTrustedPeer) priorHost = priorHost === undefined ? value : `${priorHost}, ${value}`;
          continue;
        }
        break;
      }
      case 17: {
        const lower = name.toLowerCase();
        if (lower === 'transfer-encoding') {
          // Hop-by-hop framing (RFC 9112 §6.1): the forwarder frames the body itself, chunked
          // (undici refuses to be handed the header). Only `chunked` last gets here (Node's parser).
          hasBody = hasFraming = true;
          continue;
        } else if (lower === 'x-forwarded-proto') {
          if (isTrustedPeer) priorProto = priorProto === undefined ? value : `${priorProto}, ${value}`;
          continue;
        }
        break;
      }
    }
    if (isInternalHeaderName(name)) continue;
    if (listed !== undefined && listed.includes(name.toLowerCase())) continue;
    headers.push(name, value);
  }
  headers.push(
    'x-forwarded-for',
    priorFor ? `${priorFor}, ${remoteAddress}` : remoteAddress,
    'x-forwarded-proto',
    priorProto ?? (isEncrypted ? 'https' : 'http'),
  );
  const forwardedHost = priorHost ?? host;
  if (forwardedHost !== undefined) headers.push('x-forwarded-host', forwardedHost);
  headers.push(sessionHeader, '');
  return { headers, cookie, hasBody, hasFraming, host, hostCount };
}

/**
 * Sets the value of the session header readRequestHead reserved (again on a retry to another
 * node), and for an id minted for this request adds SESSION_NEW_HEADER before it, once.
 */
export function setSessionHeader(head: RequestHead, decision: { sessionId: string; isNew: boolean }): void {
  const headers = head.headers;
  if (decision.isNew && headers[headers.length - 4] !== SESSION_NEW_HEADER) {
    headers.splice(headers.length - 2, 0, SESSION_NEW_HEADER, '1');
  }
  headers[headers.length - 1] = decision.sessionId;
}

const HOP_BY_HOP_RAW = new Set<string>(['connection', 'upgrade', ...HOP_BY_HOP]);

/** Header names a `Connection:` line lists (lower case), beyond the usual `keep-alive`/`close`. */
function connectionListed(raw: readonly string[]): string[] | undefined {
  let listed: string[] | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    listed = connectionListedNames(raw[i + 1] as string, listed);
  }
  return listed;
}

/**
 * Adds to `listed` the header names (lower case) a `Connection:` value lists (RFC 9110
 * §7.6.1: hop-by-hop, to drop), except what frames or routes the message; a value of just
 * `keep-alive` or `close`, almost every one, costs a single test. For requests and answers alike.
 */
export function connectionListedNames(value: string, listed?: string[]): string[] | undefined {
  if (value.length <= 10 && /^(?:keep-alive|close)$/i.test(value)) return listed;
  for (const token of value.split(',')) {
    const name = token.trim().toLowerCase();
    if (name && !KEPT_IF_LISTED.has(name)) (listed ??= []).push(name);
  }
  return listed;
}

/** Characters of a Host value: reg-name or IP literal and port (RFC 3986 §3.2.2), nothing that ends an authority. */
export const HOST_VALUE = /^[A-Za-z0-9._~%!$&'()*+,;=:[\]-]*$/;
const TOO_MANY_HEADERS = new HeadersTooLargeError();

/**
 * Why a request head must be refused before it is routed, or undefined. Node's parser
 * already refuses ambiguous framing (CL+TE, two Content-Length, bare LF, obs-fold…); this
 * adds what it lets through: more than `maxHeaderCount` header lines (Node would silently
 * drop the rest), no Host or several (RFC 9112 §3.2: 400), a Host that is not an authority,
 * an absolute-form target whose authority disagrees with Host — the node would route by
 * one and we by the other — and the asterisk form (`OPTIONS *`). Only the request line and
 * raw header lines are read (`req.headers`, which Node builds on first use, stays unbuilt on
 * the plain path): one pass.
 */
export function checkRequestHead(req: IncomingMessage, maxHeaderCount: number): StickyError | undefined {
  const raw = req.rawHeaders;
  let hosts = 0;
  let host: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts++;
      host = raw[i + 1];
    }
  }
  return checkHead(req, maxHeaderCount, hosts, host);
}

/** checkRequestHead for a plain request whose head readRequestHead already read (no second pass). */
export function checkReadHead(
  req: IncomingMessage,
  head: RequestHead,
  maxHeaderCount: number,
): StickyError | undefined {
  return checkHead(req, maxHeaderCount, head.hostCount, head.host);
}

function checkHead(
  req: IncomingMessage,
  maxHeaderCount: number,
  hosts: number,
  host: string | undefined,
): StickyError | undefined {
  if (req.rawHeaders.length > 2 * maxHeaderCount) return TOO_MANY_HEADERS;
  if (hosts > 1) return new BadRequestError('more than one Host header');
  if (hosts === 0) {
    return req.httpVersionMajor === 1 && req.httpVersionMinor === 0
      ? undefined
      : new BadRequestError('missing Host header');
  }
  if (host === undefined || !HOST_VALUE.test(host)) return new BadRequestError('malformed Host header');
  const url = req.url ?? '/';
  // `OPTIONS *` asks about a server, not a resource (RFC 9110 §9.3.7); the upstream client
  // (undici) cannot send it, so it is refused here with a clear answer, as nginx does.
  if (url === '*') return new BadRequestError('asterisk-form request target (OPTIONS *) is not forwarded');
  if (url.charCodeAt(0) !== 47 /* / */) {
    // Absolute form (RFC 9112 §3.2.2): only http(s), and its authority must be the Host we route by.
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return new BadRequestError('malformed request target');
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:')
      return new BadRequestError('request target is not an http URL');
    let expected = '';
    try {
      expected = new URL(`${target.protocol}//${host}`).host; // same normalisation (case, default port)
    } catch {
      return new BadRequestError('malformed Host header');
    }
    if (target.username !== '' || target.password !== '' || target.host !== expected)
      return new BadRequestError('request target does not match Host');
  }
  return undefined;
}

import type { Agent, ClientRequest, IncomingMessage, RequestOptions, ServerResponse } from 'node:http';
import type { UpstreamTarget } from '../nodes/index.js';
import { SESSION_USED_HEADER } from '../protocol.js';
import type { RequestHead } from './header-hygiene.js';

/** What the forwarder asks of its owner, once per response head and once per failure. */
export interface ForwardHooks {
  /**
   * The node answered: `sessionUsed` is its internal session-used header (stripped from the
   * answer). Returns the `Set-Cookie` value to add, if any.
   */
  onResponseHead(res: ServerResponse, sessionUsed: string | undefined): string | undefined;
  /** The upstream request failed (refused, reset, timed out): the one place failures map. */
  onError(error: Error, req: IncomingMessage, res: ServerResponse): void;
  /** The node's connection ended before its answer's body did; the client's was cut. */
  onTruncated(): void;
}

/** Methods Node's client sends without body framing when none is given (the rest it frames chunked). */
const UNFRAMED_BY_DEFAULT = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']);

const kRes = Symbol('stickylb.res');
const kUpstreamRes = Symbol('stickylb.upstreamRes');
const kDrainHooked = Symbol('stickylb.drainHooked');

type ForwardedRequest = ClientRequest & { [kRes]?: ServerResponse };
type UpstreamResponse = IncomingMessage & { [kRes]?: ServerResponse };
type ClientResponse = ServerResponse & {
  [kUpstreamRes]?: UpstreamResponse;
  [kDrainHooked]?: boolean;
};

/**
 * The plain-HTTP request path: one `http.request` per proxied request over the keep-alive
 * agent, headers handed over as a flat array (no per-header `setHeader`), the answer written
 * with one `writeHead` of the node's raw headers, and the body relayed by shared handlers.
 *
 * It replaces http-proxy's `web()` for requests, which per request re-parsed the target URL,
 * copied the options and headers, ran its outgoing passes (a `setHeader` per response
 * header) and piped both directions (about a dozen closures): the CPU profile in
 * bench/results/profile.md shows what that cost. WebSocket upgrades still go through
 * http-proxy. Per-request state rides on the request and response objects: no closures.
 */
export class UpstreamForwarder {
  /** Mutable by the owner (a reload changes the upstream timeout). */
  readonly #timeout: { timeoutMs: number };
  readonly #onTimeout: (this: ClientRequest) => void;
  readonly #onResponse: (this: ForwardedRequest, upstream: IncomingMessage) => void;
  readonly #onError: (this: ForwardedRequest, error: NodeJS.ErrnoException) => void;

  constructor(hooks: ForwardHooks, timeout: { timeoutMs: number }, onTimeout: (this: ClientRequest) => void) {
    this.#timeout = timeout;
    this.#onTimeout = onTimeout;
    // Once per forwarder (it needs the hooks), not per request.
    const onUpstreamClose = function onUpstreamClose(this: UpstreamResponse) {
      const res = this[kRes];
      if (this.complete || res === undefined || res.destroyed || res.writableEnded) return;
      hooks.onTruncated();
      res.destroy();
    };
    this.#onResponse = function onResponse(this: ForwardedRequest, upstream: IncomingMessage) {
      const res = this[kRes] as ClientResponse;
      if (res.headersSent || res.destroyed) {
        upstream.resume();
        return;
      }
      const raw = upstream.rawHeaders;
      const headers: string[] = [];
      let sessionUsed: string | undefined;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i] as string;
        switch (name.length) {
          case 10: // connection, keep-alive: the node's terms are for our agent, not the client
          case 16: // proxy-connection
          case 17: // transfer-encoding: Node frames the client's answer itself
            if (isHopByHop(name)) continue;
            break;
          case SESSION_USED_HEADER.length:
            if (name.toLowerCase() === SESSION_USED_HEADER) {
              sessionUsed = raw[i + 1];
              continue;
            }
            break;
        }
        headers.push(name, raw[i + 1] as string);
      }
      const cookie = hooks.onResponseHead(res, sessionUsed);
      if (cookie !== undefined) headers.push('set-cookie', cookie);
      res.writeHead(upstream.statusCode as number, upstream.statusMessage, headers);
      (upstream as UpstreamResponse)[kRes] = res;
      res[kUpstreamRes] = upstream;
      upstream.on('data', onUpstreamData);
      upstream.on('end', onUpstreamEnd);
      upstream.on('close', onUpstreamClose);
    };
    this.#onError = function onError(this: ForwardedRequest, error: NodeJS.ErrnoException) {
      const res = this[kRes] as ServerResponse;
      const req = res.req;
      // Our own abort after the client left (res 'close'): not the node's failure (as http-proxy).
      if (error.code === 'ECONNRESET' && req.socket.destroyed) return;
      hooks.onError(error, req, res);
    };
  }

  /**
   * Sends `req` to `target` with the headers of `head` (see readRequestHead) and relays the
   * answer into `res`. `body` replays a buffered body (a retry); otherwise a body still
   * arriving is piped. `agent: false` sends it on a new connection, outside the pool.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: UpstreamTarget,
    head: RequestHead,
    body?: Buffer[],
    agent: Agent | false | undefined = target.agent,
  ): ClientRequest {
    // An array is stored as the request head as is: no setHeader (validate, lower-case) per header.
    let headers = head.host !== undefined ? head.headers : [...head.headers, 'host', target.hostHeader];
    // No Content-Length nor Transfer-Encoding: no body (RFC 9112 §6.3). But Node writes an
    // array-headed request's head at once and frames a POST (PUT, PATCH…) chunked by default,
    // which a node then reads as a body of unknown type (curl -X POST got 415): say length 0.
    if (!head.hasFraming && !UNFRAMED_BY_DEFAULT.has(req.method as string)) {
      headers = [...headers, 'content-length', '0'];
    }
    const proxyReq: ForwardedRequest = target.request({
      host: target.host,
      port: target.port,
      agent,
      method: req.method,
      path: originFormOf(req.url ?? '/'),
      headers,
    } as RequestOptions);
    proxyReq[kRes] = res;
    proxyReq.on('response', this.#onResponse);
    proxyReq.on('error', this.#onError);
    // Not the `timeout` request option: when it equals the agent's timeout, Node leaves the
    // socket at whatever the node's `Keep-Alive: timeout=` hint set it to (setRequestSocket).
    proxyReq.setTimeout(this.#timeout.timeoutMs, this.#onTimeout);
    if (body !== undefined) {
      for (const chunk of body) proxyReq.write(chunk);
      proxyReq.end();
    } else if (head.hasBody) {
      req.pipe(proxyReq);
    } else {
      proxyReq.end();
    }
    return proxyReq;
  }
}

/**
 * The request target as a node expects it from a gateway: origin form (RFC 9112 §3.2.1). An
 * absolute-form target (`GET http://host/path`, its authority already checked against Host by
 * checkRequestHead) becomes its path and query; `*` stays.
 */
function originFormOf(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */ || url === '*') return url;
  try {
    const target = new URL(url);
    return target.pathname + target.search;
  } catch {
    return url;
  }
}

function isHopByHop(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === 'connection' ||
    lower === 'keep-alive' ||
    lower === 'proxy-connection' ||
    lower === 'transfer-encoding'
  );
}

function onUpstreamData(this: UpstreamResponse, chunk: Buffer): void {
  const res = this[kRes] as ClientResponse;
  if (res.write(chunk)) return;
  // Backpressure: a slow client pauses the node's answer until its socket drains.
  this.pause();
  if (res[kDrainHooked] !== true) {
    res[kDrainHooked] = true;
    res.on('drain', onClientDrain);
  }
}

function onClientDrain(this: ClientResponse): void {
  this[kUpstreamRes]?.resume();
}

function onUpstreamEnd(this: UpstreamResponse): void {
  (this[kRes] as ServerResponse).end();
}

/**
 * Stops the node's answer flowing into `res` once its request failed (a framing error mid-body):
 * its next chunk would land after our error answer or in a retry's (write after end throws).
 */
export function detachUpstream(res: ServerResponse): void {
  const client = res as ClientResponse;
  const upstream = client[kUpstreamRes];
  if (upstream === undefined) return;
  client[kUpstreamRes] = undefined;
  upstream[kRes] = undefined;
  upstream.off('data', onUpstreamData);
  upstream.off('end', onUpstreamEnd);
  upstream.destroy();
}

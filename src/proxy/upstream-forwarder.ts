import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { Client, type Dispatcher } from 'undici';
import type { UpstreamTarget } from '../nodes/index.js';
import type { RequestHead } from './header-hygiene.js';
import { RequestBodySource } from './request-body-source.js';
import { UpstreamExchange, type ForwardHooks } from './upstream-exchange.js';

export { detachUpstream, type ForwardHooks, type UpstreamExchange } from './upstream-exchange.js';

/** Methods whose request carries a body: one without framing is sent with `Content-Length: 0`. */
const EXPECTS_BODY = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The plain-HTTP request path: each request is one undici `dispatch` on the node's pool
 * (src/nodes/upstream-pool.ts) with a per-request handler object (UpstreamExchange), headers
 * handed over as a flat array, the answer written with one `writeHead` of the node's raw
 * headers and its body relayed chunk by chunk with backpressure.
 *
 * It replaces `http.request` over a keep-alive `http.Agent`, which per request built a
 * ClientRequest and an upstream IncomingMessage, ran the agent's `addRequest`, and added and
 * removed about a dozen listeners on the pooled socket (bench/results/profile.md, issue #6).
 * WebSocket upgrades still go through http-proxy.
 */
export class UpstreamForwarder {
  readonly #hooks: ForwardHooks;
  /** Mutable by the owner (a reload changes the upstream timeout). */
  readonly #timeout: { timeoutMs: number };

  constructor(hooks: ForwardHooks, timeout: { timeoutMs: number }) {
    this.#hooks = hooks;
    this.#timeout = timeout;
  }

  /**
   * Sends `req` to `target` with the headers of `head` (see readRequestHead) and relays the
   * answer into `res`. `body` replays a buffered body (a retry); otherwise a body still
   * arriving is streamed. `isFresh` sends it on a new connection, outside the pool.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    target: UpstreamTarget,
    head: RequestHead,
    body?: Buffer[],
    isFresh = false,
  ): UpstreamExchange {
    const method = req.method as string;
    let headers = head.host !== undefined ? head.headers : [...head.headers, 'host', target.hostHeader];
    // No Content-Length nor Transfer-Encoding: no body (RFC 9112 §6.3). Said explicitly for a
    // POST (PUT, PATCH), which some nodes refuse without a length (411), as Node's client did.
    if (!head.hasFraming && EXPECTS_BODY.has(method)) headers = [...headers, 'content-length', '0'];
    const timeoutMs = this.#timeout.timeoutMs;
    const exchange = new UpstreamExchange(res, this.#hooks, timeoutMs);
    let source: Dispatcher.DispatchOptions['body'] = null;
    if (body !== undefined) {
      source = body.length === 1 ? (body[0] as Buffer) : Buffer.concat(body);
    } else if (head.hasBody) {
      // A stream to undici (it tests for `pipe` and `on`), not a Readable: see RequestBodySource.
      source = (exchange.body = new RequestBodySource(req)) as unknown as Readable;
    }
    const options: Dispatcher.DispatchOptions = {
      origin: target.origin,
      path: originFormOf(req.url ?? '/'),
      method: method as Dispatcher.HttpMethod,
      headers,
      body: source,
      // Both undici timers stand for the one upstream timeout: no answer head, or a body
      // stalled, for timeoutMs. A client too slow to take the answer pauses it: the exchange
      // bounds that pause, and the wait for a pooled connection, with the same timeout.
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    };
    if (isFresh) {
      // The keep-alive race retry: one connection of its own, closed after this answer.
      const client = new Client(target.origin, { pipelining: 1 });
      client.dispatch({ ...options, reset: true }, exchange);
      client.close().catch(() => undefined);
    } else if (!target.pool.dispatch(options, exchange)) {
      // false only when every connection of the pool is busy: the common path arms no timer.
      exchange.waitForConnection();
    }
    return exchange;
  }
}

/**
 * The request target as a node expects it from a gateway: origin form (RFC 9112 §3.2.1). An
 * absolute-form target (`GET http://host/path`, its authority already checked against Host by
 * checkRequestHead) becomes its path and query; the asterisk form never gets here (a 400).
 */
function originFormOf(url: string): string {
  if (url.charCodeAt(0) === 47 /* / */) return url;
  try {
    const target = new URL(url);
    return target.pathname + target.search;
  } catch {
    return url;
  }
}

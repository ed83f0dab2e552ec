import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { AffinityView, SessionCookie } from '../affinity/index.js';
import {
  BadRequestError,
  NoHealthyNodeError,
  NotFoundError,
  StickyError,
  UpstreamTimeoutError,
} from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyNode } from '../nodes/index.js';
import { SESSION_HEADER, SESSION_NEW_HEADER, SESSION_USED_HEADER } from '../protocol.js';
import {
  checkRequestHead,
  deleteInternalHeaders,
  normalizeAddress,
  sanitizeRequestHeaders,
} from './header-hygiene.js';
import { isInternalPath } from './internal-path.js';
import type { ProxyCounters } from './proxy-counters.js';
import type { RouteDecision, Router } from './router.js';
import { sendSocketError } from './send-error.js';
import { isConnectRefused, isNodeFailure, toClientError } from './upstream-errors.js';

const kRoute = Symbol('stickylb.upgradeRoute');
const kState = Symbol('stickylb.upgradeState');
const kRetried = Symbol('stickylb.upgradeRetried');
const kProxyReq = Symbol('stickylb.upgradeProxyReq');

/** An upgrade request: 'pending' until the node's 101, then 'open'; 'abandoned' if the client left first. */
type UpgradeRequest = IncomingMessage & {
  [kRoute]?: RouteDecision;
  [kState]?: 'pending' | 'open' | 'abandoned';
  /** Sent once more, to another node, after its node refused the connection. */
  [kRetried]?: boolean;
  /** The request to the node of the current attempt. */
  [kProxyReq]?: ClientRequest;
};

const NOT_FOUND = new NotFoundError();

/** What the relay needs of the proxy it serves. */
export interface UpgradeRelayOptions {
  router: Router;
  affinity: AffinityView;
  cookie: SessionCookie;
  logger: Logger;
  counters: ProxyCounters;
  /** Peers whose X-Forwarded-* headers are kept. */
  trusted: ReadonlySet<string>;
  /** Header lines a request may have (the server's current limit). */
  maxHeaderCount: () => number;
  /** `proxy.timeouts.upstream`, read per upgrade (a reload changes it): how long the node's answer may take. */
  upstream: { readonly timeoutMs: number };
  /** The node for a session whose node cannot serve it (moved, or any node for a new one). */
  moveOrPick: (decision: RouteDecision, fromNodeId: string) => Promise<ProxyNode>;
  /** Passive health: the node refused or reset the upgrade. */
  onNodeFailure?: ((node: ProxyNode, error: Error) => void) | undefined;
}

/**
 * WebSocket upgrades (`Upgrade:` requests), relayed by http-proxy: they follow the session like
 * any request, get the session cookie on the node's 101, and every failure on either socket
 * ends in a JSON error before the 101 or a closed connection after it — never a crash
 * (http-proxy#1468) nor an HTTP page inside a WebSocket stream. Plain requests go through the
 * UpstreamForwarder instead, where http-proxy's per-request cost showed in the profile.
 */
export class UpgradeRelay {
  readonly #options: UpgradeRelayOptions;
  readonly #proxy: httpProxy;
  /** Open upgraded connections, ended on shutdown. */
  readonly #sockets = new Set<Duplex>();

  constructor(options: UpgradeRelayOptions) {
    this.#options = options;
    this.#proxy = httpProxy.createProxyServer({ ws: true, xfwd: false });
    this.#proxy.on('proxyReqWs', this.#onProxyReqWs);
    // Never reached (every call passes a callback), but http-proxy rethrows without a listener.
    this.#proxy.on('error', this.#onError);
  }

  /** The server's 'upgrade' handler. */
  readonly relay = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const { counters, router } = this.#options;
    counters.requests++;
    // Before http-proxy attaches its own, a reset would otherwise crash the process (http-proxy#1468).
    socket.on('error', onClientSocketError);
    // An internal path is a 404 whatever protocol it asks for (the replication channel's own).
    const refusal =
      checkRequestHead(req, this.#options.maxHeaderCount()) ??
      (isInternalPath(req.url ?? '/') ? NOT_FOUND : checkUpgrade(req));
    if (refusal !== undefined) {
      if (refusal !== NOT_FOUND) counters.clientErrors++;
      sendSocketError(socket, refusal);
      return;
    }
    const clientIp = normalizeAddress((socket as Socket).remoteAddress);
    let decision: RouteDecision;
    try {
      decision = router.route(req.url ?? '/', req.headers.cookie, clientIp);
    } catch (error) {
      if (error instanceof NoHealthyNodeError) counters.noHealthyNode++;
      sendSocketError(socket, error instanceof StickyError ? error : toClientError(error));
      return;
    }
    sanitizeRequestHeaders(req.headers, clientIp, this.#options.trusted.has(clientIp), false, true);
    (req as UpgradeRequest)[kRoute] = decision;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    if (decision.mustMove) {
      void this.#moveThenRelay(req, socket, head, decision, decision.fromNodeId);
      return;
    }
    this.#relayTo(decision.node, req, socket, head, decision);
  };

  /** Shutdown: asks every upgraded connection to end (`end`), or cuts them (`destroy`). */
  closeConnections(how: 'end' | 'destroy'): void {
    for (const socket of this.#sockets) socket[how]();
  }

  /** Releases http-proxy. */
  close(): void {
    this.#proxy.close();
  }

  async #moveThenRelay(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    decision: RouteDecision,
    fromNodeId: string,
  ): Promise<void> {
    let node: ProxyNode;
    try {
      node = await this.#options.moveOrPick(decision, fromNodeId);
    } catch (error) {
      // A move that ran out of time counts as the plain request path counts it (`#refuse`).
      if (error instanceof UpstreamTimeoutError) this.#options.counters.upstreamTimeouts++;
      sendSocketError(socket, error instanceof StickyError ? error : toClientError(error));
      return;
    }
    if (socket.destroyed) return;
    this.#options.router.reroute(decision, node);
    this.#relayTo(node, req, socket, head, decision);
  }

  /** Sends the handshake to `node` under the decision's session id. */
  #relayTo(
    node: ProxyNode,
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    decision: RouteDecision,
  ): void {
    req.headers[SESSION_HEADER] = decision.sessionId;
    if (decision.isNew) req.headers[SESSION_NEW_HEADER] = '1';
    this.#proxy.ws(req, socket, head, node.proxyOptions, this.#onError);
  }

  readonly #onProxyReqWs = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const upgrade = req as UpgradeRequest;
    const decision = upgrade[kRoute];
    if (decision === undefined) return;
    upgrade[kState] = 'pending';
    // A client that leaves mid-handshake: http-proxy would keep the request to the node open.
    // One listener for every attempt: it aborts the current one (a retry replaces it).
    const isFirstAttempt = upgrade[kProxyReq] === undefined;
    upgrade[kProxyReq] = proxyReq;
    if (isFirstAttempt) {
      req.socket.once('close', () => {
        if (upgrade[kState] !== 'pending') return;
        upgrade[kState] = 'abandoned';
        upgrade[kProxyReq]?.destroy();
      });
    }
    // http-proxy bounds no part of an upgrade: a node that accepts the connection (or a pooled
    // socket's queue, or a connect that never completes) and never answers would hold the client
    // forever. Its answer head gets the upstream timeout, as a plain request's does (then 504).
    const timeoutMs = this.#options.upstream.timeoutMs;
    const timer = setTimeout(() => proxyReq.destroy(new UpstreamTimeoutError(timeoutMs)), timeoutMs);
    const disarm = (): void => clearTimeout(timer);
    proxyReq.once('response', disarm);
    // Before http-proxy's own listener, which writes a non-101 answer's headers as they are.
    proxyReq.once('response', stripInternalHeaders);
    proxyReq.once('close', disarm);
    // Registered before http-proxy's own 'upgrade' listener, so the 101 it writes carries our cookie.
    proxyReq.once('upgrade', (proxyRes: IncomingMessage) => {
      disarm();
      upgrade[kState] = 'open';
      const used = proxyRes.headers[SESSION_USED_HEADER];
      // A new id is recorded (and counted on its node) only once the node says it stored the
      // session, as on the plain path; a WebSocket endpoint that never touches it (the demo's
      // /ws) leaves no session behind. The id still goes out on the 101: a reconnect with it
      // reaches the same node by its route.
      if (!decision.isNew || used !== undefined) {
        this.#options.affinity.record(decision.key, decision.node.id, decision.isNew, Number(used) || 0);
      }
      stripInternalHeaders(proxyRes);
      if (decision.setCookie)
        appendSetCookie(proxyRes.headers, this.#options.cookie.serialize(decision.sessionId));
    });
  };

  readonly #onError = (error: Error, req: IncomingMessage, target: unknown): void => {
    const socket = target as Duplex;
    const upgrade = req as UpgradeRequest;
    const { counters } = this.#options;
    if (upgrade[kState] === 'abandoned') {
      // The client left mid-handshake and we aborted the node's side: not the node's failure.
      counters.clientAborts++;
      socket.destroy();
      return;
    }
    const decision = upgrade[kRoute];
    if (error instanceof UpstreamTimeoutError) counters.upstreamTimeouts++;
    else counters.upstreamErrors++;
    if (decision !== undefined && isNodeFailure(error)) this.#options.onNodeFailure?.(decision.node, error);
    if (upgrade[kState] === 'open') {
      // The node failed after its 101: the connection carries WebSocket frames, where an HTTP
      // error page is garbage. Close it.
      socket.destroy();
      return;
    }
    if (decision !== undefined && upgrade[kRetried] !== true && isConnectRefused(error)) {
      // Refused: the node never saw the handshake. Like a plain request, it goes to the
      // session's new node (moved, state and all), once.
      upgrade[kRetried] = true;
      counters.retries++;
      keepThroughNextEnd(socket);
      // No head: http-proxy put the bytes after the handshake back into the socket already.
      void this.#moveThenRelay(req, socket, EMPTY, decision, decision.node.id);
      return;
    }
    const clientError = toClientError(error);
    this.#options.logger.warn(
      { node: decision?.node.id, code: (error as NodeJS.ErrnoException).code, error: error.message },
      `upstream request failed: ${clientError.code}`,
    );
    sendSocketError(socket, clientError);
  };
}

/** Appends to `set-cookie` (Node gives it as an array): the node's own cookies must survive. */
function appendSetCookie(headers: IncomingMessage['headers'], value: string): void {
  const existing = headers['set-cookie'];
  if (existing === undefined) headers['set-cookie'] = [value];
  else existing.push(value);
}

const EMPTY = Buffer.alloc(0);

/** Drops our internal headers (`x-stickylb-*`, the session-used one too) from a node's answer before it is relayed. */
function stripInternalHeaders(res: IncomingMessage): void {
  deleteInternalHeaders(res.headers);
}

/**
 * http-proxy ends the client's socket right after it calls our error callback, which would
 * hang up on a client whose handshake we are about to send to another node: that one `end`
 * is skipped (and the real one back on the next tick whatever happens).
 */
function keepThroughNextEnd(socket: Duplex): void {
  const end = socket.end;
  const restore = (): void => {
    socket.end = end;
  };
  socket.end = function skipOnce(this: Duplex) {
    restore();
    return this;
  } as Duplex['end'];
  process.nextTick(restore);
}

function onClientSocketError(this: Duplex): void {
  this.destroy();
}

const NOT_WEBSOCKET = new BadRequestError(
  'only WebSocket upgrades (GET with Upgrade: websocket) are proxied; send this request without Upgrade',
);

/**
 * Any other upgrade (h2c from `curl --http2`, a POST asking for a WebSocket) reaches this
 * handler too, as Node hands every `Connection: Upgrade` request to it; http-proxy would
 * destroy the socket without a word.
 */
function checkUpgrade(req: IncomingMessage): BadRequestError | undefined {
  const upgrade = req.headers.upgrade;
  return req.method === 'GET' && upgrade !== undefined && upgrade.toLowerCase() === 'websocket'
    ? undefined
    : NOT_WEBSOCKET;
}

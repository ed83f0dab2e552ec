import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AffinityView, SessionCookie } from '../affinity/index.js';
import type { Config } from '../config/index.js';
import { NotFoundError, type StickyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyNode } from '../nodes/index.js';
import { SESSION_HEADER } from '../protocol.js';
import { FastPath, type Inherited } from './fast-path/fast-path.js';
import {
  checkReadHead,
  normalizeAddress,
  readRequestHead,
  setSessionHeader,
  type RequestHead,
} from './header-hygiene.js';
import { isInternalPath } from './internal-path.js';
import {
  kAttempts,
  kBody,
  kBodyBytes,
  kFreshRetry,
  kHead,
  kProxyReq,
  kReused,
  kRoute,
  kStartedAt,
  type ProxiedRequest,
  type ProxiedResponse,
} from './proxied-exchange.js';
import { createProxyCounters, type ProxyCounters } from './proxy-counters.js';
import { Recovery } from './recovery.js';
import type { RouteDecision, Router } from './router.js';
import { answerClientError, sendError } from './send-error.js';
import { UpgradeRelay } from './upgrade-relay.js';
import { UpstreamForwarder } from './upstream-forwarder.js';

const NOT_FOUND = new NotFoundError();

export interface ProxyServerOptions {
  config: Config['proxy'];
  router: Router;
  cookie: SessionCookie;
  affinity: AffinityView;
  logger: Logger;
  /** Passive health: a proxied request found the node refusing or resetting connections. */
  onNodeFailure?: (node: ProxyNode, error: Error) => void;
  /** Moves a session off a node that cannot serve it; resolves to its new node. */
  moveSession?: (key: string, fromNodeId: string) => Promise<ProxyNode>;
  /**
   * Whether a non-idempotent request that may have reached a failed node can be replayed: true
   * only when the replica store proves the session unchanged since the last answer seen.
   */
  mayReplay?: (key: string) => Promise<boolean>;
}

/** Told of every forwarded request's response when it closes (admin rate and latency): counters only. */
export type ResponseHook = (node: ProxyNode, statusCode: number, startedAtMs: number) => void;

/**
 * The client-facing HTTP server: plain requests start on the FastPath; what it hands over, and
 * everything outside its subset, is routed here with the Router, forwarded with the
 * UpstreamForwarder over each node's keep-alive pool (WebSocket upgrades: UpgradeRelay), and
 * answered with the session cookie added; a node that cannot answer is Recovery's (move,
 * retry, replay, or a JSON error). Handlers are bound once; per-request state lives on the
 * request and response objects (proxied-exchange.ts), so the hot path allocates no closures.
 */
export class ProxyServer {
  readonly server: Server;
  readonly counters: ProxyCounters = createProxyCounters();
  readonly #fast: FastPath;
  #onResponse: ResponseHook | undefined = undefined;
  readonly #upgrades: UpgradeRelay;
  readonly #forwarder: UpstreamForwarder;
  readonly #recovery: Recovery;
  readonly #options: ProxyServerOptions;
  readonly #trusted: Set<string>;
  /** Mutable so a reload can change it under the shared timeout handler. */
  readonly #upstream: { timeoutMs: number };
  readonly #onResponseClose: (this: ProxiedResponse) => void;
  readonly #captureChunk: (this: ProxiedRequest, chunk: Buffer) => void;

  constructor(options: ProxyServerOptions) {
    this.#options = options;
    const { config } = options;
    this.#trusted = new Set(config.trustedProxies.map(normalizeAddress));
    this.#upstream = { timeoutMs: config.timeouts.upstream };
    this.server = createServer(
      {
        maxHeaderSize: config.maxHeaderBytes,
        headersTimeout: config.timeouts.headers,
        requestTimeout: config.timeouts.request,
        keepAliveTimeout: config.timeouts.idle,
        // Smuggling defence: refuse requests with both or several framing headers (Node's parser).
        insecureHTTPParser: false,
        // Missing Host is refused by checkRequestHead, with our JSON error instead of Node's bare 400.
        requireHostHeader: false,
        // Node checks headersTimeout/requestTimeout only this often (default 30 s, which would let a
        // slowloris client hold a socket 30 s past a 10 s timeout).
        connectionsCheckingInterval: timeoutCheckIntervalOf(config.timeouts),
      },
      this.#onRequest,
    );
    this.server.maxConnections = config.maxConnections;
    // One more than allowed, so a request over the limit is seen (Node drops headers past it silently).
    this.server.maxHeadersCount = config.maxHeaderCount + 1;
    this.#recovery = new Recovery({
      router: options.router,
      counters: this.counters,
      logger: options.logger,
      upstream: this.#upstream,
      forwarder: () => this.#forwarder,
      onNodeFailure: options.onNodeFailure,
      moveSession: options.moveSession,
      mayReplay: options.mayReplay,
    });
    this.#upgrades = new UpgradeRelay({
      router: options.router,
      affinity: options.affinity,
      cookie: options.cookie,
      logger: options.logger,
      counters: this.counters,
      trusted: this.#trusted,
      maxHeaderCount: () => (this.server.maxHeadersCount ?? 2001) - 1,
      upstream: this.#upstream,
      moveOrPick: (decision, fromNodeId) => this.#recovery.moveOrPick(decision, fromNodeId),
      onNodeFailure: options.onNodeFailure,
    });
    this.#fast = new FastPath({
      server: this.server,
      router: options.router,
      counters: this.counters,
      config,
      trusted: this.#trusted,
      onAnswer: (decision, sessionUsed) => this.#answered(decision, sessionUsed),
      moveOrPick: (decision, fromNodeId) => this.#recovery.moveOrPick(decision, fromNodeId),
      onNodeFailure: options.onNodeFailure,
    });
    this.server.on('upgrade', this.#upgrades.relay);
    this.server.on('clientError', this.#onClientError);
    // Past maxConnections Node closes a new connection unserved: cheap, and before it costs memory.
    this.server.on('drop', () => this.counters.refusedConnections++);

    const counters = this.counters;
    this.#forwarder = new UpstreamForwarder(
      {
        onResponseHead: this.#onResponseHead,
        onError: this.#recovery.onUpstreamError,
        // A body cut short (the node died, or sent less than its Content-Length): the client's
        // connection is cut too, so it sees a truncated response, never a hang or a fake end.
        onTruncated: () => counters.truncatedResponses++,
      },
      this.#upstream,
    );
    const maxBodyBytes = config.maxBodyBytes;
    // Shared 'data' handler: keeps the body so a refused attempt can be replayed on another node.
    this.#captureChunk = function captureChunk(this: ProxiedRequest, chunk: Buffer) {
      const body = this[kBody];
      if (body === null || body === undefined) return;
      const bytes = (this[kBodyBytes] ?? 0) + chunk.length;
      this[kBodyBytes] = bytes;
      if (bytes > maxBodyBytes) this[kBody] = null;
      else body.push(chunk);
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- read by the shared handler below
    const self = this;
    // Shared 'close' handler: frees the node slot and aborts the upstream request if the client left early.
    this.#onResponseClose = function onResponseClose(this: ProxiedResponse) {
      const decision = this[kRoute];
      // kAttempts is set once the request was forwarded (and counted in flight).
      if (decision !== undefined && this[kAttempts] !== undefined) {
        decision.node.inFlight--;
        decision.node.requests++;
        const onResponse = self.onResponse;
        if (onResponse !== undefined) onResponse(decision.node, this.statusCode, this[kStartedAt] as number);
      }
      if (!this.writableFinished) {
        counters.clientAborts++;
        // The client went away mid-response: http-proxy would keep reading from the node (#1586).
        const proxyReq = this[kProxyReq];
        if (proxyReq !== undefined && !proxyReq.destroyed) proxyReq.destroy();
      }
    };
  }

  /** Set by whoever keeps per-node rate and latency (the admin's NodeTraffic); `performance.now()` clock. */
  get onResponse(): ResponseHook | undefined {
    return this.#onResponse;
  }

  set onResponse(hook: ResponseHook | undefined) {
    this.#onResponse = hook;
    this.#fast.onResponse = hook;
  }

  /** How often the fast path checks its connections' timeouts (follows a reload). */
  get timeoutSweepMs(): number {
    return this.#fast.sweepIntervalMs;
  }

  /** Applies reloaded timeouts and limits to the running server (SIGHUP); nothing is dropped. */
  reconfigure(config: Config['proxy']): void {
    this.#fast.reconfigure(config);
    this.server.headersTimeout = config.timeouts.headers;
    this.server.requestTimeout = config.timeouts.request;
    this.server.keepAliveTimeout = config.timeouts.idle;
    this.server.maxConnections = config.maxConnections;
    this.server.maxHeadersCount = config.maxHeaderCount + 1;
    this.#upstream.timeoutMs = config.timeouts.upstream;
  }

  /** Starts listening; resolves to the bound address. */
  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /**
   * Graceful stop: no new connections, idle keep-alive connections closed, in-flight
   * requests given `graceMs` to finish, then everything still open is cut.
   */
  async close(graceMs = 10_000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeIdleConnections();
    this.#fast.closeIdle();
    this.#upgrades.closeConnections('end');
    const timer = setTimeout(() => {
      this.server.closeAllConnections();
      this.#fast.destroyAll();
      this.#upgrades.closeConnections('destroy');
    }, graceMs);
    timer.unref();
    // Keep-alive connections that finish their last request close instead of idling.
    const idleSweep = setInterval(() => {
      this.server.closeIdleConnections();
      this.#fast.closeIdle();
    }, 50);
    idleSweep.unref();
    await closed;
    clearTimeout(timer);
    clearInterval(idleSweep);
    this.#fast.close();
    this.#upgrades.close();
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const inherited = this.#fast.takeInherited(req.socket);
    if (inherited === undefined) this.counters.requests++;
    const clientIp = normalizeAddress(req.socket.remoteAddress);
    // One pass over the raw header lines (the checks below reuse it): Node never builds
    // `req.headers` for a plain request. The header count is bounded by maxHeadersCount.
    const head = readRequestHead(
      req.rawHeaders,
      clientIp,
      this.#trusted.has(clientIp),
      false,
      SESSION_HEADER,
    );
    const problem = checkReadHead(req, head, (this.server.maxHeadersCount ?? 2001) - 1);
    if (problem !== undefined || isInternalPath(req.url ?? '/')) {
      this.#refuseHead(res, problem ?? NOT_FOUND);
      return;
    }
    if (inherited !== undefined) {
      this.#carryOn(req, res, head, inherited);
      return;
    }
    let decision: RouteDecision;
    try {
      decision = this.#options.router.route(req.url ?? '/', head.cookie, clientIp);
    } catch (error) {
      this.#recovery.refuse(res, error);
      return;
    }
    const proxied = res as ProxiedResponse;
    const request = req as ProxiedRequest;
    this.#track(request, proxied, head, decision, performance.now());
    if (decision.mustMove) {
      void this.#recovery.moveThenForward(request, proxied, decision);
      return;
    }
    proxied[kAttempts] = 1;
    decision.node.inFlight++;
    setSessionHeader(head, decision);
    proxied[kProxyReq] = this.#forwarder.forward(req, res, decision.node.upstream, head);
  };

  /** A routed request's state, kept on its request and response; its body kept for a replay. */
  #track(
    req: ProxiedRequest,
    res: ProxiedResponse,
    head: RequestHead,
    decision: RouteDecision,
    startedAt: number,
  ): void {
    res[kStartedAt] = startedAt;
    res[kRoute] = decision;
    req[kRoute] = decision;
    req[kHead] = head;
    res.on('close', this.#onResponseClose);
    if (head.hasBody) {
      req[kBody] = [];
      req.on('data', this.#captureChunk);
    }
  }

  /**
   * The first request of a connection the fast path handed over mid-request: routed there
   * already, and maybe attempted on its node and failed before any answer. Carried on here as
   * if this path had done both, so the failure maps (retry, replay check, error) in one place.
   */
  #carryOn(req: IncomingMessage, res: ServerResponse, head: RequestHead, inherited: Inherited): void {
    const { decision, failure } = inherited;
    if (decision === undefined) {
      this.#recovery.refuse(res, inherited.routeError);
      return;
    }
    const proxied = res as ProxiedResponse;
    const request = req as ProxiedRequest;
    this.#track(request, proxied, head, decision, inherited.startedAt);
    if (inherited.freshRetried === true) proxied[kFreshRetry] = true;
    if (inherited.routeError !== undefined) {
      // The session's move failed (no node, timed out). After a refused attempt the failure
      // counts against the node that refused, as in #retry.
      if ((inherited.attempts ?? 1) > 1) {
        proxied[kAttempts] = inherited.attempts;
        decision.node.inFlight++;
      }
      this.#recovery.refuse(res, inherited.routeError);
      return;
    }
    if (decision.mustMove) {
      void this.#recovery.moveThenForward(request, proxied, decision);
      return;
    }
    proxied[kAttempts] = inherited.attempts ?? 1;
    decision.node.inFlight++;
    if (failure === undefined) {
      // A node the fast path does not reach (https), or all its connections busy.
      setSessionHeader(head, decision);
      proxied[kProxyReq] = this.#forwarder.forward(req, res, decision.node.upstream, head);
      return;
    }
    proxied[kReused] = failure.isReused;
    this.#recovery.onUpstreamError(failure.error, req, res);
  }

  /** The node's answer arrived: record the session if the node used it; the cookie to set, if any. */
  readonly #onResponseHead = (res: ServerResponse, sessionUsed: string | undefined): string | undefined => {
    const decision = (res as ProxiedResponse)[kRoute];
    return decision === undefined ? undefined : this.#answered(decision, sessionUsed);
  };

  /** Both paths' answer head: records the session if the node used it; the cookie to set, if any. */
  #answered(decision: RouteDecision, sessionUsed: string | undefined): string | undefined {
    const isUsed = sessionUsed !== undefined;
    if (isUsed) {
      this.#options.affinity.record(decision.key, decision.node.id, decision.isNew, Number(sessionUsed) || 0);
      if (decision.clientIp !== undefined)
        this.#options.router.rememberClientIp(decision.clientIp, decision.sessionId);
    }
    // A new id is kept only if the node used it; a moved session's id is re-issued regardless.
    if (decision.setCookie && (isUsed || !decision.isNew))
      return this.#options.cookie.serialize(decision.sessionId);
    return undefined;
  }

  readonly #onClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
    this.counters.clientErrors++;
    // (A response already under way — the node answered before the body was in, then the
    // client stalled — is cut, not answered: see answerClientError.)
    answerClientError(error, socket);
  };

  /** A request refused on its head alone: a malformed one also loses its connection (RFC 9112 §3.2). */
  #refuseHead(res: ServerResponse, error: StickyError): void {
    if (error.statusCode === 400 || error.statusCode === 431) {
      this.counters.clientErrors++;
      res.shouldKeepAlive = false;
    }
    sendError(res, error);
  }
}

/**
 * How often Node sweeps connections for expired header and request timeouts: a quarter of
 * the shorter one, at most 1 s and at least 10 ms. Fixed at start (a reload cannot change it).
 */
export function timeoutCheckIntervalOf(timeouts: { headers: number; request: number }): number {
  return Math.max(10, Math.min(1000, Math.floor(Math.min(timeouts.headers, timeouts.request) / 4)));
}

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AffinityView, SessionCookie } from '../affinity/index.js';
import type { Config } from '../config/index.js';
import {
  BadRequestError,
  HeadersTooLargeError,
  NoHealthyNodeError,
  NotFoundError,
  RequestTimeoutError,
  StickyError,
  UpstreamTimeoutError,
} from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyNode } from '../nodes/index.js';
import { SESSION_HEADER } from '../protocol.js';
import {
  checkReadHead,
  normalizeAddress,
  readRequestHead,
  setSessionHeader,
  type RequestHead,
} from './header-hygiene.js';
import { boundedWait } from './bounded-wait.js';
import { isInternalPath } from './internal-path.js';
import type { RouteDecision, Router } from './router.js';
import { sendError, sendSocketError } from './send-error.js';
import { createProxyCounters, type ProxyCounters } from './proxy-counters.js';
import { FastPath, type Inherited } from './fast-path/fast-path.js';
import { detachUpstream, UpstreamForwarder, type UpstreamExchange } from './upstream-forwarder.js';
import { UpgradeRelay } from './upgrade-relay.js';
import {
  isConnectionLost,
  isConnectRefused,
  isIdempotent,
  isNodeFailure,
  toClientError,
} from './upstream-errors.js';

const kRoute = Symbol('stickylb.route');
const kProxyReq = Symbol('stickylb.proxyReq');
const kAttempts = Symbol('stickylb.attempts');
const kBody = Symbol('stickylb.body');
const kBodyBytes = Symbol('stickylb.bodyBytes');
const kStartedAt = Symbol('stickylb.startedAt');
const kHead = Symbol('stickylb.head');
const kFreshRetry = Symbol('stickylb.freshRetry');
const kReused = Symbol('stickylb.reused');

/** Per-request state rides on the response object itself: no closure per request. */
type ProxiedResponse = ServerResponse & {
  [kRoute]?: RouteDecision;
  [kProxyReq]?: UpstreamExchange;
  [kAttempts]?: number;
  /** `performance.now()` when the request arrived (admin latency). */
  [kStartedAt]?: number;
  /** Already replayed once over a new connection after a stale kept-alive one. */
  [kFreshRetry]?: boolean;
  /** The fast path's attempt failed on a reused connection (the keep-alive race). */
  [kReused]?: boolean;
};
/** A request whose body is kept (up to maxBodyBytes) so a refused attempt can be replayed; null: too big. */
type ProxiedRequest = IncomingMessage & {
  [kRoute]?: RouteDecision;
  /** The forwarded headers (plain requests only; upgrades use `headers`). */
  [kHead]?: RequestHead;
  [kBody]?: Buffer[] | null;
  [kBodyBytes]?: number;
};

/** Attempts per request: the first node and one failover target. */
const MAX_ATTEMPTS = 2;

const NOT_FOUND = new NotFoundError();
const RETRY_AFTER = { 'retry-after': '1' };

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
 * The client-facing HTTP server: routes each request with the Router, forwards it with the
 * UpstreamForwarder over each node's keep-alive pool (WebSocket upgrades: UpgradeRelay), adds the
 * session cookie to the node's answer, and turns every failure into a JSON error. Handlers
 * are bound once; per-request state lives on the response object, so the hot path
 * allocates no closures.
 */
export class ProxyServer {
  readonly server: Server;
  readonly counters: ProxyCounters = createProxyCounters();
  readonly #fast: FastPath;
  #onResponse: ResponseHook | undefined = undefined;
  readonly #upgrades: UpgradeRelay;
  readonly #forwarder: UpstreamForwarder;
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
    this.#upgrades = new UpgradeRelay({
      router: options.router,
      affinity: options.affinity,
      cookie: options.cookie,
      logger: options.logger,
      counters: this.counters,
      trusted: this.#trusted,
      maxHeaderCount: () => (this.server.maxHeadersCount ?? 2001) - 1,
      upstream: this.#upstream,
      moveOrPick: (decision, fromNodeId) => this.#moveOrPick(decision, fromNodeId),
      onNodeFailure: options.onNodeFailure,
    });
    this.#fast = new FastPath({
      server: this.server,
      router: options.router,
      counters: this.counters,
      config,
      trusted: this.#trusted,
      onAnswer: (decision, sessionUsed) => this.#answered(decision, sessionUsed),
      moveOrPick: (decision, fromNodeId) => this.#moveOrPick(decision, fromNodeId),
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
        onError: this.#onProxyError,
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
      this.#refuse(res, error);
      return;
    }
    const proxied = res as ProxiedResponse;
    const request = req as ProxiedRequest;
    this.#track(request, proxied, head, decision, performance.now());
    if (decision.mustMove) {
      void this.#moveThenForward(request, proxied, decision);
      return;
    }
    proxied[kAttempts] = 1;
    decision.node.inFlight++;
    setSessionHeader(head, decision.sessionId);
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
      this.#refuse(res, inherited.routeError);
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
      this.#refuse(res, inherited.routeError);
      return;
    }
    if (decision.mustMove) {
      void this.#moveThenForward(request, proxied, decision);
      return;
    }
    proxied[kAttempts] = inherited.attempts ?? 1;
    decision.node.inFlight++;
    if (failure === undefined) {
      // A node the fast path does not reach (https), or all its connections busy.
      setSessionHeader(head, decision.sessionId);
      proxied[kProxyReq] = this.#forwarder.forward(req, res, decision.node.upstream, head);
      return;
    }
    proxied[kReused] = failure.isReused;
    this.#onProxyError(failure.error, req, res);
  }

  /** Rare path: the session's node is down; move the session, then forward to its new node. */
  async #moveThenForward(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    // The body waits in the request (then TCP) while the session moves, and afterwards streams
    // to the new node as on the plain path, captured for a replay on the way: nothing is read
    // before there is somewhere to send it, so nothing is lost and a body over
    // `maxBodyBytes` is forwarded too (it just cannot be replayed).
    if (req[kBody] !== undefined) req.pause();
    let node: ProxyNode;
    try {
      node = await this.#moveOrPick(decision, decision.fromNodeId);
    } catch (error) {
      this.#refuse(res, error);
      return;
    }
    if (res.destroyed) return;
    this.#options.router.reroute(decision, node);
    res[kAttempts] = 1;
    node.inFlight++;
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision.sessionId);
    res[kProxyReq] = this.#forwarder.forward(req, res, node.upstream, head);
  }

  /**
   * The node a request goes to instead of `fromNodeId`: its session's new node, or any node for
   * a new session. A move (maybe asked of the control plane over IPC) gets the upstream timeout,
   * then a 504: its answer may never come.
   */
  #moveOrPick(decision: RouteDecision, fromNodeId: string): Promise<ProxyNode> {
    if (decision.isNew || this.#options.moveSession === undefined) {
      // A rejection, never a throw: no node left is an answer (503), also to a `.then` caller.
      try {
        return Promise.resolve(this.#options.router.pickNode(fromNodeId));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    const timeoutMs = this.#upstream.timeoutMs;
    return boundedWait(this.#options.moveSession(decision.key, fromNodeId), timeoutMs, () => {
      throw new UpstreamTimeoutError(timeoutMs, 'session move did not finish');
    });
  }

  /** Replays a request on the session's new node after its node refused (or, if idempotent, failed) it. */
  async #retry(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    res[kAttempts] = (res[kAttempts] ?? 1) + 1;
    const from = decision.node;
    let node: ProxyNode;
    try {
      node = await this.#moveOrPick(decision, from.id);
      // A body still arriving must be read whole before it can be replayed.
      if (req[kBody] !== undefined) await bodyRead(req);
    } catch (error) {
      this.#refuse(res, error);
      return;
    }
    const body = req[kBody];
    if (res.destroyed || body === null) {
      if (!res.destroyed) sendError(res, toClientError(new Error('request body too large to replay')));
      return;
    }
    from.inFlight--;
    node.inFlight++;
    this.#options.router.reroute(decision, node);
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision.sessionId);
    res[kProxyReq] = this.#forwarder.forward(req, res, node.upstream, head, body);
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

  /** The one place a failed upstream request of a plain HTTP request is mapped: retry, replay or answer. */
  readonly #onProxyError = (error: Error, req: IncomingMessage, res: ServerResponse): void => {
    const decision = (req as ProxiedRequest)[kRoute];
    if (decision !== undefined && isStaleReuse(req, res, error)) {
      void this.#retryFresh(req as ProxiedRequest, res as ProxiedResponse, decision);
      return;
    }
    if (error instanceof UpstreamTimeoutError) this.counters.upstreamTimeouts++;
    else this.counters.upstreamErrors++;
    if (decision !== undefined && isNodeFailure(error)) this.#options.onNodeFailure?.(decision.node, error);
    // A framing error mid-body: the rest of that answer must not follow ours (or a retry's).
    detachUpstream(res);
    if (decision !== undefined) {
      const retry = this.#retryability(req, res, error);
      if (retry === 'yes') {
        this.counters.retries++;
        void this.#retry(req as ProxiedRequest, res as ProxiedResponse, decision);
        return;
      }
      if (retry === 'if-session-unchanged' && this.#options.mayReplay !== undefined) {
        void this.#retryIfUnchanged(req as ProxiedRequest, res as ProxiedResponse, decision, error);
        return;
      }
    }
    this.#answerFailure(error, decision, res);
  };

  /**
   * A non-idempotent request died with its node (reset, or a pooled socket the dead node had
   * closed). Replayed only when the replica store proves the session unchanged since the last
   * answer the proxy saw: then the node never applied it, and the replay applies it once.
   */
  async #retryIfUnchanged(
    req: ProxiedRequest,
    res: ProxiedResponse,
    decision: RouteDecision,
    error: Error,
  ): Promise<void> {
    let isSafe = false;
    const mayReplay = this.#options.mayReplay;
    try {
      // No answer within the upstream timeout: not proven safe, so not replayed.
      isSafe =
        mayReplay !== undefined &&
        (await boundedWait(mayReplay(decision.key), this.#upstream.timeoutMs, () => false));
    } catch {
      isSafe = false;
    }
    if (res.destroyed) return;
    if (!isSafe) {
      this.#answerFailure(error, decision, res);
      return;
    }
    this.counters.retries++;
    await this.#retry(req, res, decision);
  }

  /**
   * The keep-alive race: the node closed an idle pooled socket just as we reused it. Not a
   * node failure (no passive-health report, no failover): replayed once on the same node
   * over a new, unpooled connection.
   */
  async #retryFresh(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    res[kFreshRetry] = true;
    this.counters.retries++;
    try {
      if (req[kBody] !== undefined) await bodyRead(req);
    } catch {
      return;
    }
    const body = req[kBody];
    if (res.destroyed || body === null) return;
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision.sessionId);
    res[kProxyReq] = this.#forwarder.forward(req, res, decision.node.upstream, head, body ?? [], true);
  }

  #answerFailure(error: Error, decision: RouteDecision | undefined, res: ServerResponse): void {
    const clientError = toClientError(error);
    this.#options.logger.warn(
      { node: decision?.node.id, code: (error as NodeJS.ErrnoException).code, error: error.message },
      `upstream request failed: ${clientError.code}`,
    );
    sendError(res, clientError, clientError instanceof NoHealthyNodeError ? RETRY_AFTER : undefined);
  }

  /**
   * A refused connection never reached the node: replay it, POST included. A request that
   * may have reached a failing node is replayed if its method is idempotent, and otherwise
   * only once the replica store proves it left no trace.
   */
  #retryability(
    req: IncomingMessage,
    res: ServerResponse,
    error: Error,
  ): 'yes' | 'no' | 'if-session-unchanged' {
    if (res.headersSent || ((res as ProxiedResponse)[kAttempts] ?? 1) >= MAX_ATTEMPTS) return 'no';
    if ((req as ProxiedRequest)[kBody] === null) return 'no';
    if (isConnectRefused(error)) return 'yes';
    if (!isNodeFailure(error)) return 'no';
    return isIdempotent(req.method) ? 'yes' : 'if-session-unchanged';
  }

  readonly #onClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
    this.counters.clientErrors++;
    // A response already under way (the node answered before the body was in, then the client
    // stalled): an error written now would land inside that response's body. Just cut it.
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
  };

  /** A request refused on its head alone: a malformed one also loses its connection (RFC 9112 §3.2). */
  #refuseHead(res: ServerResponse, error: StickyError): void {
    if (error.statusCode === 400 || error.statusCode === 431) {
      this.counters.clientErrors++;
      res.shouldKeepAlive = false;
    }
    sendError(res, error);
  }

  #refuse(res: ServerResponse, error: unknown): void {
    if (error instanceof UpstreamTimeoutError) this.counters.upstreamTimeouts++;
    if (error instanceof NoHealthyNodeError) {
      this.counters.noHealthyNode++;
      sendError(res, error, RETRY_AFTER);
      return;
    }
    sendError(res, error instanceof StickyError ? error : toClientError(error));
  }
}

/**
 * How often Node sweeps connections for expired header and request timeouts: a quarter of
 * the shorter one, at most 1 s and at least 10 ms. Fixed at start (a reload cannot change it).
 */
export function timeoutCheckIntervalOf(timeouts: { headers: number; request: number }): number {
  return Math.max(10, Math.min(1000, Math.floor(Math.min(timeouts.headers, timeouts.request) / 4)));
}

/** An idempotent request reset on a reused pooled socket before any answer, not yet replayed fresh. */
/**
 * Resolves once the client's body has been read to its end: every chunk emitted, so in the
 * replay buffer. Not `req.complete`, which turns true when the parser has the last byte: the
 * chunks can still sit unread in a paused request (an attempt refused before undici read any
 * of the body), and a replay then would send an empty body. Rejects if the client leaves first.
 */
function bodyRead(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onEnd = (): void => {
      req.off('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      req.off('end', onEnd);
      if (req.readableEnded) resolve();
      else reject(new Error('the client left before its body ended'));
    };
    req.once('end', onEnd);
    req.once('close', onClose);
    // Its attempt is over: nothing else will ask for the rest of the body.
    req.resume();
  });
}

function isStaleReuse(req: IncomingMessage, res: ServerResponse, error: Error): boolean {
  const proxied = res as ProxiedResponse;
  return (
    isConnectionLost(error) &&
    (proxied[kProxyReq]?.reusedSocket ?? proxied[kReused]) === true &&
    proxied[kFreshRetry] !== true &&
    !res.headersSent &&
    (req as ProxiedRequest)[kBody] !== null &&
    isIdempotent(req.method)
  );
}

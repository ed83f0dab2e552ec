import {
  createServer,
  ServerResponse,
  type Agent,
  type ClientRequest,
  type IncomingMessage,
  type Server,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { once } from 'node:events';
import httpProxy from 'http-proxy';
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
import { SESSION_HEADER, SESSION_USED_HEADER } from '../protocol.js';
import { normalizeAddress, sanitizeRequestHeaders } from './header-hygiene.js';
import { isInternalPath } from './internal-path.js';
import type { RouteDecision, Router } from './router.js';
import { sendError, sendSocketError } from './send-error.js';
import { isConnectRefused, isNodeFailure, toClientError } from './upstream-errors.js';

const kRoute = Symbol('stickylb.route');
const kProxyReq = Symbol('stickylb.proxyReq');
const kAttempts = Symbol('stickylb.attempts');
const kBody = Symbol('stickylb.body');
const kBodyBytes = Symbol('stickylb.bodyBytes');
const kStartedAt = Symbol('stickylb.startedAt');
const kClientRes = Symbol('stickylb.clientRes');
const kProxyRes = Symbol('stickylb.proxyRes');
const kUpgradeState = Symbol('stickylb.upgradeState');

/** Per-request state rides on the response object itself: no closure per request. */
type ProxiedResponse = ServerResponse & {
  [kRoute]?: RouteDecision;
  [kProxyReq]?: ClientRequest;
  /** The node's answer being piped in, once its headers arrived. */
  [kProxyRes]?: IncomingMessage;
  [kAttempts]?: number;
  /** `performance.now()` when the request arrived (admin latency). */
  [kStartedAt]?: number;
};
/** A request whose body is kept (up to maxBodyBytes) so a refused attempt can be replayed; null: too big. */
type ProxiedRequest = IncomingMessage & {
  [kRoute]?: RouteDecision;
  [kBody]?: Buffer[] | null;
  [kBodyBytes]?: number;
};
/** An upgrade request: 'pending' until the node's 101, then 'open'; 'abandoned' if the client left first. */
type UpgradeRequest = ProxiedRequest & { [kUpgradeState]?: 'pending' | 'open' | 'abandoned' };
/** A node's answer, pointing at the client response it is piped into. */
type UpstreamResponse = IncomingMessage & { [kClientRes]?: ServerResponse };

/** Methods a proxy may replay after the node may have seen them (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
/** Attempts per request: the first node and one failover target. */
const MAX_ATTEMPTS = 2;

const NOT_FOUND = new NotFoundError();
const RETRY_AFTER = { 'retry-after': '1' };

/** Counters the admin API and metrics read. */
export interface ProxyCounters {
  requests: number;
  upstreamErrors: number;
  upstreamTimeouts: number;
  clientAborts: number;
  noHealthyNode: number;
  clientErrors: number;
  /** Requests replayed on another node after theirs refused or failed. */
  retries: number;
  /** Responses cut off because the node's connection ended before their body did (kill -9, bad framing). */
  truncatedResponses: number;
}

/** All proxy counters at zero. */
export function createProxyCounters(): ProxyCounters {
  return {
    requests: 0,
    upstreamErrors: 0,
    upstreamTimeouts: 0,
    clientAborts: 0,
    noHealthyNode: 0,
    clientErrors: 0,
    retries: 0,
    truncatedResponses: 0,
  };
}

export interface ProxyServerOptions {
  config: Config['proxy'];
  router: Router;
  cookie: SessionCookie;
  affinity: AffinityView;
  agent: Agent;
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
 * The client-facing HTTP server: routes each request with the Router, forwards it with
 * http-proxy over a keep-alive agent, adds the session cookie to the node's answer, and
 * turns every failure into a JSON error. Handlers are bound once; per-request state lives
 * on the response object, so the hot path allocates no closures.
 */
export class ProxyServer {
  readonly server: Server;
  readonly counters: ProxyCounters = createProxyCounters();
  /** Set by whoever keeps per-node rate and latency (the admin's NodeTraffic); `performance.now()` clock. */
  onResponse: ResponseHook | undefined = undefined;
  readonly #proxy: httpProxy;
  readonly #options: ProxyServerOptions;
  readonly #trusted: Set<string>;
  readonly #upgraded = new Set<Duplex>();
  readonly #onUpstreamTimeout: (this: ClientRequest) => void;
  /** Mutable so a reload can change it under the shared timeout handler. */
  readonly #upstream: { timeoutMs: number };
  readonly #onResponseClose: (this: ProxiedResponse) => void;
  readonly #captureChunk: (this: ProxiedRequest, chunk: Buffer) => void;
  readonly #onUpstreamResponseClose: (this: UpstreamResponse) => void;

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
      },
      this.#onRequest,
    );
    this.server.maxConnections = config.maxConnections;
    this.server.on('upgrade', this.#onUpgrade);
    this.server.on('clientError', this.#onClientError);

    this.#proxy = httpProxy.createProxyServer({ ws: true, xfwd: false });
    this.#proxy.on('proxyReq', this.#onProxyReq);
    this.#proxy.on('proxyRes', this.#onProxyRes);
    this.#proxy.on('proxyReqWs', this.#onProxyReqWs);
    // Never reached (every call passes a callback), but http-proxy rethrows without a listener.
    this.#proxy.on('error', this.#onProxyError);

    const counters = this.counters;
    const upstream = this.#upstream;
    this.#onUpstreamTimeout = function onUpstreamTimeout(this: ClientRequest) {
      counters.upstreamTimeouts++;
      this.destroy(new UpstreamTimeoutError(upstream.timeoutMs));
    };
    // http-proxy pipes the node's answer without watching it: a body cut short (the node died,
    // or sent less than its Content-Length) would leave the client waiting forever. Cut the
    // client's connection too, so it sees a truncated response, never a hang or a fake end.
    this.#onUpstreamResponseClose = function onUpstreamResponseClose(this: UpstreamResponse) {
      const res = this[kClientRes];
      if (this.complete || res === undefined || res.destroyed || res.writableEnded) return;
      counters.truncatedResponses++;
      res.destroy();
    };
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

  /** Applies reloaded timeouts and limits to the running server (SIGHUP); nothing is dropped. */
  reconfigure(config: Config['proxy']): void {
    this.server.headersTimeout = config.timeouts.headers;
    this.server.requestTimeout = config.timeouts.request;
    this.server.keepAliveTimeout = config.timeouts.idle;
    this.server.maxConnections = config.maxConnections;
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
    for (const socket of this.#upgraded) socket.end();
    const timer = setTimeout(() => {
      this.server.closeAllConnections();
      for (const socket of this.#upgraded) socket.destroy();
    }, graceMs);
    timer.unref();
    // Keep-alive connections that finish their last request close instead of idling.
    const idleSweep = setInterval(() => this.server.closeIdleConnections(), 50);
    idleSweep.unref();
    await closed;
    clearTimeout(timer);
    clearInterval(idleSweep);
    this.#proxy.close();
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.counters.requests++;
    if (isInternalPath(req.url ?? '/')) {
      sendError(res, NOT_FOUND);
      return;
    }
    const clientIp = normalizeAddress(req.socket.remoteAddress);
    let decision: RouteDecision;
    try {
      decision = this.#options.router.route(req, clientIp);
    } catch (error) {
      this.#refuse(res, error);
      return;
    }
    sanitizeRequestHeaders(req.headers, clientIp, this.#trusted.has(clientIp), false, false);
    const proxied = res as ProxiedResponse;
    proxied[kStartedAt] = performance.now();
    proxied[kRoute] = decision;
    (req as ProxiedRequest)[kRoute] = decision;
    res.on('close', this.#onResponseClose);
    if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined) {
      (req as ProxiedRequest)[kBody] = [];
      req.on('data', this.#captureChunk);
    }
    if (decision.mustMove) {
      void this.#moveThenForward(req, proxied, decision);
      return;
    }
    proxied[kAttempts] = 1;
    decision.node.inFlight++;
    req.headers[SESSION_HEADER] = decision.sessionId;
    this.#proxy.web(req, res, decision.node.proxyOptions, this.#onProxyError);
  };

  /** Rare path: the session's node is down; move the session, then forward to its new node. */
  async #moveThenForward(req: IncomingMessage, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
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
    req.headers[SESSION_HEADER] = decision.sessionId;
    this.#proxy.web(req, res, node.proxyOptions, this.#onProxyError);
  }

  /** The node a request goes to instead of `fromNodeId`: its session's new node, or any node for a new session. */
  #moveOrPick(decision: RouteDecision, fromNodeId: string): Promise<ProxyNode> {
    if (decision.isNew || this.#options.moveSession === undefined) {
      return Promise.resolve(this.#options.router.pickNode(fromNodeId));
    }
    return this.#options.moveSession(decision.key, fromNodeId);
  }

  /** Replays a request on the session's new node after its node refused (or, if idempotent, failed) it. */
  async #retry(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    res[kAttempts] = (res[kAttempts] ?? 1) + 1;
    const from = decision.node;
    let node: ProxyNode;
    try {
      node = await this.#moveOrPick(decision, from.id);
      // A body still arriving must be complete before it can be replayed.
      if (req[kBody] !== undefined && !req.complete) await once(req, 'end');
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
    req.headers[SESSION_HEADER] = decision.sessionId;
    const options =
      body !== undefined && body.length > 0
        ? { ...node.proxyOptions, buffer: Readable.from(body) }
        : node.proxyOptions;
    this.#proxy.web(req, res, options, this.#onProxyError);
  }

  readonly #onProxyReq = (proxyReq: ClientRequest, _req: IncomingMessage, res: ServerResponse): void => {
    (res as ProxiedResponse)[kProxyReq] = proxyReq;
    proxyReq.setTimeout(this.#upstream.timeoutMs, this.#onUpstreamTimeout);
  };

  readonly #onProxyRes = (proxyRes: IncomingMessage, _req: IncomingMessage, res: ServerResponse): void => {
    const decision = (res as ProxiedResponse)[kRoute];
    if (decision === undefined) return;
    (proxyRes as UpstreamResponse)[kClientRes] = res;
    (res as ProxiedResponse)[kProxyRes] = proxyRes;
    // 'on', not 'once': once allocates a wrapper per response; 'close' fires once anyway.
    proxyRes.on('close', this.#onUpstreamResponseClose);
    const headers = proxyRes.headers;
    const used = headers[SESSION_USED_HEADER];
    const isUsed = used !== undefined;
    if (isUsed) {
      delete headers[SESSION_USED_HEADER];
      this.#options.affinity.record(decision.key, decision.node.id, decision.isNew, Number(used) || 0);
      if (decision.clientIp !== undefined)
        this.#options.router.rememberClientIp(decision.clientIp, decision.sessionId);
    }
    // A new id is kept only if the node used it; a moved session's id is re-issued regardless.
    if (decision.setCookie && (isUsed || !decision.isNew))
      appendSetCookie(headers, this.#options.cookie.serialize(decision.sessionId));
    // The node's keep-alive terms are for our agent, not for the client.
    if (headers['keep-alive'] !== undefined) delete headers['keep-alive'];
  };

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.counters.requests++;
    // Before http-proxy attaches its own, a reset would otherwise crash the process (http-proxy#1468).
    socket.on('error', onClientSocketError);
    if (isInternalPath(req.url ?? '/')) {
      sendSocketError(socket, NOT_FOUND);
      return;
    }
    const clientIp = normalizeAddress((socket as Socket).remoteAddress);
    let decision: RouteDecision;
    try {
      decision = this.#options.router.route(req, clientIp);
    } catch (error) {
      if (error instanceof NoHealthyNodeError) this.counters.noHealthyNode++;
      sendSocketError(socket, error instanceof StickyError ? error : toClientError(error));
      return;
    }
    sanitizeRequestHeaders(req.headers, clientIp, this.#trusted.has(clientIp), false, true);
    (req as UpgradeRequest)[kRoute] = decision;
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    if (decision.mustMove) {
      void this.#moveThenUpgrade(req, socket, head, decision);
      return;
    }
    req.headers[SESSION_HEADER] = decision.sessionId;
    this.#proxy.ws(req, socket, head, decision.node.proxyOptions, this.#onProxyError);
  };

  async #moveThenUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    decision: RouteDecision,
  ): Promise<void> {
    let node: ProxyNode;
    try {
      node = await this.#moveOrPick(decision, decision.fromNodeId);
    } catch (error) {
      sendSocketError(socket, error instanceof StickyError ? error : toClientError(error));
      return;
    }
    if (socket.destroyed) return;
    this.#options.router.reroute(decision, node);
    req.headers[SESSION_HEADER] = decision.sessionId;
    this.#proxy.ws(req, socket, head, node.proxyOptions, this.#onProxyError);
  }

  readonly #onProxyReqWs = (proxyReq: ClientRequest, req: IncomingMessage): void => {
    const decision = (req as UpgradeRequest)[kRoute];
    if (decision === undefined) return;
    const upgrade = req as UpgradeRequest;
    upgrade[kUpgradeState] = 'pending';
    // A client that leaves mid-handshake: http-proxy would keep the request to the node open.
    req.socket.once('close', () => {
      if (upgrade[kUpgradeState] !== 'pending') return;
      upgrade[kUpgradeState] = 'abandoned';
      proxyReq.destroy();
    });
    // Registered before http-proxy's own 'upgrade' listener, so the 101 it writes carries our cookie.
    proxyReq.once('upgrade', (proxyRes: IncomingMessage) => {
      upgrade[kUpgradeState] = 'open';
      this.#options.affinity.record(
        decision.key,
        decision.node.id,
        decision.isNew,
        Number(proxyRes.headers[SESSION_USED_HEADER]) || 0,
      );
      delete proxyRes.headers[SESSION_USED_HEADER];
      if (decision.setCookie)
        appendSetCookie(proxyRes.headers, this.#options.cookie.serialize(decision.sessionId));
    });
  };

  readonly #onProxyError = (error: Error, req: IncomingMessage, target: ServerResponse | Duplex): void => {
    const upgradeState = (req as UpgradeRequest)[kUpgradeState];
    if (upgradeState === 'abandoned') {
      // The client left mid-handshake and we aborted the node's side: not the node's failure.
      this.counters.clientAborts++;
      target.destroy();
      return;
    }
    const decision = (req as ProxiedRequest)[kRoute];
    if (!(error instanceof UpstreamTimeoutError)) this.counters.upstreamErrors++;
    if (decision !== undefined && isNodeFailure(error)) this.#options.onNodeFailure?.(decision.node, error);
    if (upgradeState === 'open') {
      // The node failed after its 101: the connection carries WebSocket frames, where an HTTP
      // error page is garbage. Close it.
      target.destroy();
      return;
    }
    if (target instanceof ServerResponse) detachUpstream(target as ProxiedResponse);
    if (target instanceof ServerResponse && decision !== undefined) {
      const retry = this.#retryability(req, target, error);
      if (retry === 'yes') {
        this.counters.retries++;
        void this.#retry(req as ProxiedRequest, target as ProxiedResponse, decision);
        return;
      }
      if (retry === 'if-session-unchanged' && this.#options.mayReplay !== undefined) {
        void this.#retryIfUnchanged(req as ProxiedRequest, target as ProxiedResponse, decision, error);
        return;
      }
    }
    this.#answerFailure(error, decision, target);
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
    try {
      isSafe = (await this.#options.mayReplay?.(decision.key)) === true;
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

  #answerFailure(error: Error, decision: RouteDecision | undefined, target: ServerResponse | Duplex): void {
    const clientError = toClientError(error);
    this.#options.logger.warn(
      { node: decision?.node.id, code: (error as NodeJS.ErrnoException).code, error: error.message },
      `upstream request failed: ${clientError.code}`,
    );
    if (target instanceof ServerResponse) sendError(target, clientError);
    else sendSocketError(target, clientError);
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
    return IDEMPOTENT.has(req.method ?? '') ? 'yes' : 'if-session-unchanged';
  }

  readonly #onClientError = (error: NodeJS.ErrnoException, socket: Duplex): void => {
    this.counters.clientErrors++;
    if (error.code === 'ECONNRESET' || !socket.writable) {
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

  #refuse(res: ServerResponse, error: unknown): void {
    if (error instanceof NoHealthyNodeError) {
      this.counters.noHealthyNode++;
      sendError(res, error, RETRY_AFTER);
      return;
    }
    sendError(res, error instanceof StickyError ? error : toClientError(error));
  }
}

/** Appends to `set-cookie` (Node gives it as an array): the node's own cookies must survive. */
function appendSetCookie(headers: IncomingMessage['headers'], value: string): void {
  const existing = headers['set-cookie'];
  if (existing === undefined) headers['set-cookie'] = [value];
  else existing.push(value);
}

/**
 * Stops the node's answer piping into `res` once its request failed (a framing error mid-body):
 * its next chunk would land after our error answer or in the retry's (write after end throws).
 */
function detachUpstream(res: ProxiedResponse): void {
  const proxyRes = res[kProxyRes] as UpstreamResponse | undefined;
  if (proxyRes === undefined) return;
  res[kProxyRes] = undefined;
  proxyRes[kClientRes] = undefined;
  proxyRes.unpipe(res);
  proxyRes.destroy();
}

function onClientSocketError(this: Duplex): void {
  this.destroy();
}

import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../../config/index.js';
import { RequestTimeoutError, UpstreamTimeoutError } from '../../errors.js';
import type { ProxyNode } from '../../nodes/index.js';
import { normalizeAddress } from '../header-hygiene.js';
import type { ProxyCounters } from '../proxy-counters.js';
import type { RouteDecision, Router } from '../router.js';
import { sendSocketError } from '../send-error.js';
import { sweepIdleConnections } from '../../nodes/index.js';
import { ClientConnection, closeSoon, Phase } from './client-connection.js';
import type { RequestLimits } from './request-head.js';

/** What a connection handed over mid-request tells the full path about its first request. */
export interface Inherited {
  /** Routed (and counted) on the fast path already: the full path must not do either again. */
  decision?: RouteDecision;
  /** Routing failed (no healthy node): the full path answers it. */
  routeError?: unknown;
  /** The attempt on `decision.node` failed before any answer: the full path retries or answers. */
  failure?: { error: Error; isReused: boolean };
  /** `performance.now()` when the request arrived. */
  startedAt: number;
  /** Attempts already made (a refused first node was retried on the fast path). */
  attempts?: number;
  /** Already sent again on a new connection after a reused one broke (never twice). */
  freshRetried?: boolean;
}

export interface FastPathOptions {
  /** Node's HTTP server of the full path: its connection handler takes what the fast path hands over. */
  server: Server;
  router: Router;
  counters: ProxyCounters;
  config: Config['proxy'];
  trusted: ReadonlySet<string>;
  /** The node answered: records the session if the node used it; returns the Set-Cookie value, if any. */
  onAnswer(decision: RouteDecision, sessionUsed: string | undefined): string | undefined;
  /** The node a request goes to instead of `fromNodeId` (its session moved there): ProxyServer's. */
  moveOrPick(decision: RouteDecision, fromNodeId: string): Promise<ProxyNode>;
  /** Passive health: a node refused a connection. */
  onNodeFailure: ((node: ProxyNode, error: Error) => void) | undefined;
}

/**
 * The fast path (issue #6): plain HTTP/1.1 requests served on the raw client socket and a
 * raw keep-alive connection to the node, without Node's HTTP objects or undici (the CPU
 * profile's two biggest costs). It takes every new connection first; whatever it does not
 * handle goes to the full path (ProxyServer on Node's HTTP server) with the bytes unread,
 * and stays there. Timeouts are checked by one sweep over the connections, as Node's own
 * server does, instead of a timer per request.
 */
export class FastPath {
  readonly router: Router;
  readonly counters: ProxyCounters;
  limits: RequestLimits;
  readonly onAnswer: FastPathOptions['onAnswer'];
  readonly moveOrPick: FastPathOptions['moveOrPick'];
  readonly onNodeFailure: FastPathOptions['onNodeFailure'];
  /** Told of every answer when it ends (admin rate and latency), as ProxyServer.onResponse. */
  onResponse: ((node: ProxyNode, statusCode: number, startedAtMs: number) => void) | undefined;
  /** Said on every answer that keeps the connection, as Node's server does (clients close idle ones in time). */
  keepAliveLines: string;
  /** Bytes of pipelined requests buffered behind an answer before the socket is paused. */
  maxPipelinedBytes: number;
  readonly #trusted: ReadonlySet<string>;
  readonly #connections = new Set<ClientConnection>();
  readonly #inherited = new WeakMap<Socket, Inherited>();
  readonly #fullPath: (socket: Socket) => void;
  #timeouts: Config['proxy']['timeouts'];
  #timer: NodeJS.Timeout;
  #sweepIntervalMs: number;
  #isClosed = false;

  constructor(options: FastPathOptions) {
    const { config, server } = options;
    this.router = options.router;
    this.counters = options.counters;
    this.onAnswer = options.onAnswer;
    this.moveOrPick = options.moveOrPick;
    this.onNodeFailure = options.onNodeFailure;
    this.#trusted = options.trusted;
    this.#timeouts = config.timeouts;
    this.keepAliveLines = keepAliveLinesOf(config.timeouts.idle);
    this.limits = limitsOf(config);
    this.maxPipelinedBytes = config.maxHeaderBytes + this.limits.maxBodyBytes;
    // Node's HTTP server keeps listening (maxConnections, close); only its connection
    // handler moves behind ours.
    const [nodeHandler] = server.listeners('connection') as Array<(socket: Socket) => void>;
    if (nodeHandler === undefined) throw new Error('the HTTP server has no connection handler');
    server.removeListener('connection', nodeHandler);
    this.#fullPath = (socket) => nodeHandler.call(server, socket);
    server.on('connection', this.#accept);
    this.#sweepIntervalMs = sweepIntervalOf(config.timeouts);
    this.#timer = this.#startSweeps();
  }

  /** How often timeouts are checked: a quarter of the shortest timeout, between 10 ms and 1 s. */
  get sweepIntervalMs(): number {
    return this.#sweepIntervalMs;
  }

  #startSweeps(): NodeJS.Timeout {
    const timer = setInterval(() => this.sweep(performance.now()), this.#sweepIntervalMs);
    timer.unref();
    return timer;
  }

  readonly #accept = (socket: Socket): void => {
    const clientIp = normalizeAddress(socket.remoteAddress);
    this.#connections.add(new ClientConnection(socket, this, clientIp, this.#trusted.has(clientIp)));
  };

  /** Gives a connection to the full path for good; its unread bytes were put back (unshift). */
  handOver(socket: Socket, inherited: Inherited | undefined): void {
    if (inherited !== undefined) this.#inherited.set(socket, inherited);
    this.#fullPath(socket);
    socket.resume();
  }

  /** The fast path's state for the first request of a handed-over connection, once. */
  takeInherited(socket: Socket): Inherited | undefined {
    const inherited = this.#inherited.get(socket);
    if (inherited !== undefined) this.#inherited.delete(socket);
    return inherited;
  }

  forget(connection: ClientConnection): void {
    this.#connections.delete(connection);
  }

  /** A reload (SIGHUP): new timeouts and limits apply to the next request. */
  reconfigure(config: Config['proxy']): void {
    this.limits = limitsOf(config);
    this.maxPipelinedBytes = config.maxHeaderBytes + this.limits.maxBodyBytes;
    this.#timeouts = config.timeouts;
    this.keepAliveLines = keepAliveLinesOf(config.timeouts.idle);
    // A lowered timeout is checked as often as one set at start, not up to 1 s late.
    const interval = sweepIntervalOf(config.timeouts);
    if (interval !== this.#sweepIntervalMs && !this.#isClosed) {
      clearInterval(this.#timer);
      this.#sweepIntervalMs = interval;
      this.#timer = this.#startSweeps();
    }
  }

  /** Applies the timeouts: idle keep-alive, a request slow to arrive, a node slow to answer. */
  sweep(now: number): void {
    sweepIdleConnections(now);
    const { idle, headers, request, upstream } = this.#timeouts;
    for (const connection of this.#connections) {
      const elapsed = now - connection.since;
      switch (connection.phase) {
        case Phase.Idle:
          if (elapsed >= idle) connection.closeIfIdle();
          break;
        case Phase.Reading:
          if (elapsed >= (connection.isAwaitingBody ? request : Math.min(headers, request))) {
            this.counters.clientErrors++;
            connection.phase = Phase.Gone;
            connection.since = now;
            sendSocketError(connection.socket, new RequestTimeoutError());
            closeSoon(connection.socket);
          }
          break;
        case Phase.Waiting:
        case Phase.Relaying:
          if (elapsed >= upstream && !connection.isMoving)
            connection.timeOut(new UpstreamTimeoutError(upstream));
          break;
        // A client that takes nothing of its answers for the upstream timeout is cut, as a
        // stalled relay is: one waiting to be served its next request, or to be closed.
        case Phase.Draining:
        case Phase.Gone:
          if (elapsed >= upstream && !connection.socket.destroyed) connection.cutSlowReader();
          break;
      }
    }
  }

  /** Ends idle connections now; busy ones end after their answer (graceful shutdown). */
  closeIdle(): void {
    for (const connection of this.#connections) {
      connection.isClosing = true;
      connection.closeIfIdle();
    }
  }

  /** Cuts every connection still open (the end of the grace period). */
  destroyAll(): void {
    for (const connection of this.#connections) connection.socket.destroy();
  }

  close(): void {
    this.#isClosed = true;
    clearInterval(this.#timer);
  }
}

function limitsOf(config: Config['proxy']): RequestLimits {
  return {
    maxHeaderBytes: config.maxHeaderBytes,
    maxHeaderCount: config.maxHeaderCount,
    // A replay needs the whole body in hand: larger ones stream on the full path.
    maxBodyBytes: Math.min(config.maxBodyBytes, 64 * 1024),
  };
}

function keepAliveLinesOf(idleMs: number): string {
  return `\r\nconnection: keep-alive\r\nkeep-alive: timeout=${Math.floor(idleMs / 1000)}`;
}

/** A quarter of the shortest timeout, between 10 ms and 1 s. */
function sweepIntervalOf(timeouts: Config['proxy']['timeouts']): number {
  const shortest = Math.min(timeouts.headers, timeouts.request, timeouts.idle, timeouts.upstream);
  return Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
}

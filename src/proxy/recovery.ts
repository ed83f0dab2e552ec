import type { IncomingMessage, ServerResponse } from 'node:http';
import { NoHealthyNodeError, StickyError, UpstreamTimeoutError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyNode } from '../nodes/index.js';
import { boundedWait } from './bounded-wait.js';
import { setSessionHeader, type RequestHead } from './header-hygiene.js';
import {
  kAttempts,
  kBody,
  kFreshRetry,
  kHead,
  kProxyReq,
  kReused,
  kRoute,
  type ProxiedRequest,
  type ProxiedResponse,
} from './proxied-exchange.js';
import type { ProxyCounters } from './proxy-counters.js';
import type { RouteDecision, Router } from './router.js';
import { sendError } from './send-error.js';
import { detachUpstream, type UpstreamForwarder } from './upstream-forwarder.js';
import {
  isConnectionLost,
  isConnectRefused,
  isIdempotent,
  isNodeFailure,
  toClientError,
} from './upstream-errors.js';

/** Attempts per request: the first node and one failover target. */
const MAX_ATTEMPTS = 2;

const RETRY_AFTER = { 'retry-after': '1' };

/** A body over `proxy.maxBodyBytes` once read whole: it cannot be replayed, and the client still gets an answer. */
function bodyTooLargeToReplay(): StickyError {
  return toClientError(new Error('request body too large to replay'));
}

export interface RecoveryOptions {
  router: Router;
  counters: ProxyCounters;
  logger: Logger;
  /** The proxy's upstream timeout, mutable so a reload changes it. */
  upstream: { timeoutMs: number };
  /** The full path's forwarder (created after this, which is its error handler). */
  forwarder: () => UpstreamForwarder;
  /** Passive health: a proxied request found the node refusing or resetting connections. */
  onNodeFailure: ((node: ProxyNode, error: Error) => void) | undefined;
  /** Moves a session off a node that cannot serve it; resolves to its new node. */
  moveSession: ((key: string, fromNodeId: string) => Promise<ProxyNode>) | undefined;
  /** Whether a non-idempotent request that may have reached a failed node can be replayed. */
  mayReplay: ((key: string) => Promise<boolean>) | undefined;
}

/**
 * What the full path does when a request's node cannot answer it, in one place: move the
 * session and forward to its new node, retry on another node (a refused connection, POST
 * included; an idempotent request that may have reached a failing node), replay a
 * non-idempotent one only once the replica store proves it left no trace, resend once over
 * a fresh connection after the keep-alive race, or answer with a JSON error.
 */
export class Recovery {
  readonly #counters: ProxyCounters;
  readonly #router: Router;
  readonly #logger: Logger;
  readonly #upstream: { timeoutMs: number };
  readonly #forwarder: () => UpstreamForwarder;
  readonly #onNodeFailure: RecoveryOptions['onNodeFailure'];
  readonly #moveSession: RecoveryOptions['moveSession'];
  readonly #mayReplay: RecoveryOptions['mayReplay'];

  constructor(options: RecoveryOptions) {
    this.#counters = options.counters;
    this.#router = options.router;
    this.#logger = options.logger;
    this.#upstream = options.upstream;
    this.#forwarder = options.forwarder;
    this.#onNodeFailure = options.onNodeFailure;
    this.#moveSession = options.moveSession;
    this.#mayReplay = options.mayReplay;
  }

  /** Rare path: the session's node is down; move the session, then forward to its new node. */
  async moveThenForward(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    // The body waits in the request (then TCP) while the session moves, and afterwards streams
    // to the new node as on the plain path, captured for a replay on the way: nothing is read
    // before there is somewhere to send it, so nothing is lost and a body over
    // `maxBodyBytes` is forwarded too (it just cannot be replayed).
    if (req[kBody] !== undefined) req.pause();
    let node: ProxyNode;
    try {
      node = await this.moveOrPick(decision, decision.fromNodeId);
    } catch (error) {
      this.refuse(res, error);
      return;
    }
    if (res.destroyed) return;
    this.#router.reroute(decision, node);
    res[kAttempts] = 1;
    node.inFlight++;
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision);
    res[kProxyReq] = this.#forwarder().forward(req, res, node.upstream, head);
  }

  /**
   * The node a request goes to instead of `fromNodeId`: its session's new node, or any node for
   * a new session. A move (maybe asked of the control plane over IPC) gets the upstream timeout,
   * then a 504: its answer may never come.
   */
  moveOrPick(decision: RouteDecision, fromNodeId: string): Promise<ProxyNode> {
    if (decision.isNew || this.#moveSession === undefined) {
      // A rejection, never a throw: no node left is an answer (503), also to a `.then` caller.
      try {
        return Promise.resolve(this.#router.pickNode(fromNodeId));
      } catch (error) {
        return Promise.reject(error as Error);
      }
    }
    const timeoutMs = this.#upstream.timeoutMs;
    return boundedWait(this.#moveSession(decision.key, fromNodeId), timeoutMs, () => {
      throw new UpstreamTimeoutError(timeoutMs, 'session move did not finish');
    });
  }

  /** Replays a request on the session's new node after its node refused (or, if idempotent, failed) it. */
  async #retry(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    res[kAttempts] = (res[kAttempts] ?? 1) + 1;
    const from = decision.node;
    let node: ProxyNode;
    try {
      node = await this.moveOrPick(decision, from.id);
      // A body still arriving must be read whole before it can be replayed.
      if (req[kBody] !== undefined) await bodyRead(req);
    } catch (error) {
      this.refuse(res, error);
      return;
    }
    const body = req[kBody];
    if (res.destroyed || body === null) {
      if (!res.destroyed) sendError(res, bodyTooLargeToReplay());
      return;
    }
    from.inFlight--;
    node.inFlight++;
    this.#router.reroute(decision, node);
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision);
    res[kProxyReq] = this.#forwarder().forward(req, res, node.upstream, head, body);
  }

  /** The one place a failed upstream request of a plain HTTP request is mapped: retry, replay or answer. */
  readonly onUpstreamError = (error: Error, req: IncomingMessage, res: ServerResponse): void => {
    const decision = (req as ProxiedRequest)[kRoute];
    if (decision !== undefined && isStaleReuse(req, res, error)) {
      void this.#retryFresh(req as ProxiedRequest, res as ProxiedResponse, decision);
      return;
    }
    if (error instanceof UpstreamTimeoutError) this.#counters.upstreamTimeouts++;
    else this.#counters.upstreamErrors++;
    if (decision !== undefined && isNodeFailure(error)) this.#onNodeFailure?.(decision.node, error);
    // A framing error mid-body: the rest of that answer must not follow ours (or a retry's).
    detachUpstream(res);
    if (decision !== undefined) {
      const retry = this.#retryability(req, res, error);
      if (retry === 'yes') {
        this.#counters.retries++;
        void this.#retry(req as ProxiedRequest, res as ProxiedResponse, decision);
        return;
      }
      if (retry === 'if-session-unchanged' && this.#mayReplay !== undefined) {
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
    const mayReplay = this.#mayReplay;
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
    this.#counters.retries++;
    await this.#retry(req, res, decision);
  }

  /**
   * The keep-alive race: the node closed an idle pooled socket just as we reused it. Not a
   * node failure (no passive-health report, no failover): replayed once on the same node
   * over a new, unpooled connection.
   */
  async #retryFresh(req: ProxiedRequest, res: ProxiedResponse, decision: RouteDecision): Promise<void> {
    res[kFreshRetry] = true;
    this.#counters.retries++;
    try {
      if (req[kBody] !== undefined) await bodyRead(req);
    } catch {
      return;
    }
    const body = req[kBody];
    if (res.destroyed || body === null) {
      if (!res.destroyed) sendError(res, bodyTooLargeToReplay());
      return;
    }
    const head = req[kHead] as RequestHead;
    setSessionHeader(head, decision);
    res[kProxyReq] = this.#forwarder().forward(req, res, decision.node.upstream, head, body ?? [], true);
  }

  #answerFailure(error: Error, decision: RouteDecision | undefined, res: ServerResponse): void {
    const clientError = toClientError(error);
    this.#logger.warn(
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

  refuse(res: ServerResponse, error: unknown): void {
    if (error instanceof UpstreamTimeoutError) this.#counters.upstreamTimeouts++;
    if (error instanceof NoHealthyNodeError) {
      this.#counters.noHealthyNode++;
      sendError(res, error, RETRY_AFTER);
      return;
    }
    sendError(res, error instanceof StickyError ? error : toClientError(error));
  }
}

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

/** An idempotent request reset on a reused pooled socket before any answer, not yet replayed fresh. */
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

import type { Socket } from 'node:net';
import { SESSION_HEADER, SESSION_NEW_HEADER } from '../../protocol.js';
import type { ProxyNode, RawPool } from '../../nodes/index.js';
import { isInternalPath } from '../internal-path.js';
import { isConnectionLost, isConnectRefused, isIdempotent } from '../upstream-errors.js';
import type { RouteDecision } from '../router.js';
import type { FastPath, Inherited } from './fast-path.js';
import { NodeConnection, type AnswerSink } from './node-connection.js';
import { INCOMPLETE, readFastRequest, SLOW, type FastRequest } from './request-head.js';
import { Framing, type FastResponse } from './response-head.js';

export const enum Phase {
  /** Between requests, nothing buffered. */
  Idle,
  /** Part of a request has arrived. */
  Reading,
  /** The request went to the node; no answer head yet. */
  Waiting,
  /** Relaying the node's answer. */
  Relaying,
  /** The answer is written, but the client has not taken it yet: its next request waits. */
  Draining,
  /** Handed to the full path, or closing (its last bytes still going out), or closed. */
  Gone,
}

/** A body up to this size is sent in the same write as its head (one syscall, latin1 is byte-exact). */
const INLINE_BODY_BYTES = 16 * 1024;
/** Follows the session header's value on a request whose id was minted for it (see SESSION_NEW_HEADER). */
const NEW_SESSION_LINE = `\r\n${SESSION_NEW_HEADER}: 1`;

/**
 * One client connection on the fast path: reads each request, routes it, writes it to a
 * kept-alive NodeConnection of the session's node in one write, and relays the answer with
 * the cookie added. No IncomingMessage, ServerResponse, stream or closure per request: the
 * request's state is this object's fields. Anything the fast path does not handle — a request
 * outside its subset, a session that must move, any failure before the answer's head — hands
 * the connection (and the request's bytes) to the full path, which then owns it for good.
 */
export class ClientConnection implements AnswerSink {
  phase = Phase.Idle;
  /** `performance.now()` when the current phase began (timeouts, see FastPath.sweep). */
  since: number;
  /** No new request is started: the connection ends after the current answer (shutdown). */
  isClosing = false;
  /** Reading: the head is in, the body (buffered whole, up to 64 KiB) still arriving. */
  isAwaitingBody = false;
  readonly socket: Socket;
  readonly #fast: FastPath;
  readonly #clientIp: string;
  readonly #isTrusted: boolean;
  /** The X-Forwarded-* lines up to the Host value: the same for every request of the connection. */
  readonly #forwarded: string;
  #buf: Buffer | undefined = undefined;
  /** A request whose head is read and whose body is still arriving. */
  #pending: FastRequest | undefined = undefined;
  /** Where to go on searching for the end of a head that is arriving in pieces. */
  #searchFrom = 0;
  #request: Buffer | undefined = undefined;
  /** The request's forwarded head up to the session id, and its body (inline text, or a buffer). */
  #head = '';
  #inlineBody = '';
  #body: Buffer | undefined = undefined;
  #isHeadRequest = false;
  /** The request is on its second node (after a refused connection). */
  #isRetry = false;
  /** The request was sent again on a new connection after a reused one broke. */
  #isFreshRetry = false;
  #method = '';
  #decision: RouteDecision | undefined = undefined;
  #node: ProxyNode | undefined = undefined;
  #upstream: NodeConnection | undefined = undefined;
  #status = 0;
  #startedAt = 0;
  #endsConnection = false;
  /** The client said `Connection: close`. */
  #closes = false;
  #isStalled = false;
  #isPaused = false;

  constructor(socket: Socket, fast: FastPath, clientIp: string, isTrusted: boolean) {
    this.socket = socket;
    this.#fast = fast;
    this.#clientIp = clientIp;
    this.#isTrusted = isTrusted;
    this.#forwarded = `\r\nx-forwarded-for: ${clientIp}\r\nx-forwarded-proto: http\r\nx-forwarded-host: `;
    this.since = performance.now();
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('drain', this.#onDrain);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onClose);
    socket.on('error', ignore);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    if (this.phase === Phase.Idle) {
      this.phase = Phase.Reading;
      this.since = performance.now();
    }
    if (this.phase === Phase.Reading) this.#serve();
    else if (this.#buf.length > this.#fast.maxPipelinedBytes) {
      // Pipelined requests wait for the answer ahead of them; past a bound, in TCP.
      this.#isPaused = true;
      this.socket.pause();
    }
  };

  #serve(): void {
    const fast = this.#fast;
    const buf = this.#buf as Buffer;
    let request = this.#pending;
    if (request === undefined) {
      const read = readFastRequest(buf, fast.limits, this.#isTrusted, this.#searchFrom);
      if (read === INCOMPLETE) {
        // A head arriving in pieces is searched from where the last search stopped.
        this.#searchFrom = Math.max(0, buf.length - 3);
        return;
      }
      this.#searchFrom = 0;
      if (read === SLOW || isInternalPath(read.target)) {
        this.#handOver(buf, undefined);
        return;
      }
      request = read;
    }
    if (buf.length < request.size) {
      // Held until whole, as nginx does by default: the node never sees a request that
      // stalls midway. The head is not read again as the body arrives.
      this.#pending = request;
      this.isAwaitingBody = true;
      return;
    }
    this.#pending = undefined;
    this.isAwaitingBody = false;
    // Counted here once: a request handed over from now on is not counted again.
    fast.counters.requests++;
    let decision: RouteDecision;
    try {
      decision = fast.router.route(request.target, request.cookie, this.#clientIp);
    } catch (error) {
      this.#handOver(buf, { routeError: error, startedAt: performance.now() });
      return;
    }
    this.#startedAt = performance.now();
    this.#decision = decision;
    this.#closes = request.closes;
    this.#isRetry = false;
    this.#isFreshRetry = false;
    this.#method = request.method;
    this.#isHeadRequest = request.method === 'HEAD';
    this.#request = buf.length === request.size ? buf : buf.subarray(0, request.size);
    this.#buf = buf.length === request.size ? undefined : buf.subarray(request.size);
    // Everything but the session id, which a move or a retry on another node changes.
    let head = request.head;
    if (request.addsZeroLength) head += '\r\ncontent-length: 0';
    this.#head = `${head}${this.#forwarded}${request.host}\r\n${SESSION_HEADER}: `;
    this.#inlineBody = '';
    this.#body = undefined;
    if (request.bodyLength > INLINE_BODY_BYTES) this.#body = buf.subarray(request.bodyStart, request.size);
    else if (request.bodyLength > 0)
      this.#inlineBody = buf.toString('latin1', request.bodyStart, request.size);
    if (decision.mustMove) this.#move(decision.fromNodeId);
    else this.#send(false, this.#startedAt);
  }

  /** Writes the request to a connection of its node: pooled, new, or (none to be had) the full path's. */
  #send(isFresh = false, now = performance.now()): void {
    const decision = this.#decision as RouteDecision;
    const pool = decision.node.upstream.raw as RawPool<NodeConnection> | undefined;
    // An https node, or every connection to the node busy (the full path's pool queues it).
    const upstream =
      pool === undefined ? undefined : ((isFresh ? undefined : pool.take(now)) ?? NodeConnection.open(pool));
    if (upstream === undefined) {
      this.#handOverRequest(undefined);
      return;
    }
    this.since = now;
    this.phase = Phase.Waiting;
    const node = (this.#node = decision.node);
    node.inFlight++;
    this.#upstream = upstream;
    upstream.send(
      this,
      `${this.#head}${decision.sessionId}${decision.isNew ? NEW_SESSION_LINE : ''}\r\n\r\n${this.#inlineBody}`,
      this.#body,
      this.#isHeadRequest,
    );
  }

  /**
   * The session's node cannot take the request (down, or it refused the connection): the
   * session moves, state and all (or a new one gets another node), then the request goes to
   * its new node. The move is bounded by the upstream timeout; its failure is answered by the
   * full path (504, 503).
   */
  #move(fromNodeId: string): void {
    this.phase = Phase.Waiting;
    this.since = performance.now();
    const decision = this.#decision as RouteDecision;
    this.#fast.moveOrPick(decision, fromNodeId).then(
      (node) => {
        // The client left meanwhile (or the connection moved on): nothing to send.
        if (this.#decision !== decision || this.phase !== Phase.Waiting) return;
        this.#fast.router.reroute(decision, node);
        this.#send();
      },
      (error: unknown) => {
        if (this.#decision !== decision || this.phase !== Phase.Waiting) return;
        this.#handOverRequest({ routeError: error });
      },
    );
  }

  /** True while a move is under way (no node connection yet): bounded by the move itself. */
  get isMoving(): boolean {
    return this.phase === Phase.Waiting && this.#upstream === undefined;
  }

  onAnswerHead(response: FastResponse, body: Buffer | undefined): void {
    this.phase = Phase.Relaying;
    this.#fast.counters.fastPathRequests++;
    // From here the upstream timeout bounds each silence of the node, as undici's bodyTimeout.
    this.since = performance.now();
    this.#status = response.status;
    let head = response.head;
    const cookie = this.#fast.onAnswer(this.#decision as RouteDecision, response.sessionUsed);
    if (cookie !== undefined) head += `\r\nset-cookie: ${cookie}`;
    // A body that ends with the node's connection ends the client's too.
    this.#endsConnection = response.framing === Framing.Close || this.#closes || this.isClosing;
    head += this.#endsConnection ? '\r\nconnection: close' : this.#fast.keepAliveLines;
    head += '\r\n\r\n';
    let isWritten: boolean;
    if (body === undefined) isWritten = this.socket.write(head, 'latin1');
    else if (body.length <= INLINE_BODY_BYTES)
      isWritten = this.socket.write(head + body.toString('latin1'), 'latin1');
    else {
      this.socket.cork();
      this.socket.write(head, 'latin1');
      // A copy: the socket may hold it past this call, the node's read buffer is reused.
      isWritten = this.socket.write(Buffer.from(body));
      this.socket.uncork();
    }
    if (!isWritten) this.#stall();
  }

  onAnswerBody(chunk: Buffer): void {
    // A stall keeps its own start: the client, not the node, is the one taking its time.
    if (!this.#isStalled) this.since = performance.now();
    // A copy, as above.
    if (!this.socket.write(Buffer.from(chunk))) this.#stall();
  }

  onAnswerEnd(): void {
    this.#settle();
    if (this.#endsConnection || this.isClosing) {
      this.#close();
      return;
    }
    if (this.socket.writableNeedDrain) {
      // The client asks faster than it takes the answers: serving its next (pipelined)
      // request now would pile answers up in memory without bound, so it waits for 'drain',
      // as in Node's server; the upstream timeout bounds the wait (FastPath.sweep).
      this.phase = Phase.Draining;
      this.since = performance.now();
      return;
    }
    this.#next();
  }

  /** Ready for the next request: serves one already buffered (pipelined). */
  #next(): void {
    this.phase = Phase.Idle;
    this.since = performance.now();
    if (this.#isPaused) {
      this.#isPaused = false;
      this.socket.resume();
    }
    if (this.#buf !== undefined) {
      this.phase = Phase.Reading;
      this.#serve();
    }
  }

  /** Ends the connection once its last bytes are out; FastPath.sweep cuts it if the client never takes them. */
  #close(): void {
    this.phase = Phase.Gone;
    this.since = performance.now();
    closeSoon(this.socket);
  }

  onAnswerFailure(error: Error, isReused: boolean): void {
    const node = this.#node as ProxyNode;
    node.inFlight--;
    this.#node = undefined;
    this.#upstream = undefined;
    if (isReused && !this.#isFreshRetry && isIdempotent(this.#method) && isConnectionLost(error)) {
      // The keep-alive race (the node closed the pooled connection as we reused it), or the
      // node died with it: once more on the same node over a new connection, as the full path
      // does. A dead node refuses that one, and the request then moves on (below).
      this.#isFreshRetry = true;
      this.#fast.counters.retries++;
      this.#send(true);
      return;
    }
    if (isConnectRefused(error) && !this.#isRetry) {
      // It never reached the node: replayed on the session's new node, POST included, as the
      // full path does (one retry); the passive health check hears of the refusal.
      const fast = this.#fast;
      fast.counters.upstreamErrors++;
      fast.counters.retries++;
      fast.onNodeFailure?.(node, error);
      this.#isRetry = true;
      this.#move(node.id);
      return;
    }
    this.#handOverRequest({ failure: { error, isReused } });
  }

  /** Gives the current request (and what followed it) to the full path, routed as it is. */
  #handOverRequest(inherited: Pick<Inherited, 'failure' | 'routeError'> | undefined): void {
    const decision = this.#decision as RouteDecision;
    // What was tried already, so the full path does not try more than it would have itself.
    const tried = { attempts: this.#isRetry ? 2 : 1, freshRetried: this.#isFreshRetry };
    const request = this.#request as Buffer;
    const bytes = this.#buf === undefined ? request : Buffer.concat([request, this.#buf]);
    const startedAt = this.#startedAt;
    this.#clear();
    this.#handOver(bytes, { ...inherited, ...tried, decision, startedAt });
  }

  onAnswerTruncated(): void {
    this.#fast.counters.truncatedResponses++;
    this.#settle();
    this.phase = Phase.Gone;
    this.socket.destroy();
  }

  /** The node took too long (no head, or a body stalled), or the client stopped reading as long. */
  timeOut(error: Error): void {
    const upstream = this.#upstream;
    if (this.phase === Phase.Waiting && upstream !== undefined) {
      upstream.abandon();
      this.onAnswerFailure(error, false);
      return;
    }
    if (this.#isStalled) this.#fast.counters.clientAborts++;
    else this.#fast.counters.upstreamTimeouts++;
    upstream?.abandon();
    this.#settle();
    this.phase = Phase.Gone;
    this.socket.destroy();
  }

  /** Closes the connection now if it is between requests (idle timeout, shutdown). */
  closeIfIdle(): void {
    if (this.phase !== Phase.Idle) return;
    this.phase = Phase.Gone;
    // Destroyed, not just ended: the server allows half-open sockets, so a client that never
    // closes its side would keep an ended one (and a maxConnections slot) forever.
    this.socket.destroy();
  }

  get isStalled(): boolean {
    return this.#isStalled;
  }

  #stall(): void {
    this.#isStalled = true;
    this.since = performance.now();
    this.#upstream?.pause();
  }

  /** The client stopped taking its answers for the upstream timeout: cut. */
  cutSlowReader(): void {
    this.#fast.counters.clientAborts++;
    this.phase = Phase.Gone;
    this.socket.destroy();
  }

  readonly #onDrain = (): void => {
    if (this.phase === Phase.Draining) {
      if (this.isClosing) this.#close();
      else this.#next();
      return;
    }
    if (!this.#isStalled) return;
    this.#isStalled = false;
    this.since = performance.now();
    this.#upstream?.resume();
  };

  /** The answer is over: the node's counts and the admin's rate and latency. */
  #settle(): void {
    const node = this.#node;
    // None while a move was under way: nothing was sent, nothing is counted in flight.
    if (node !== undefined) {
      node.inFlight--;
      node.requests++;
      this.#fast.onResponse?.(node, this.#status, this.#startedAt);
    }
    this.#clear();
  }

  #clear(): void {
    this.#decision = undefined;
    this.#body = undefined;
    this.#node = undefined;
    this.#upstream = undefined;
    this.#request = undefined;
    this.#status = 0;
    this.#isStalled = false;
  }

  /** The client half-closed: as Node's server does, what is in flight is aborted and the connection ends. */
  readonly #onEnd = (): void => {
    this.#abort();
    this.#close();
  };

  readonly #onClose = (): void => {
    this.#abort();
    this.phase = Phase.Gone;
    this.#fast.forget(this);
  };

  /** The client left before its answer ended: the node's connection goes too. */
  #abort(): void {
    if (this.phase !== Phase.Waiting && this.phase !== Phase.Relaying) return;
    this.#fast.counters.clientAborts++;
    this.#upstream?.abandon();
    this.#settle();
  }

  #handOver(bytes: Buffer, inherited: Inherited | undefined): void {
    this.phase = Phase.Gone;
    this.#buf = undefined;
    const socket = this.socket;
    socket.off('data', this.#onData);
    socket.off('drain', this.#onDrain);
    socket.off('end', this.#onEnd);
    socket.off('close', this.#onClose);
    socket.off('error', ignore);
    this.#fast.forget(this);
    if (socket.destroyed) return;
    socket.pause();
    socket.unshift(bytes);
    this.#fast.handOver(socket, inherited);
  }
}

function ignore(): void {}

/**
 * Ends a socket and destroys it once its last bytes are written (Node's `destroySoon`): the
 * server allows half-open sockets, and a client that never closes its side must not keep one.
 */
export function closeSoon(socket: Socket): void {
  if (socket.writable) socket.end();
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', socket.destroy);
}

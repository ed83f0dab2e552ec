import { connect, type Socket } from 'node:net';
import type { PooledConnection, RawPool } from '../../nodes/index.js';
import { ChunkedBody, MALFORMED, NOT_ENDED } from './chunked-body.js';
import { Framing, readFastResponse, ResponseProtocolError, type FastResponse } from './response-head.js';

/**
 * Who takes a node's answer: the client connection whose request it is. The Buffers it is
 * handed are valid only during the call (they are the shared read buffer): it copies what it
 * keeps, a body chunk left queued on its socket included.
 */
export interface AnswerSink {
  /** The head arrived; `body` is the part of the body that came with it. */
  onAnswerHead(response: FastResponse, body: Buffer | undefined): void;
  onAnswerBody(chunk: Buffer): void;
  /** The answer ended; the connection is back in its pool, or closed. */
  onAnswerEnd(): void;
  /** No answer: refused, reset, closed or malformed before its head. `isReused`: the keep-alive race. */
  onAnswerFailure(error: Error, isReused: boolean): void;
  /** The answer broke off after its head. */
  onAnswerTruncated(): void;
}

/** An idle connection is closed after this, or 1 s before the node's own Keep-Alive timeout. */
const MAX_IDLE_MS = 60_000;
const KEEP_ALIVE_MARGIN_MS = 1000;
/** Connections per node, as the full path's undici pool: past it, requests queue there. */
const MAX_CONNECTIONS = 512;

/**
 * What every node connection of the process reads into (net's `onread`): a read allocates no
 * Buffer of its own and emits no 'data' event through the stream machinery. Sharing one is
 * safe because a read is handled to its end before the next read of any socket: whatever
 * outlives it (a partial head here, body bytes the client socket may still hold) is copied.
 */
const readBuffer = Buffer.allocUnsafe(64 * 1024);
const nextReadBuffer = (): Buffer => readBuffer;

/**
 * One keep-alive connection to a node on the fast path: sends a request written by the
 * client side and follows the answer's framing (Content-Length, chunked, until close) to
 * hand its bytes on unchanged and know where it ends. Its listeners are bound once, when it
 * is opened; between requests it waits in the node's RawPool.
 */
export class NodeConnection implements PooledConnection {
  idleSince = 0;
  maxIdleMs = MAX_IDLE_MS;
  readonly socket: Socket;
  readonly #pool: RawPool<NodeConnection>;
  #sink: AnswerSink | undefined = undefined;
  #buf: Buffer | undefined = undefined;
  #response: FastResponse | undefined = undefined;
  #remaining = 0;
  readonly #chunked = new ChunkedBody();
  #isHeadRequest = false;
  /** The node sent more than the answer (a desync, RFC 9112 §11.1): never reused. */
  #hasExtra = false;
  /** Answers read whole on this connection: a failure after one is the keep-alive race. */
  #answers = 0;
  #error: Error | undefined = undefined;

  /** A new connection to the pool's node, or undefined when it already has its maximum open. */
  static open(pool: RawPool<NodeConnection>): NodeConnection | undefined {
    return pool.openCount < MAX_CONNECTIONS ? new NodeConnection(pool) : undefined;
  }

  private constructor(pool: RawPool<NodeConnection>) {
    this.#pool = pool;
    pool.openCount++;
    this.socket = connect({
      host: pool.host,
      port: pool.port,
      noDelay: true,
      onread: {
        buffer: nextReadBuffer,
        // true: keep reading (false would pause the socket).
        callback: (size: number, buf: Uint8Array): boolean => {
          this.#onData((buf as Buffer).subarray(0, size));
          return true;
        },
      },
    });
    this.socket.on('error', (error: Error) => (this.#error = error));
    this.socket.on('close', () => this.#onClose());
  }

  /** Sends one request and hands its answer to `sink`. */
  send(sink: AnswerSink, head: string, body: Buffer | undefined, isHeadRequest: boolean): void {
    this.#sink = sink;
    this.#isHeadRequest = isHeadRequest;
    if (body === undefined) {
      this.socket.write(head, 'latin1');
      return;
    }
    this.socket.cork();
    this.socket.write(head, 'latin1');
    this.socket.write(body);
    this.socket.uncork();
  }

  /** The client stopped taking the answer: hold the node's bytes (TCP pushes back). */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Gives up the answer (the client left, or a timeout): the connection is closed, never pooled. */
  abandon(): void {
    this.#sink = undefined;
    this.socket.destroy();
  }

  destroy(): void {
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    const sink = this.#sink;
    // Bytes nobody asked for on an idle connection: a desync; never reuse it.
    if (sink === undefined) {
      this.#pool.remove(this);
      this.socket.destroy();
      return;
    }
    if (this.#response === undefined) this.#readHead(chunk, sink);
    else this.#readBody(chunk, sink);
  }

  #readHead(chunk: Buffer, sink: AnswerSink): void {
    let buf = this.#buf === undefined ? chunk : Buffer.concat([this.#buf, chunk]);
    let response: FastResponse | undefined;
    for (;;) {
      try {
        response = readFastResponse(buf, this.#isHeadRequest);
      } catch (error) {
        this.#fail(error as Error);
        return;
      }
      if (response === undefined) {
        // Kept past this read: a copy, not the shared read buffer.
        this.#buf = Buffer.from(buf);
        return;
      }
      if (response.status >= 200) break;
      // 1xx (103 Early Hints…) is not relayed, as on the full path; 101 was never asked for.
      if (response.status === 101) {
        this.#fail(new ResponseProtocolError('unexpected 101 Switching Protocols'));
        return;
      }
      buf = buf.subarray(response.headSize);
      if (buf.length === 0) {
        this.#buf = undefined;
        return;
      }
    }
    this.#buf = undefined;
    this.#response = response;
    if (response.keepAliveMs !== undefined) {
      this.maxIdleMs = Math.min(MAX_IDLE_MS, response.keepAliveMs - KEEP_ALIVE_MARGIN_MS);
    }
    const rest = buf.length > response.headSize ? buf.subarray(response.headSize) : undefined;
    switch (response.framing) {
      case Framing.None:
        this.#hasExtra = rest !== undefined;
        sink.onAnswerHead(response, undefined);
        this.#finish();
        return;
      case Framing.Length: {
        this.#remaining = response.length;
        const part = rest === undefined ? undefined : this.#take(rest);
        sink.onAnswerHead(response, part);
        if (this.#remaining === 0) this.#finish();
        return;
      }
      case Framing.Chunked: {
        this.#chunked.reset();
        const end = rest === undefined ? NOT_ENDED : this.#chunked.scan(rest, 0);
        if (end === MALFORMED) {
          this.#fail(new ResponseProtocolError('malformed chunked body'));
          return;
        }
        if (end >= 0) this.#hasExtra = end < (rest as Buffer).length;
        sink.onAnswerHead(response, end >= 0 ? (rest as Buffer).subarray(0, end) : rest);
        if (end >= 0) this.#finish();
        return;
      }
      case Framing.Close:
        sink.onAnswerHead(response, rest);
    }
  }

  #readBody(chunk: Buffer, sink: AnswerSink): void {
    switch ((this.#response as FastResponse).framing) {
      case Framing.Length:
        sink.onAnswerBody(this.#take(chunk));
        if (this.#remaining === 0) this.#finish();
        return;
      case Framing.Chunked: {
        const end = this.#chunked.scan(chunk, 0);
        if (end === MALFORMED) {
          this.#truncate();
          return;
        }
        if (end === NOT_ENDED) {
          sink.onAnswerBody(chunk);
          return;
        }
        this.#hasExtra = end < chunk.length;
        sink.onAnswerBody(end === chunk.length ? chunk : chunk.subarray(0, end));
        this.#finish();
        return;
      }
      default:
        sink.onAnswerBody(chunk);
    }
  }

  /** The part of `chunk` within a Content-Length body; the rest is a desync. */
  #take(chunk: Buffer): Buffer {
    const take = Math.min(this.#remaining, chunk.length);
    this.#remaining -= take;
    if (take === chunk.length) return chunk;
    this.#hasExtra = true;
    return chunk.subarray(0, take);
  }

  #finish(): void {
    const sink = this.#sink as AnswerSink;
    const response = this.#response as FastResponse;
    this.#sink = undefined;
    this.#response = undefined;
    this.#answers++;
    // Paused while a client took the answer slowly (or a last write filled its buffer): the
    // next request on this connection must find it reading.
    if (this.socket.isPaused()) this.socket.resume();
    if (!response.isReusable || this.#hasExtra || !this.#pool.put(this, performance.now())) {
      this.socket.destroy();
    }
    sink.onAnswerEnd();
  }

  /** No answer to relay: the request failed before the head; the connection is closed. */
  #fail(error: Error): void {
    const sink = this.#sink;
    this.#sink = undefined;
    this.socket.destroy();
    sink?.onAnswerFailure(error, this.#answers > 0);
  }

  #truncate(): void {
    const sink = this.#sink;
    this.#sink = undefined;
    this.socket.destroy();
    sink?.onAnswerTruncated();
  }

  #onClose(): void {
    this.#pool.openCount--;
    const sink = this.#sink;
    if (sink === undefined) {
      this.#pool.remove(this);
      return;
    }
    const response = this.#response;
    if (response === undefined) {
      this.#sink = undefined;
      sink.onAnswerFailure(this.#error ?? closedBeforeAnswer(), this.#answers > 0);
    } else if (response.framing === Framing.Close && this.#error === undefined) {
      // The body that ends with the connection: complete.
      this.#sink = undefined;
      this.#response = undefined;
      sink.onAnswerEnd();
    } else {
      this.#truncate();
    }
  }
}

/** As undici's 'other side closed': the node's failure, evidence for passive health. */
function closedBeforeAnswer(): Error {
  return Object.assign(new Error('node closed the connection before answering'), { code: 'ECONNRESET' });
}

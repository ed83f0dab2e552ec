import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';

const kSource = Symbol('stickylb.bodySource');

type SourcedRequest = IncomingMessage & { [kSource]?: RequestBodySource };

/**
 * A client's request body as undici's stream body, without handing undici the request itself.
 * undici destroys its body stream once the attempt is over, sent or failed: the client's
 * request must outlive a failed attempt, so the rest of its body is still read (kept for a
 * replay on another node, or drained) and the client still gets our answer. This relays the
 * request's `data`/`end`/premature `close` and passes pause/resume through (backpressure: a
 * node that reads slowly pauses the client); undici's `destroy` only detaches it.
 */
export class RequestBodySource extends EventEmitter {
  /** Read by undici (util.isDestroyed). */
  destroyed = false;
  readonly #req: SourcedRequest;
  /** undici has started writing the body (its first `resume`): it listens from then on. */
  #isWriting = false;
  /** The request ended before that: its `end` waits for undici. */
  #isEndPending = false;

  constructor(req: IncomingMessage) {
    super();
    this.#req = req;
    (req as SourcedRequest)[kSource] = this;
    // Paused until undici writes the body (it calls resume): chunks emitted before would be lost.
    req.pause();
    req.on('data', onRequestData);
    req.on('end', onRequestEnd);
    req.on('close', onRequestClose);
  }

  pause(): this {
    this.#req.pause();
    return this;
  }

  resume(): this {
    this.#isWriting = true;
    this.#req.resume();
    if (this.#isEndPending) {
      this.#isEndPending = false;
      // After undici's resume call returns, as a stream's own events come.
      process.nextTick(emitEnd, this);
    }
    return this;
  }

  /**
   * The request ended. A paused stream still emits `end` when nothing is buffered (an empty
   * chunked body that came in the head's packet: `0\r\n\r\n`), possibly before undici has
   * sent the head and listens: passed on then, undici waited for an end that had come and went,
   * and the request hung with its node never asked.
   */
  ended(): void {
    if (this.#isWriting) this.emit('end');
    else this.#isEndPending = true;
  }

  /** undici only tests for it (a stream has `pipe`); never called. */
  pipe(): never {
    throw new Error('RequestBodySource is not pipeable');
  }

  /** undici is done with the body: detach, and keep the request flowing so the rest of it is read. */
  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    const req = this.#req;
    req[kSource] = undefined;
    req.off('data', onRequestData);
    req.off('end', onRequestEnd);
    req.off('close', onRequestClose);
    if (!req.readableEnded) req.resume();
    return this;
  }
}

function onRequestData(this: SourcedRequest, chunk: Buffer): void {
  this[kSource]?.emit('data', chunk);
}

function onRequestEnd(this: SourcedRequest): void {
  this[kSource]?.ended();
}

function emitEnd(source: RequestBodySource): void {
  if (!source.destroyed) source.emit('end');
}

/** The client went away before its body ended: undici aborts the upstream request. */
function onRequestClose(this: SourcedRequest): void {
  if (!this.readableEnded) this[kSource]?.emit('close');
}

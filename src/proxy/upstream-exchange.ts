import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { UpstreamTimeoutError } from '../errors.js';
import { isReusedSocketError } from '../nodes/index.js';
import { SESSION_USED_HEADER } from '../protocol.js';
import { connectionListedNames, isInternalHeaderName } from './header-hygiene.js';
import type { RequestBodySource } from './request-body-source.js';

/** What the forwarder asks of its owner, once per response head and once per failure. */
export interface ForwardHooks {
  /**
   * The node answered: `sessionUsed` is its internal session-used header (stripped from the
   * answer). Returns the `Set-Cookie` value to add, if any.
   */
  onResponseHead(res: ServerResponse, sessionUsed: string | undefined): string | undefined;
  /** The upstream request failed (refused, reset, timed out): the one place failures map. */
  onError(error: Error, req: IncomingMessage, res: ServerResponse): void;
  /** The node's connection ended before its answer's body did; the client's was cut. */
  onTruncated(): void;
}

const kExchange = Symbol('stickylb.exchange');
const kDrainHooked = Symbol('stickylb.drainHooked');

type ClientResponse = ServerResponse & { [kExchange]?: UpstreamExchange; [kDrainHooked]?: boolean };

/** Codes of undici's timers (no answer head / a body stalled), and of a connect that never completed. */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT']);
/** The node's connection ended or broke: after the answer's head, a truncated answer. */
const CONNECTION_LOST_CODES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/**
 * One forwarded request: the undici dispatch handler that writes the node's answer into the
 * client's response. Created per request (undici keeps per-request state in its handler);
 * its methods are shared on the prototype, so no closures are allocated.
 */
export class UpstreamExchange implements Dispatcher.DispatchHandlers {
  /** The body streamed from the client, if any (detached when the attempt ends). */
  body: RequestBodySource | undefined = undefined;
  /** The attempt failed on a connection that had carried an earlier answer (the keep-alive race). */
  reusedSocket = false;
  #res: ClientResponse | undefined;
  readonly #hooks: ForwardHooks;
  readonly #timeoutMs: number;
  #abort: ((error?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #isDone = false;
  #isAborted = false;
  /** The client holds the answer back (no 'drain' since the last write that filled its socket). */
  #isStalled = false;
  /**
   * One timer per exchange, created only off the common path: bounds the wait for a pooled
   * connection (pool full), then a client's stall (see onData). Never allocated otherwise.
   */
  #timer: NodeJS.Timeout | undefined = undefined;

  constructor(res: ServerResponse, hooks: ForwardHooks, timeoutMs: number) {
    this.#res = res;
    this.#hooks = hooks;
    this.#timeoutMs = timeoutMs;
    (res as ClientResponse)[kExchange] = this;
  }

  /** Over: answered, failed or aborted. */
  get destroyed(): boolean {
    return this.#isDone;
  }

  /** Aborts the upstream request (the client left): its connection is closed, not pooled. */
  destroy(): void {
    if (this.#isDone) return;
    this.#isDone = true;
    this.#isAborted = true;
    this.#disarm();
    this.body?.destroy();
    // Before undici called onConnect (queued for a connection): it is dropped in onConnect.
    this.#abort?.();
  }

  onConnect(abort: (error?: Error) => void): void {
    if (this.#isAborted) {
      // Given up while queued (the client left, or the wait timed out), nothing written yet.
      // Thrown, undici drops the request and keeps the connection for the next one
      // (writeH1 catches it: errorRequest, no socket destroy); abort() would close it, one
      // reconnect per expired request, just when the pool is overloaded.
      throw QUEUED_ABORT;
    }
    this.#abort = abort;
    this.#disarm();
  }

  /**
   * The pool had no free connection (dispatch returned false): bounds the wait for one by the
   * upstream timeout. undici's Pool queue has no timer of its own, and its headers timer
   * starts only once the request is written.
   */
  waitForConnection(): void {
    // Dispatched on the last free connection (written at once): nothing to wait for.
    if (this.#abort !== undefined || this.#isDone) return;
    this.#timer = setTimeout(onExchangeTimer, this.#timeoutMs, this).unref();
  }

  onHeaders(statusCode: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx (103 Early Hints…) is not relayed, as Node's own client did not.
    if (statusCode < 200) return true;
    const res = this.#res;
    if (res === undefined || res.headersSent || res.destroyed) {
      this.destroy();
      return false;
    }
    this.#resume = resume;
    const headers: string[] = [];
    let sessionUsed: string | undefined;
    let listed: string[] | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString('latin1');
      switch (name.length) {
        case 10: // connection, keep-alive: the node's terms are for our pool, not the client
        case 16: // proxy-connection
        case 17: // transfer-encoding: Node frames the client's answer itself
          if (isHopByHop(name)) {
            if (name.length === 10 && name.toLowerCase() === 'connection') {
              listed = connectionListedNames((raw[i + 1] as Buffer).toString('latin1'), listed);
            }
            continue;
          }
          break;
        case SESSION_USED_HEADER.length:
          if (name.toLowerCase() === SESSION_USED_HEADER) {
            sessionUsed = (raw[i + 1] as Buffer).toString('latin1');
            continue;
          }
          break;
      }
      // Our other internal headers are for us, never the client.
      if (isInternalHeaderName(name)) continue;
      headers.push(name, (raw[i + 1] as Buffer).toString('latin1'));
    }
    // Headers the node's `Connection:` lists are hop-by-hop too: they were meant for us.
    if (listed !== undefined) dropListed(headers, listed);
    const cookie = this.#hooks.onResponseHead(res, sessionUsed);
    if (cookie !== undefined) headers.push('set-cookie', cookie);
    res.writeHead(statusCode, statusText, headers);
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.#res;
    if (res === undefined || res.write(chunk)) return true;
    // Backpressure: a slow client pauses the node's answer (undici stops reading its socket).
    if (res[kDrainHooked] !== true) {
      res[kDrainHooked] = true;
      res.on('drain', onClientDrain);
    }
    // undici's body timer does not run while the answer is paused: a client that stops reading
    // would hold the node's connection forever (enough of them fill the pool). It gets the
    // upstream timeout per stall, as the node gets it per silence. refresh() re-arms the
    // one timer, also after it fired during an earlier stall that drained in time.
    this.#isStalled = true;
    if (this.#timer === undefined) this.#timer = setTimeout(onExchangeTimer, this.#timeoutMs, this).unref();
    else this.#timer.refresh();
    return false;
  }

  onComplete(): void {
    this.#isDone = true;
    this.#disarm();
    const res = this.#res;
    this.#res = undefined;
    res?.end();
  }

  onError(error: Error): void {
    this.#isDone = true;
    this.#disarm();
    this.body?.destroy();
    const res = this.#res;
    this.#res = undefined;
    // Our own abort after the client left (res 'close'), or detached: not the node's failure.
    if (this.#isAborted || res === undefined || res.destroyed) return;
    const code = (error as NodeJS.ErrnoException).code ?? '';
    this.reusedSocket = isReusedSocketError(error);
    if (res.headersSent && CONNECTION_LOST_CODES.has(code)) {
      // A body cut short (the node died, or sent less than its Content-Length): the client's
      // connection is cut too, so it sees a truncated response, never a hang or a fake end.
      this.#hooks.onTruncated();
      res.destroy();
      return;
    }
    this.#report(TIMEOUT_CODES.has(code) ? new UpstreamTimeoutError(this.#timeoutMs) : error, res);
  }

  /** The client's socket drained: let the node's answer flow again. */
  resumeUpstream(): void {
    this.#isStalled = false;
    this.#resume?.();
  }

  /** The exchange's timer fired: the wait for a pooled connection, or a client's stall, lasted too long. */
  onTimer(): void {
    if (this.#isDone) return;
    const res = this.#res;
    if (this.#abort === undefined) {
      // Still queued: the client gets a 504 now, and undici drops the request when it gets to it.
      this.#res = undefined;
      this.destroy();
      if (res !== undefined && !res.destroyed) this.#report(new UpstreamTimeoutError(this.#timeoutMs), res);
      return;
    }
    // Fired after a stall that drained in time: nothing to do until the next one refreshes it.
    if (!this.#isStalled) return;
    // The client took nothing for the whole timeout: its answer is cut (counted as a client
    // abort when it closes) and the node's request aborted, which closes that connection
    // instead of leaving it paused in the pool.
    this.#res = undefined;
    this.destroy();
    res?.destroy();
  }

  /** Stops the node's answer flowing into the response (the attempt failed): aborts what is left of it. */
  detach(): void {
    this.#res = undefined;
    this.destroy();
  }

  /** Hands a failure to the one place failures map. */
  #report(error: Error, res: ClientResponse): void {
    try {
      this.#hooks.onError(error, res.req, res);
    } catch {
      // undici re-emits a handler's throw as an 'error' on its client, which nobody listens
      // to: the process would exit. The client's connection is cut instead.
      res.destroy();
    }
  }

  #disarm(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Thrown from onConnect for a request given up before it was written (see there); built once. */
const QUEUED_ABORT = new Error('request given up while waiting for a connection');

function onClientDrain(this: ClientResponse): void {
  this[kExchange]?.resumeUpstream();
}

function onExchangeTimer(exchange: UpstreamExchange): void {
  exchange.onTimer();
}

/** Removes from the flat name/value array every header named in `listed` (lower case). */
function dropListed(headers: string[], listed: readonly string[]): void {
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (listed.includes(name.toLowerCase())) continue;
    headers[kept++] = name;
    headers[kept++] = headers[i + 1] as string;
  }
  headers.length = kept;
}

function isHopByHop(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    lower === 'connection' ||
    lower === 'keep-alive' ||
    lower === 'proxy-connection' ||
    lower === 'transfer-encoding'
  );
}

/**
 * Stops the node's answer flowing into `res` once its request failed (a framing error mid-body):
 * its next chunk would land after our error answer or in a retry's (write after end throws).
 */
export function detachUpstream(res: ServerResponse): void {
  const client = res as ClientResponse;
  const exchange = client[kExchange];
  if (exchange === undefined) return;
  client[kExchange] = undefined;
  exchange.detach();
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { UpstreamTimeoutError } from '../errors.js';
import { isReusedSocketError } from '../nodes/index.js';
import { SESSION_USED_HEADER } from '../protocol.js';
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
    this.body?.destroy();
    // Before undici called onConnect (queued for a connection): it aborts in onConnect.
    this.#abort?.();
  }

  onConnect(abort: (error?: Error) => void): void {
    this.#abort = abort;
    if (this.#isAborted) abort();
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
    let connection: string | undefined;
    for (let i = 0; i < raw.length; i += 2) {
      const name = (raw[i] as Buffer).toString('latin1');
      switch (name.length) {
        case 10: // connection, keep-alive: the node's terms are for our pool, not the client
        case 16: // proxy-connection
        case 17: // transfer-encoding: Node frames the client's answer itself
          if (isHopByHop(name)) {
            if (name.length === 10 && name.toLowerCase() === 'connection') {
              const value = (raw[i + 1] as Buffer).toString('latin1');
              connection = connection === undefined ? value : `${connection},${value}`;
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
      headers.push(name, (raw[i + 1] as Buffer).toString('latin1'));
    }
    // Headers the node's `Connection:` lists are hop-by-hop too (RFC 9110 §7.6.1): they were
    // meant for us. Almost every answer says just keep-alive or close, so the common case costs one test.
    if (connection !== undefined && !PLAIN_CONNECTION.test(connection)) dropListed(headers, connection);
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
    return false;
  }

  onComplete(): void {
    this.#isDone = true;
    const res = this.#res;
    this.#res = undefined;
    res?.end();
  }

  onError(error: Error): void {
    this.#isDone = true;
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
    const mapped = TIMEOUT_CODES.has(code) ? new UpstreamTimeoutError(this.#timeoutMs) : error;
    try {
      this.#hooks.onError(mapped, res.req, res);
    } catch {
      // undici re-emits a handler's throw as an 'error' on its client, which nobody listens
      // to: the process would exit. The client's connection is cut instead.
      res.destroy();
    }
  }

  /** The client's socket drained: let the node's answer flow again. */
  resumeUpstream(): void {
    this.#resume?.();
  }

  /** Stops the node's answer flowing into the response (the attempt failed): aborts what is left of it. */
  detach(): void {
    this.#res = undefined;
    this.destroy();
  }
}

function onClientDrain(this: ClientResponse): void {
  this[kExchange]?.resumeUpstream();
}

/** A `Connection:` value that lists no header: only the usual options. */
const PLAIN_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i;
/** Listed or not, these frame the answer: dropping them would change where it ends, not hide a hop. */
const FRAMING = new Set(['content-length', 'transfer-encoding']);

/** Removes from the flat name/value array every header the `Connection:` value lists. */
function dropListed(headers: string[], connection: string): void {
  const listed = new Set<string>();
  for (const token of connection.split(',')) {
    const name = token.trim().toLowerCase();
    if (name !== '' && !FRAMING.has(name)) listed.add(name);
  }
  let kept = 0;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (listed.has(name.toLowerCase())) continue;
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

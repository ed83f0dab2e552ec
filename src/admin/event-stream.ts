import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EventLog, LoggedEvent } from './event-log.js';

/** Options of an EventStream; intervals in milliseconds. */
export interface EventStreamOptions {
  events: EventLog;
  /** The `state` snapshot sent on connect and every `snapshotIntervalMs` (computed once per tick for all clients). */
  snapshot: () => unknown;
  snapshotIntervalMs?: number;
  /** A comment line this often keeps proxies and load balancers from closing an idle stream. */
  heartbeatMs?: number;
  /**
   * A client that leaves more than this unread is cut off rather than buffered without
   * bound; its EventSource reconnects and replays what it missed with `Last-Event-ID`.
   */
  maxBufferedBytes?: number;
}

/** Reconnect delay the browser is told to use. */
const RETRY_MS = 2000;

/**
 * `GET /api/events`: Server-Sent Events. Every EventLog event goes to every client as
 * `id: <bootId>-N` / `event: <type>` / `data: <json>`; a `state` snapshot (no id, so `Last-Event-ID`
 * keeps naming log events) follows on connect and then about once a second; a comment
 * line is the heartbeat. A reconnecting client sends `Last-Event-ID` and gets the events
 * it missed from the ring buffer. Timers run only while someone listens.
 */
export class EventStream {
  readonly #clients = new Set<ServerResponse>();
  readonly #events: EventLog;
  readonly #snapshot: () => unknown;
  readonly #snapshotIntervalMs: number;
  readonly #heartbeatMs: number;
  readonly #maxBufferedBytes: number;
  #snapshotTimer: NodeJS.Timeout | undefined;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  readonly #onEvent = (event: LoggedEvent): void => this.#broadcast(formatEvent(event, this.#events.bootId));

  constructor(options: EventStreamOptions) {
    this.#events = options.events;
    this.#snapshot = options.snapshot;
    this.#snapshotIntervalMs = options.snapshotIntervalMs ?? 1000;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1 << 20;
  }

  /** Clients connected now. */
  get size(): number {
    return this.#clients.size;
  }

  /**
   * Takes over a request's response as an event stream. `lastEventId` is the
   * `Last-Event-ID` header (or query parameter) of a reconnecting client.
   */
  attach(request: IncomingMessage, response: ServerResponse, lastEventId: string | undefined): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx would otherwise buffer the stream.
      'x-accel-buffering': 'no',
    });
    let frames = `retry: ${RETRY_MS}\n\n`;
    const lastId = replayAfter(lastEventId, this.#events.bootId);
    if (lastId !== undefined) {
      for (const event of this.#events.since(lastId)) frames += formatEvent(event, this.#events.bootId);
    }
    frames += formatState(this.#snapshot());
    response.write(frames);
    // No Nagle delay between a change and the browser seeing it.
    request.socket.setNoDelay(true);
    this.#clients.add(response);
    response.once('close', () => this.#detach(response));
    if (this.#clients.size === 1) this.#startTimers();
  }

  /** Ends every stream and stops the timers (admin listener closing). */
  close(): void {
    for (const response of this.#clients) response.end();
    this.#clients.clear();
    this.#stopTimers();
  }

  #detach(response: ServerResponse): void {
    if (!this.#clients.delete(response)) return;
    if (this.#clients.size === 0) this.#stopTimers();
  }

  #startTimers(): void {
    this.#events.on('event', this.#onEvent);
    this.#snapshotTimer = setInterval(
      () => this.#broadcast(formatState(this.#snapshot())),
      this.#snapshotIntervalMs,
    );
    this.#heartbeatTimer = setInterval(() => this.#broadcast(': heartbeat\n\n'), this.#heartbeatMs);
    this.#snapshotTimer.unref();
    this.#heartbeatTimer.unref();
  }

  #stopTimers(): void {
    this.#events.off('event', this.#onEvent);
    clearInterval(this.#snapshotTimer);
    clearInterval(this.#heartbeatTimer);
    this.#snapshotTimer = undefined;
    this.#heartbeatTimer = undefined;
  }

  #broadcast(frame: string): void {
    for (const response of this.#clients) {
      if (response.writableLength > this.#maxBufferedBytes) {
        response.destroy();
        continue;
      }
      response.write(frame);
    }
  }
}

/**
 * One log event as an SSE frame, its SSE id `<bootId>-<id>` (see EventLog.bootId). JSON never
 * contains a raw newline, so one `data:` line suffices.
 */
export function formatEvent(event: LoggedEvent, bootId: string): string {
  return `id: ${bootId}-${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * The event id to replay after, from a `Last-Event-ID`: `<bootId>-<n>` of this run → n; of
 * another run (the proxy restarted since) → 0, every buffered event being new to the client; a
 * bare `<n>` (a script's `?lastEventId=`) → n; anything else → undefined, nothing replayed.
 */
export function replayAfter(lastEventId: string | undefined, bootId: string): number | undefined {
  if (lastEventId === undefined) return undefined;
  const match = /^(?:([0-9a-f]+)-)?(\d{1,15})$/.exec(lastEventId);
  if (match === null) return undefined;
  if (match[1] !== undefined && match[1] !== bootId) return 0;
  return Number(match[2]);
}

function formatState(state: unknown): string {
  return `event: state\ndata: ${JSON.stringify(state)}\n\n`;
}

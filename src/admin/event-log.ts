import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';

/** One thing that happened, as the dashboard's event log and the SSE stream show it. */
export interface LoggedEvent {
  id: number;
  at: number;
  type: string;
  message: string;
  [detail: string]: unknown;
}

/**
 * The recent control-plane events (node down/up, failovers, drains, reloads) in a ring
 * buffer, and an 'event' for live subscribers (SSE). Bounded: old events fall off.
 */
export class EventLog extends EventEmitter<{ event: [LoggedEvent] }> {
  readonly #events: LoggedEvent[] = [];
  readonly #capacity: number;
  #nextId = 1;
  /**
   * Names this process's run of ids: they restart at 1 when the proxy restarts, so an id alone
   * cannot tell a reconnecting dashboard whether it has seen an event (`Last-Event-ID: 40` from
   * before a restart would hide the new run's events 1 to 40).
   */
  readonly bootId = randomBytes(4).toString('hex');

  constructor(capacity = 500) {
    super();
    this.#capacity = capacity;
  }

  /** Records an event and tells subscribers. */
  push(type: string, message: string, detail: Record<string, unknown> = {}): LoggedEvent {
    const event: LoggedEvent = { ...detail, id: this.#nextId++, at: Date.now(), type, message };
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.shift();
    this.emit('event', event);
    return event;
  }

  /** The latest `limit` events, oldest first. */
  recent(limit = 100): LoggedEvent[] {
    return this.#events.slice(-limit);
  }

  /** Events after `id` still in the buffer, oldest first (an SSE client's `Last-Event-ID` replay). */
  since(id: number): LoggedEvent[] {
    const events = this.#events;
    // Ids are consecutive, so the position of `id + 1` is known without a search.
    const first = events[0];
    if (first === undefined) return [];
    return events.slice(Math.max(0, id + 1 - first.id));
  }

  /** Id of the latest event (0 before the first). */
  get lastId(): number {
    return this.#nextId - 1;
  }
}

import { EventEmitter } from 'node:events';

/**
 * An EventEmitter that can tell, almost for free, whether an event has a listener, so the
 * store's hot path builds no event when nobody listens. `listenerCount` alone cost a quarter
 * of `get`'s time (bench/store.ts), so an emitter without any listener answers from
 * EventEmitter's own listener total.
 */
export class QuietEmitter<T extends Record<keyof T, unknown[]>> extends EventEmitter<T> {
  /** EventEmitter's internal listener total, used when present (it has been since Node 6). */
  declare private readonly _eventsCount: number;
  readonly #hasEventsCount: boolean;

  constructor() {
    super();
    this.#hasEventsCount = typeof this._eventsCount === 'number';
  }

  /** Whether anyone listens to `event`. */
  protected hears(event: keyof T & string): boolean {
    // `as never`: @types/node's Key<K, T> cannot be resolved for a generic event map T.
    return (!this.#hasEventsCount || this._eventsCount > 0) && this.listenerCount(event as never) > 0;
  }
}

/** What `GET /api/state` says of Redis in the distributed mode (`redis` field). */
export interface RedisState {
  state: 'up' | 'down';
  /** `redis.url` without its password. */
  url: string;
  /** When the state last changed (ms since the epoch). */
  since: number;
  /** Outages seen since this proxy started. */
  outages: number;
  /** The error that started the latest outage. */
  lastError: string | null;
  /** Moves told to other proxies, adopted from them, and re-pinned by a resync after an outage. */
  moves: { published: number; adopted: number; publishFailures: number; resynced: number };
}

/** Up or down, since when, how often: changed only on transitions (one event and log line each). */
export class RedisStatus {
  readonly #url: string;
  #isUp = true;
  #since = Date.now();
  #outages = 0;
  #lastError: string | null = null;

  constructor(url: string) {
    this.#url = redactUrl(url);
  }

  get isUp(): boolean {
    return this.#isUp;
  }

  get url(): string {
    return this.#url;
  }

  /** Records a transition; false when `isUp` is the state already. */
  mark(isUp: boolean, error?: Error): boolean {
    if (isUp === this.#isUp) return false;
    this.#isUp = isUp;
    this.#since = Date.now();
    if (!isUp) {
      this.#outages++;
      this.#lastError = error?.message ?? 'unreachable';
    }
    return true;
  }

  snapshot(moves: RedisState['moves']): RedisState {
    return {
      state: this.#isUp ? 'up' : 'down',
      url: this.#url,
      since: this.#since,
      outages: this.#outages,
      lastError: this.#lastError,
      moves,
    };
  }
}

/** A Redis URL fit for logs and the dashboard: the password replaced by `***`. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'redis://(unparsable url)';
  }
}

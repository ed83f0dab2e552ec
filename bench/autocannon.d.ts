/** The slice of autocannon 8's programmatic API the benches use (the package ships no types). */
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events';

  interface AutocannonClient extends EventEmitter {
    /** Replaces this connection's request headers (merged over the run's default headers). */
    setHeaders(headers: Record<string, string>): void;
  }

  interface AutocannonOptions {
    url: string;
    connections?: number;
    /** Seconds. */
    duration?: number;
    method?: string;
    headers?: Record<string, string>;
    body?: string | Buffer;
    /** Seconds before a request counts as timed out. */
    timeout?: number;
    pipelining?: number;
    /** Called once per connection: per-client headers, e.g. each its own session cookie. */
    setupClient?: (client: AutocannonClient) => void;
  }

  interface AutocannonHistogram {
    average: number;
    mean: number;
    stddev: number;
    min: number;
    max: number;
    total: number;
    p50: number;
    p90: number;
    p99: number;
  }

  interface AutocannonResult {
    requests: AutocannonHistogram & { sent: number };
    latency: AutocannonHistogram;
    errors: number;
    timeouts: number;
    non2xx: number;
    resets: number;
    /** Seconds, two decimals. */
    duration: number;
    statusCodeStats: Record<string, { count: number }>;
  }

  interface AutocannonInstance extends EventEmitter, Promise<AutocannonResult> {
    stop(): void;
  }

  function autocannon(options: AutocannonOptions): AutocannonInstance;
  export default autocannon;
  export type { AutocannonClient, AutocannonOptions, AutocannonResult, AutocannonInstance };
}

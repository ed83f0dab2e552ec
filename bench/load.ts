/**
 * One autocannon run in which every connection is its own user: its own session cookie
 * (or header), so a sticky proxy spreads the connections over the nodes as it would real
 * clients. Latencies are taken from every response at full precision (autocannon's own
 * histogram keeps whole milliseconds).
 */
import autocannon from 'autocannon';
import { percentile } from './common.js';

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  /** One header set per connection (its session); connection i gets `sessions[i % length]`. */
  sessions: Array<Record<string, string>>;
  connections: number;
  durationSec: number;
  /** A request body (POST); unset: a body-less POST with `Content-Length: 0`. */
  body?: string;
}

export interface LoadSample {
  /** Responses of any status. */
  requests: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Connection errors and timeouts. */
  errors: number;
  non2xx: number;
  durationSec: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadSample> {
  const { sessions } = options;
  let nextClient = 0;
  const latencies: number[] = [];
  const instance = autocannon({
    url: options.url,
    method: options.method,
    connections: options.connections,
    duration: options.durationSec,
    timeout: 10,
    // What a browser's fetch sends for a body-less POST.
    headers:
      options.body !== undefined
        ? { 'content-type': 'application/json' }
        : options.method === 'POST'
          ? { 'content-length': '0' }
          : {},
    ...(options.body !== undefined ? { body: options.body } : {}),
    setupClient: (client) => client.setHeaders(sessions[nextClient++ % sessions.length] ?? {}),
  });
  instance.on('response', (_client: unknown, _status: number, _bytes: number, responseTimeMs: number) => {
    latencies.push(responseTimeMs);
  });
  const result = await instance;
  return {
    requests: latencies.length,
    requestsPerSec: latencies.length / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    errors: result.errors,
    non2xx: result.non2xx,
    durationSec: result.duration,
  };
}

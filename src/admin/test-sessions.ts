import { Agent, request } from 'node:http';

/** What one `POST /api/test-sessions` did. */
export interface TestSessionsReport {
  requested: number;
  /** Sessions the proxy answered 200 for (each a new session on some node). */
  created: number;
  failed: number;
  durationMs: number;
}

/** Most sessions one call may create. */
export const MAX_TEST_SESSIONS = 100_000;

/**
 * Creates `count` real sessions the way clients do: `POST /api/counter` through the proxy
 * listener without a cookie, so each one is a new session that a node creates, replicates
 * and the affinity table records. At most `concurrency` requests are in flight, over a
 * keep-alive agent of its own that is destroyed at the end.
 */
export async function createTestSessions(options: {
  host: string;
  port: number;
  count: number;
  concurrency?: number;
  path?: string;
}): Promise<TestSessionsReport> {
  const { host, port, count } = options;
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 32, count));
  const path = options.path ?? '/api/counter';
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const startedAt = Date.now();
  let next = 0;
  let created = 0;
  let failed = 0;
  const post = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = request(
        { host, port, path, method: 'POST', agent, headers: { 'content-length': '0' } },
        (res) => {
          res.resume();
          res.once('end', () => resolve(res.statusCode === 200));
          res.once('error', () => resolve(false));
        },
      );
      req.once('error', () => resolve(false));
      req.end();
    });
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      if (await post()) created++;
      else failed++;
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
  return { requested: count, created, failed, durationMs: Date.now() - startedAt };
}

/**
 * Issue 7's benchmark: the `redis` replica store against `memory`, on real processes from the
 * compiled CLI and a real redis-server, in interleaved rounds of the same run:
 *  - sticky reads (`GET /api/counter` of existing sessions): req/s, which must not depend on
 *    the store (the hot path never asks it);
 *  - writes (`POST /api/counter`, sync replication): latency at 1 connection and req/s at 50.
 *
 *   npm run build && node dist/bench/run.js redis
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import {
  BenchProcess,
  compareLoad,
  type LoadSample,
  describeMachine,
  finishMachine,
  freePort,
  machineLine,
  makeTempDir,
  loadSummary,
  resultsDirOf,
  round,
  sleep,
  waitFor,
  writeResults,
  type Machine,
} from './common.js';
import { runLoad } from './load.js';
import { StickyCluster } from './sticky-cluster.js';

export interface RedisBenchOptions {
  /** Interleaved rounds (default 3, at least 3). */
  rounds?: number;
  /** Seconds per measured run (default 5). */
  durationSec?: number;
  /** Sessions per cluster, one per connection (default 50). */
  sessions?: number;
  resultsDir?: string | false;
}

type Store = 'memory' | 'redis';
const STORES: readonly Store[] = ['memory', 'redis'];
/** What one round measures per store: [name, method, connections]. */
const RUNS = [
  ['read', 'GET', 50],
  ['write-c1', 'POST', 1],
  ['write-c50', 'POST', 50],
] as const;
type RunName = (typeof RUNS)[number][0];

interface Sample extends LoadSample {
  store: Store;
  run: RunName;
  connections: number;
}

export interface RedisBenchResult {
  machine: Machine;
  redis: string;
  settings: { rounds: number; durationSec: number; sessions: number };
  samples: Sample[];
  /** Per run: medians per store and medians of per-round redis ÷ memory ratios. */
  results: Array<{
    run: RunName;
    connections: number;
    memory: { requestsPerSec: number; p50Ms: number; p99Ms: number };
    redis: { requestsPerSec: number; p50Ms: number; p99Ms: number };
    requestsPerSecRatio: number;
    p50Ratio: number;
    p99Ratio: number;
    errors: number;
    non2xx: number;
  }>;
}

/** `$STICKYLB_REDIS_SERVER`, else redis-server on PATH or in Debian's folders. */
function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  const override = process.env.STICKYLB_REDIS_SERVER;
  const candidates = override ? [override] : dirs.map((dir) => join(dir, 'redis-server'));
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

async function createSessions(baseUrl: string, count: number): Promise<Array<Record<string, string>>> {
  const sessions: Array<Record<string, string>> = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${baseUrl}/api/counter`, { method: 'POST' });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
    await response.arrayBuffer();
    if (!response.ok || cookie === undefined) throw new Error(`session not created: ${response.status}`);
    sessions.push({ cookie: cookie.slice(0, cookie.indexOf(';')) });
  }
  return sessions;
}

export async function runRedisBench(options: RedisBenchOptions = {}): Promise<RedisBenchResult | undefined> {
  const settings = {
    rounds: Math.max(3, options.rounds ?? 3),
    durationSec: options.durationSec ?? 5,
    sessions: options.sessions ?? 50,
  };
  const binary = findRedisServer();
  if (binary === undefined) {
    console.log('bench/redis: SKIPPED: redis-server not found (apt-get install redis-server)');
    return undefined;
  }
  const machine = describeMachine();
  const port = await freePort();
  const redis = new BenchProcess(
    'bench/redis redis-server',
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { cwd: makeTempDir('stickylb-bench-redis-') },
  );
  const samples: Sample[] = [];
  let version = '';
  const clusters: Partial<Record<Store, StickyCluster>> = {};
  try {
    await waitFor(
      'redis-server answers',
      async () => {
        const { Redis } = await import('ioredis');
        const client = new Redis(port, '127.0.0.1', {
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        client.on('error', () => undefined); // not up yet: the probe is retried
        try {
          await client.connect();
          version = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? '';
          return true;
        } finally {
          client.disconnect();
        }
      },
      10_000,
      redis,
    );
    clusters.memory = await StickyCluster.start({ label: 'bench/redis memory' });
    clusters.redis = await StickyCluster.start({
      label: 'bench/redis redis',
      redisUrl: `redis://127.0.0.1:${port}`,
    });
    const sessions = {
      memory: await createSessions(clusters.memory.proxyUrl, settings.sessions),
      redis: await createSessions(clusters.redis.proxyUrl, settings.sessions),
    };
    const measure = async (
      store: Store,
      run: (typeof RUNS)[number],
      durationSec: number,
      roundNo: number,
    ) => {
      const [name, method, connections] = run;
      const load = await runLoad({
        url: `${(clusters[store] as StickyCluster).proxyUrl}/api/counter`,
        method,
        sessions: sessions[store],
        connections,
        durationSec,
      });
      await sleep(300);
      return {
        round: roundNo,
        store,
        run: name,
        connections,
        requestsPerSec: Math.round(load.requestsPerSec),
        p50Ms: round(load.p50Ms, 3),
        p99Ms: round(load.p99Ms, 3),
        errors: load.errors,
        non2xx: load.non2xx,
      };
    };
    // Warm-up (JIT, keep-alive sockets, Redis connections): not recorded.
    for (const run of RUNS) for (const store of STORES) await measure(store, run, 1, 0);
    for (let r = 1; r <= settings.rounds; r++) {
      for (const run of RUNS) {
        for (const store of r % 2 === 0 ? [...STORES].reverse() : STORES) {
          const sample = await measure(store, run, settings.durationSec, r);
          samples.push(sample);
          console.log(
            `bench/redis: round ${r} ${sample.run} ${store}: ${sample.requestsPerSec} req/s, p50 ${sample.p50Ms} ms, p99 ${sample.p99Ms} ms`,
          );
        }
      }
    }
  } finally {
    await Promise.all([clusters.memory?.close(), clusters.redis?.close()]);
    await redis.stop();
  }
  finishMachine(machine);
  const results = RUNS.map(([run, , connections]) => {
    const of = (store: Store): Sample[] => samples.filter((s) => s.store === store && s.run === run);
    return {
      run,
      connections,
      memory: loadSummary(of('memory')),
      redis: loadSummary(of('redis')),
      ...compareLoad(of('redis'), of('memory')),
    };
  });
  const result: RedisBenchResult = { machine, redis: version, settings, samples, results };
  writeResults(resultsDirOf(options.resultsDir), 'redis', result, toMarkdown(result));
  return result;
}

function toMarkdown(result: RedisBenchResult): string {
  const label: Record<RunName, string> = {
    read: 'sticky reads `GET /api/counter`',
    'write-c1': 'writes `POST /api/counter` (sync)',
    'write-c50': 'writes `POST /api/counter` (sync)',
  };
  const rows = result.results.map(
    (r) =>
      `| ${label[r.run]} | ${r.connections} | ${r.memory.requestsPerSec} | ${r.redis.requestsPerSec} | ${r.requestsPerSecRatio} | ${r.memory.p50Ms} / ${r.memory.p99Ms} | ${r.redis.p50Ms} / ${r.redis.p99Ms} | ${r.p50Ratio} | ${r.errors + r.non2xx} |`,
  );
  return `# Replica store: redis vs memory

${machineLine(result.machine)} Redis ${result.redis}, on the same machine. ${result.settings.rounds} interleaved rounds of ${result.settings.durationSec} s per run; medians, and medians of per-round redis ÷ memory ratios. One proxy process, three nodes, ${result.settings.sessions} sessions per cluster.

| load | connections | memory req/s | redis req/s | req/s ratio | memory p50 / p99 ms | redis p50 / p99 ms | p50 ratio | errors + non-2xx |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${rows.join('\n')}
`;
}

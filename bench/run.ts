/**
 * Runs the benchmarks and writes bench/results/<name>.json|md.
 *
 *   npm run bench                          store, proxy, failover, scale, redis
 *   node dist/bench/run.js proxy failover  the named ones
 *   node dist/bench/run.js soak            10 min of churn and kill -9 (not in the default set)
 *
 * Environment: BENCH_QUICK=1 (short rounds, for a smoke run), BENCH_ROUNDS, BENCH_DURATION
 * (seconds per measured run), BENCH_CONNECTIONS (proxy), BENCH_RESULTS_DIR, BENCH_PROXY_WORKERS
 * (`proxy.workers` of the stickylb clusters), BENCH_COMMIT (the code measured, when not git HEAD),
 * SOAK_MINUTES and SOAK_KILL_EVERY_S (soak).
 */
import os from 'node:os';
import { runFailoverBench } from './failover.js';
import { runScaleBench } from './scale.js';
import { runProxyBench } from './proxy.js';
import { runRedisBench } from './redis.js';
import { runSoakBench } from './soak.js';
import { runStoreBench } from './store.js';

const BENCHES = ['store', 'proxy', 'failover', 'scale', 'redis', 'soak'] as const;
/** What `npm run bench` runs: the soak takes 10 minutes and is asked for by name. */
const DEFAULT_BENCHES = ['store', 'proxy', 'failover', 'scale', 'redis'] as const;
type BenchName = (typeof BENCHES)[number];

const isQuick = process.env.BENCH_QUICK === '1';
const numberFromEnv = (name: string): number | undefined => {
  const value = process.env[name];
  if (value === undefined || value === '') return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name}: must be a positive number`);
  return parsed;
};
const rounds = numberFromEnv('BENCH_ROUNDS') ?? (isQuick ? 3 : undefined);
const durationSec = numberFromEnv('BENCH_DURATION') ?? (isQuick ? 2 : undefined);
const connections = numberFromEnv('BENCH_CONNECTIONS');

const runners: Record<BenchName, () => Promise<unknown>> = {
  store: () =>
    runStoreBench(
      isQuick
        ? {
            sessions: 50_000,
            operations: 100_000,
            rounds: 3,
            memorySizes: [100_000],
            sweepSessions: 200_000,
            sweepRuns: 1,
            ...(process.env.BENCH_RESULTS_DIR ? { resultsDir: process.env.BENCH_RESULTS_DIR } : {}),
          }
        : process.env.BENCH_RESULTS_DIR
          ? { resultsDir: process.env.BENCH_RESULTS_DIR }
          : {},
    ),
  proxy: () =>
    runProxyBench({
      ...(rounds !== undefined ? { rounds } : {}),
      ...(durationSec !== undefined ? { durationSec } : {}),
      ...(connections !== undefined ? { connections } : {}),
      ...(isQuick ? { warmupSec: 1 } : {}),
    }),
  failover: () =>
    runFailoverBench({
      ...(rounds !== undefined ? { repeats: rounds, latencyRounds: rounds } : {}),
      ...(durationSec !== undefined ? { latencyDurationSec: durationSec } : {}),
      ...(isQuick ? { sessions: 150, afterKillMs: 2500 } : {}),
    }),
  scale: () =>
    runScaleBench(process.env.BENCH_RESULTS_DIR ? { resultsDir: process.env.BENCH_RESULTS_DIR } : {}),
  redis: () =>
    runRedisBench({
      ...(rounds !== undefined ? { rounds } : {}),
      ...(durationSec !== undefined ? { durationSec } : {}),
    }),
  soak: () => runSoakBench(),
};

const requested = process.argv.slice(2);
for (const name of requested) {
  if (!(BENCHES as readonly string[]).includes(name)) {
    console.error(`unknown bench "${name}" (known: ${BENCHES.join(', ')})`);
    process.exit(2);
  }
}
const selected = requested.length === 0 ? [...DEFAULT_BENCHES] : (requested as BenchName[]);
console.log(
  `benches: ${selected.join(', ')}${isQuick ? ' (quick)' : ''}; load average ${os
    .loadavg()
    .map((load) => load.toFixed(2))
    .join(' / ')}`,
);
for (const name of selected) {
  const started = Date.now();
  console.log(`== ${name}`);
  await runners[name]();
  console.log(`== ${name} done in ${Math.round((Date.now() - started) / 1000)} s`);
}
// autocannon and keep-alive agents may leave handles open: the results are written.
process.exit(0);

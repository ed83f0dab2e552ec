/**
 * Issue 4's benchmarks, on real processes from the compiled CLI:
 *  - failover time: sessions spread over three nodes keep sending requests; one node is
 *    killed with SIGKILL; for each of its sessions, the time from the kill to its first
 *    successful answer from another node (state checked), and the requests that failed;
 *  - write latency with sync replication ÷ async, interleaved rounds.
 *
 *   npm run build && node dist/bench/run.js failover
 */
import {
  describeMachine,
  finishMachine,
  machineLine,
  median,
  resultsDirOf,
  round,
  writeResults,
  type Machine,
} from './common.js';
import { runFailoverOnce, type FailoverRun } from './failover-kill.js';
import { hasProxyWorkers } from './sticky-cluster.js';
import { measureLoopbackRtt, type LoopbackRtt } from './loopback-rtt.js';
import { measureWriteLatency, type LatencySample, type WriteLatencyResult } from './write-latency.js';

export interface FailoverBenchOptions {
  /** Sessions sending requests during each failover (default 300). */
  sessions?: number;
  /** Fresh clusters, one kill each; medians are reported (default 3, at least 3). */
  repeats?: number;
  /** Each session waits this long after an answer before its next request (default 200 ms: 300 sessions then offer at most 1500 req/s, below what this box serves). */
  thinkMs?: number;
  /** Every Nth request of a session is a POST (a write), the others GETs (default 4). */
  postEvery?: number;
  /** Traffic before the kill (default 3000 ms) and after it (default 4000 ms). */
  beforeKillMs?: number;
  afterKillMs?: number;
  /** Interleaved sync/async rounds of the write-latency measurement (default 3, at least 3). */
  latencyRounds?: number;
  /** Seconds per write-latency run (default 5). */
  latencyDurationSec?: number;
  /** Connections (each its own session) of the write-latency runs (default 1 and 50). */
  latencyConnections?: number[];
  /** Where failover.json and failover.md go; false writes nothing (default bench/results). */
  resultsDir?: string | false;
}

/** The options with their defaults filled in. */
export type FailoverSettings = Required<Omit<FailoverBenchOptions, 'resultsDir'>>;

export interface FailoverBenchResult {
  machine: Machine;
  settings: FailoverSettings;
  failover: {
    runs: FailoverRun[];
    /** Medians over runs. */
    median: {
      failoverP50Ms: number;
      failoverP99Ms: number;
      failoverMaxMs: number;
      controlP50Ms: number;
      controlP99Ms: number;
      waitP50Ms: number;
      waitP99Ms: number;
      latencyBeforeKillP50Ms: number;
      latencyBeforeKillP99Ms: number;
      failedAfterKill: number;
      unrecovered: number;
      lostState: number;
    };
  };
  writeLatency: { rounds: LatencySample[]; results: WriteLatencyResult[] };
  /** One loopback round trip between two processes, measured after the write rounds. */
  loopbackRtt: LoopbackRtt;
  targets: {
    failoverWaitP99Under50Ms: boolean;
    failoverP99Under50Ms: boolean;
    syncWriteP50AtMost13xAsync: boolean;
  };
}

export async function runFailoverBench(options: FailoverBenchOptions = {}): Promise<FailoverBenchResult> {
  const settings = {
    sessions: options.sessions ?? 300,
    repeats: Math.max(3, options.repeats ?? 3),
    thinkMs: options.thinkMs ?? 200,
    postEvery: options.postEvery ?? 4,
    beforeKillMs: options.beforeKillMs ?? 3000,
    afterKillMs: options.afterKillMs ?? 4000,
    latencyRounds: Math.max(3, options.latencyRounds ?? 3),
    latencyDurationSec: options.latencyDurationSec ?? 5,
    latencyConnections: options.latencyConnections ?? [1, 50],
  };
  const machine = describeMachine();
  const runs: FailoverRun[] = [];
  for (let repeat = 0; repeat < settings.repeats; repeat++) {
    const run = await runFailoverOnce(settings, repeat);
    runs.push(run);
    console.log(
      `bench/failover: run ${repeat + 1}: killed ${run.killedNode} (${run.victims} sessions): wait p50 ${run.waitMs.p50} ms, p99 ${run.waitMs.p99} ms; kill → first 2xx p99 ${run.failoverMs.p99} ms (control ${run.controlMs.p99} ms); ${run.failedAfterKill} failed requests, ${run.lostState} lost state, ${run.requestsPerSec} req/s`,
    );
  }
  const mid = (pick: (run: FailoverRun) => number): number => round(median(runs.map(pick)));
  const failover: FailoverBenchResult['failover'] = {
    runs,
    median: {
      failoverP50Ms: mid((r) => r.failoverMs.p50),
      failoverP99Ms: mid((r) => r.failoverMs.p99),
      failoverMaxMs: mid((r) => r.failoverMs.max),
      controlP50Ms: mid((r) => r.controlMs.p50),
      controlP99Ms: mid((r) => r.controlMs.p99),
      waitP50Ms: mid((r) => r.waitMs.p50),
      waitP99Ms: mid((r) => r.waitMs.p99),
      latencyBeforeKillP50Ms: mid((r) => r.latencyBeforeKillMs.p50),
      latencyBeforeKillP99Ms: mid((r) => r.latencyBeforeKillMs.p99),
      failedAfterKill: mid((r) => r.failedAfterKill),
      unrecovered: mid((r) => r.unrecovered),
      lostState: mid((r) => r.lostState),
    },
  };
  const writeLatency = await measureWriteLatency(settings);
  const loopbackRtt = await measureLoopbackRtt();
  finishMachine(machine);
  const result: FailoverBenchResult = {
    machine,
    settings,
    failover,
    writeLatency,
    loopbackRtt,
    targets: {
      failoverWaitP99Under50Ms: failover.median.waitP99Ms < 50,
      failoverP99Under50Ms: failover.median.failoverP99Ms < 50,
      syncWriteP50AtMost13xAsync: writeLatency.results.every((r) => r.p50Ratio <= 1.3),
    },
  };
  writeResults(resultsDirOf(options.resultsDir), 'failover', result, renderMarkdown(result));
  return result;
}

/** How the stickylb proxies ran, for the text: the build's `proxy.workers` default or BENCH_PROXY_WORKERS. */
function workersNote(): string {
  if (!hasProxyWorkers()) return '';
  const workers = process.env.BENCH_PROXY_WORKERS;
  return workers
    ? `, \`proxy.workers: ${workers}\``
    : ', `proxy.workers: auto`: one data-plane worker process per core';
}

function renderMarkdown(result: FailoverBenchResult): string {
  const { machine, settings, failover, writeLatency, loopbackRtt } = result;
  const m = failover.median;
  const runRows = failover.runs
    .map((r, index) => {
      const failures = Object.entries(r.failures)
        .map(([kind, count]) => `${kind}: ${count}`)
        .join(', ');
      const move = r.proactiveMove ? `${r.proactiveMove.moved} in ${r.proactiveMove.durationMs} ms` : '–';
      return `| ${index + 1} | ${r.killedNode} | ${r.victims} | ${r.waitMs.p50} / ${r.waitMs.p99} / ${r.waitMs.max} | ${r.failoverMs.p50} / ${r.failoverMs.p99} / ${r.failoverMs.max} | ${r.controlMs.p50} / ${r.controlMs.p99} | ${r.latencyBeforeKillMs.p50} / ${r.latencyBeforeKillMs.p99} | ${r.failedAfterKill} of ${r.requestsAfterKill}${failures ? ` (${failures})` : ''} | ${r.unrecovered} | ${r.lostState} | ${r.detectedDownAfterMs ?? '–'} | ${move} | ${r.requestsPerSec} |`;
    })
    .join('\n');
  const latencyRows = writeLatency.results
    .map(
      (r) =>
        `| ${r.connections} | ${r.sync.p50Ms} / ${r.sync.p99Ms} | ${r.async.p50Ms} / ${r.async.p99Ms} | ${r.p50Ratio}× / ${r.p99Ratio}× | ${r.sync.requestsPerSec} / ${r.async.requestsPerSec} (${r.requestsPerSecRatio}×) | ${r.sync.proxyCpuUsPerRequest} / ${r.async.proxyCpuUsPerRequest} | ${r.sync.nodesCpuUsPerRequest} / ${r.async.nodesCpuUsPerRequest} | ${r.errors} / ${r.non2xx} |`,
    )
    .join('\n');
  const mark = (ok: boolean): string => (ok ? 'met' : 'NOT met');
  return `# Failover benchmarks (bench/failover)

${machineLine(machine)}
Reproduce: \`npm run build && node dist/bench/run.js failover\` (\`BENCH_QUICK=1\` for short rounds).

Real processes from the compiled CLI: \`stickylb proxy\` with the default settings (sync replication,
health checks every 1 s, down after 2 failures, least-sessions${workersNote()}) and three \`stickylb backend\` nodes,
all on this machine's ${machine.cores} cores with the clients.

## Failover time (${settings.repeats} fresh clusters, one \`kill -9\` each)

${settings.sessions} sessions (each its own cookie, created through the proxy) send \`GET /api/counter\`,
every ${settings.postEvery}th request a \`POST\`, waiting ${settings.thinkMs} ms after each answer; ${settings.beforeKillMs} ms in, one node gets SIGKILL, traffic goes on for ${settings.afterKillMs} ms. A victim is a
session whose last answer before the kill came from that node. Per victim:
- **kill → first 2xx**: from the kill to its first 2xx answered by another node (the issue's measure);
  it includes waiting for the session's next request, so the **control** gives the same measure from
  an instant 1.5 s before the kill, with no failure;
- **wait**: what the user waited on the failover: from the kill (request already in flight) or from
  sending (request sent after it) to that first 2xx; think time is not in it;
- **lost state**: its first answer after failover showed a lower count than one it had already been given.

Medians over runs: **wait p50 ${m.waitP50Ms} ms, p99 ${m.waitP99Ms} ms**; kill → first 2xx p50 ${m.failoverP50Ms} ms,
p99 ${m.failoverP99Ms} ms (worst session ${m.failoverMaxMs} ms) against the control's ${m.controlP50Ms} / ${m.controlP99Ms} ms; every
request's latency in the 2 s before the kill ${m.latencyBeforeKillP50Ms} / ${m.latencyBeforeKillP99Ms} ms; ${m.failedAfterKill} failed requests,
${m.unrecovered} unrecovered and ${m.lostState} sessions with lost state per kill.

| run | killed | victims | wait p50 / p99 / max ms | kill → first 2xx p50 / p99 / max ms | control p50 / p99 ms | latency before kill p50 / p99 ms | failed requests after kill | unrecovered | lost state | marked down after ms | proactive move | req/s |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${runRows}

Target < 50 ms at p99: wait ${mark(result.targets.failoverWaitP99Under50Ms)}; kill → first 2xx ${mark(result.targets.failoverP99Under50Ms)}
(this one also holds the time until the session's next request is sent, which the control shows).
"Marked down after" and "proactive move" come from the proxy's event log (\`GET /api/state\`).

## Write latency: sync replication ÷ async (median of ${settings.latencyRounds} interleaved rounds of ${settings.latencyDurationSec} s)

Two clusters of the same shape running side by side, one with \`replication.mode: sync\` (the
node answers after the replica store, in the proxy process, acknowledged the write: one extra
loopback round trip node → proxy per write, on the replication channel's persistent connection), one with \`async\` (the node answers at once and
flushes batches every 10 ms). \`POST /api/counter\` through the proxy, each connection its own session.
There is no "replication off" setting, so async is the baseline: it still pays the batched
replication CPU, so this ratio understates sync's cost against no replication at all.

| connections | sync p50 / p99 ms | async p50 / p99 ms | sync ÷ async p50 / p99 | req/s sync / async (ratio) | proxy process CPU µs/req sync / async | nodes CPU µs/req sync / async | errors / non-2xx |
| --- | --- | --- | --- | --- | --- | --- | --- |
${latencyRows}

Target sync ÷ async p50 ≤ 1.3×: ${mark(result.targets.syncWriteP50AtMost13xAsync)}.

The floor under that ratio at one connection: a sync write adds at least one loopback round trip
between two processes (node → replica store → node), which took p50 ${loopbackRtt.p50Us} µs / p99 ${loopbackRtt.p99Us} µs here, measured
right after these rounds (${loopbackRtt.roundTrips.toLocaleString('en')} sequential 64-byte ping-pongs between two Node processes,
\`bench/loopback-rtt.ts\`). With nothing else added, sync ÷ async p50 would be ${floorOf(writeLatency.results, loopbackRtt)}.
`;
}

/**
 * (async p50 + one round trip) ÷ async p50 at one connection, the ratio sync mode cannot go
 * below there. Only at one connection: under load latency is set by throughput, not hops.
 */
function floorOf(results: readonly WriteLatencyResult[], rtt: LoopbackRtt): string {
  const single = results.find((r) => r.connections === 1);
  if (single === undefined) return 'not computed (no run at one connection)';
  return `${round((single.async.p50Ms + rtt.p50Us / 1000) / single.async.p50Ms)}× at one connection`;
}

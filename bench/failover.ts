/**
 * Issue 4's benchmarks, on real processes from the compiled CLI:
 *  - failover time: sessions spread over three nodes keep sending requests; one node is
 *    killed with SIGKILL; for each of its sessions, the time from the kill to its first
 *    successful answer from another node (state checked), and the requests that failed;
 *  - write latency with sync replication ÷ async, interleaved rounds.
 *
 *   npm run build && node dist/bench/run.js failover
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import {
  cpuTimesMs,
  describeMachine,
  finishMachine,
  machineLine,
  median,
  percentile,
  resultsDirOf,
  round,
  sleep,
  writeResults,
  type Machine,
} from './common.js';
import { runLoad } from './load.js';
import { hasProxyWorkers, StickyCluster } from './sticky-cluster.js';

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

interface Exchange {
  method: 'GET' | 'POST';
  /** performance.now() when sent and when the answer (or error) was complete. */
  start: number;
  end: number;
  status: number;
  node: string | undefined;
  count: number | undefined;
  /** Network error code, or the error code and message of a JSON error answer. */
  error: string | undefined;
}

interface Distribution {
  p50: number;
  p99: number;
  max: number;
}

export interface FailoverRun {
  killedNode: string;
  sessions: number;
  /** Sessions whose last answer before the kill came from the killed node. */
  victims: number;
  /** Kill → first 2xx from another node, per victim session (ms). */
  failoverMs: Distribution;
  /** Same clock, no failure: a reference instant 1.5 s before the kill → each victim's next 2xx. The floor set by think time and load. */
  controlMs: Distribution;
  /**
   * What a victim's user waited on the failover: from the kill (request already in flight)
   * or from sending (request sent after it) to the first 2xx from another node. Think time
   * is not in it; compare with `latencyBeforeKillMs`, every request's latency before the kill.
   */
  waitMs: Distribution;
  latencyBeforeKillMs: Distribution;
  /** Victims with no 2xx from another node before the run ended. */
  unrecovered: number;
  /** Victims whose first answer after failover had a lower count than one already acknowledged. */
  lostState: number;
  requestsAfterKill: number;
  failedAfterKill: number;
  failedBeforeKill: number;
  /** Failures after the kill by method, status and error code/message. */
  failures: Record<string, number>;
  requestsPerSec: number;
  /** From the proxy's event log: kill → node marked down, and the proactive move it started. */
  detectedDownAfterMs: number | null;
  proactiveMove: { moved: number; durationMs: number } | null;
  proxyRetries: number | null;
}

interface LatencySample {
  round: number;
  mode: 'sync' | 'async';
  connections: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  proxyCpuUsPerRequest: number;
  nodesCpuUsPerRequest: number;
}

export interface WriteLatencyResult {
  connections: number;
  sync: {
    p50Ms: number;
    p99Ms: number;
    requestsPerSec: number;
    proxyCpuUsPerRequest: number;
    nodesCpuUsPerRequest: number;
  };
  async: {
    p50Ms: number;
    p99Ms: number;
    requestsPerSec: number;
    proxyCpuUsPerRequest: number;
    nodesCpuUsPerRequest: number;
  };
  /** Medians of per-round sync ÷ async ratios. */
  p50Ratio: number;
  p99Ratio: number;
  requestsPerSecRatio: number;
  errors: number;
  non2xx: number;
}

export interface FailoverBenchResult {
  machine: Machine;
  settings: Required<Omit<FailoverBenchOptions, 'resultsDir'>>;
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
  targets: {
    failoverWaitP99Under50Ms: boolean;
    failoverP99Under50Ms: boolean;
    syncWriteP50AtMost13xAsync: boolean;
  };
}

interface Session {
  cookie: string;
  log: Exchange[];
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

/** One request as a browser would send it (cookie jar: a re-issued SESSIONID replaces the old one). */
function exchange(baseUrl: string, session: Session, method: 'GET' | 'POST'): Promise<Exchange> {
  const start = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, body: string, error?: string): void => {
      let node: string | undefined;
      let count: number | undefined;
      let failure = error;
      try {
        if (status >= 200 && status < 300)
          ({ node, count } = JSON.parse(body) as { node: string; count: number });
        else if (status !== 0) {
          const answer = JSON.parse(body) as { error?: string; message?: string };
          failure = `${answer.error ?? 'no code'}: ${answer.message ?? ''}`;
        }
      } catch {
        // not JSON
      }
      resolve({ method, start, end: performance.now(), status, node, count, error: failure });
    };
    const req = request(
      `${baseUrl}/api/counter`,
      {
        method,
        agent,
        headers: { cookie: session.cookie, ...(method === 'POST' ? { 'content-length': '0' } : {}) },
        timeout: 10_000,
      },
      (res) => {
        const cookie = res.headers['set-cookie']?.find((line) => line.startsWith('SESSIONID='));
        if (cookie !== undefined) session.cookie = cookie.slice(0, cookie.indexOf(';'));
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done(res.statusCode ?? 0, body));
        res.on('error', (error: NodeJS.ErrnoException) => done(0, '', error.code ?? error.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => done(0, '', error.code ?? error.message));
    req.end();
  });
}

async function createSessions(baseUrl: string, count: number): Promise<Session[]> {
  const sessions: Session[] = [];
  const create = async (): Promise<void> => {
    const response = await fetch(`${baseUrl}/api/counter`, { method: 'POST' });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
    await response.arrayBuffer();
    if (!response.ok || cookie === undefined) throw new Error(`session not created: ${response.status}`);
    sessions.push({ cookie: cookie.slice(0, cookie.indexOf(';')), log: [] });
  };
  for (let i = 0; i < count; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, count - i) }, create));
  }
  return sessions;
}

const isOk = (e: Exchange): boolean => e.status >= 200 && e.status < 300;
const distribution = (values: number[]): Distribution => ({
  p50: round(percentile(values, 50)),
  p99: round(percentile(values, 99)),
  max: round(values.length === 0 ? Number.NaN : Math.max(...values)),
});

async function runFailoverOnce(
  settings: FailoverBenchResult['settings'],
  repeat: number,
): Promise<FailoverRun> {
  const cluster = await StickyCluster.start({ label: `bench/failover #${repeat + 1}` });
  try {
    const sessions = await createSessions(cluster.proxyUrl, settings.sessions);
    let isStopping = false;
    const loop = async (session: Session, offset: number): Promise<void> => {
      // Staggered starts, so the sessions do not march in step.
      await sleep(offset);
      for (let n = 1; !isStopping; n++) {
        const method = n % settings.postEvery === 0 ? 'POST' : 'GET';
        session.log.push(await exchange(cluster.proxyUrl, session, method));
        await sleep(settings.thinkMs);
      }
    };
    const started = performance.now();
    const loops = sessions.map((session, index) =>
      loop(session, (index / sessions.length) * settings.thinkMs),
    );
    await sleep(settings.beforeKillMs);
    const victimIndex = repeat % cluster.nodes.length;
    const victim = cluster.nodes[victimIndex];
    const victimId = cluster.nodeIds[victimIndex] as string;
    if (victim === undefined) throw new Error('no node to kill');
    const killWall = Date.now();
    const killAt = performance.now();
    victim.killNow('SIGKILL');
    await sleep(settings.afterKillMs);
    isStopping = true;
    await Promise.all(loops);
    const elapsedSec = (performance.now() - started) / 1000;
    const state = await cluster.state();

    const controlAt = killAt - 1500;
    const failoverMs: number[] = [];
    const controlMs: number[] = [];
    const waitMs: number[] = [];
    const failures: Record<string, number> = {};
    let victims = 0;
    let unrecovered = 0;
    let lostState = 0;
    let requestsAfterKill = 0;
    let failedAfterKill = 0;
    let failedBeforeKill = 0;
    const before: number[] = [];
    for (const { log } of sessions) {
      for (const e of log) {
        if (e.end > killAt) {
          requestsAfterKill++;
          if (!isOk(e)) {
            failedAfterKill++;
            const key = `${e.method} ${e.status === 0 ? '' : `${e.status} `}${e.error ?? ''}`.trim();
            failures[key] = (failures[key] ?? 0) + 1;
          }
        } else if (!isOk(e)) failedBeforeKill++;
        else if (e.end > killAt - 2000) before.push(e.end - e.start);
      }
      const lastBefore = log.filter((e) => e.end <= killAt && isOk(e)).at(-1);
      if (lastBefore?.node !== victimId) continue;
      victims++;
      // Highest count the client saw acknowledged by the killed node (also just after the kill, already in flight).
      const acknowledged = Math.max(
        ...log.filter((e) => isOk(e) && e.node === victimId).map((e) => e.count ?? 0),
      );
      const recovered = log.find((e) => e.end > killAt && isOk(e) && e.node !== victimId);
      if (recovered === undefined) unrecovered++;
      else {
        failoverMs.push(recovered.end - killAt);
        waitMs.push(recovered.end - Math.max(killAt, recovered.start));
        const expected = recovered.method === 'POST' ? acknowledged + 1 : acknowledged;
        if ((recovered.count ?? 0) < expected) lostState++;
      }
      const control = log.find((e) => e.end > controlAt && isOk(e));
      if (control !== undefined) controlMs.push(control.end - controlAt);
    }
    const down = state.events?.find((event) => event.type === 'node:down' && event.at >= killWall - 10);
    const move = state.events?.find((event) => event.type === 'failover:end' && event.at >= killWall - 10);
    return {
      killedNode: victimId,
      sessions: sessions.length,
      victims,
      failoverMs: distribution(failoverMs),
      controlMs: distribution(controlMs),
      waitMs: distribution(waitMs),
      latencyBeforeKillMs: distribution(before),
      unrecovered,
      lostState,
      requestsAfterKill,
      failedAfterKill,
      failedBeforeKill,
      failures,
      requestsPerSec: Math.round(sessions.reduce((sum, s) => sum + s.log.length, 0) / elapsedSec),
      detectedDownAfterMs: down === undefined ? null : down.at - killWall,
      proactiveMove:
        move === undefined ? null : { moved: move.moved ?? 0, durationMs: move.durationMs ?? Number.NaN },
      proxyRetries: state.proxy?.retries ?? null,
    };
  } finally {
    await cluster.close();
  }
}

async function measureWriteLatency(
  settings: FailoverBenchResult['settings'],
): Promise<FailoverBenchResult['writeLatency']> {
  const modes = ['sync', 'async'] as const;
  const clusters = {
    sync: await StickyCluster.start({ label: 'bench/write sync', replicationMode: 'sync' }),
    async: undefined as StickyCluster | undefined,
  };
  const samples: LatencySample[] = [];
  try {
    clusters.async = await StickyCluster.start({ label: 'bench/write async', replicationMode: 'async' });
    const most = Math.max(...settings.latencyConnections);
    const cookies = {
      sync: (await createSessions(clusters.sync.proxyUrl, most)).map((s) => ({ cookie: s.cookie })),
      async: (await createSessions(clusters.async.proxyUrl, most)).map((s) => ({ cookie: s.cookie })),
    };
    const run = async (mode: 'sync' | 'async', connections: number, durationSec: number, roundNo: number) => {
      const cluster = clusters[mode] as StickyCluster;
      const pids = {
        proxy: cluster.proxy.pid,
        ...Object.fromEntries(cluster.nodes.map((node, index) => [`node${index}`, node.pid])),
      };
      const cpuBefore = cpuTimesMs(pids);
      const load = await runLoad({
        url: `${cluster.proxyUrl}/api/counter`,
        method: 'POST',
        sessions: cookies[mode],
        connections,
        durationSec,
      });
      const cpuAfter = cpuTimesMs(pids);
      const delta = (key: string): number => (cpuAfter[key] ?? 0) - (cpuBefore[key] ?? 0);
      const perRequest = (ms: number): number => round((ms * 1000) / Math.max(1, load.requests), 1);
      await sleep(300);
      return {
        round: roundNo,
        mode,
        connections,
        requestsPerSec: Math.round(load.requestsPerSec),
        p50Ms: round(load.p50Ms, 3),
        p99Ms: round(load.p99Ms, 3),
        errors: load.errors,
        non2xx: load.non2xx,
        proxyCpuUsPerRequest: perRequest(delta('proxy')),
        nodesCpuUsPerRequest: perRequest(
          cluster.nodes.reduce((sum, _, index) => sum + delta(`node${index}`), 0),
        ),
      };
    };
    for (const connections of settings.latencyConnections) {
      for (const mode of modes) await run(mode, connections, 1, 0);
    }
    for (let r = 1; r <= settings.latencyRounds; r++) {
      for (const connections of settings.latencyConnections) {
        const order = r % 2 === 0 ? [...modes].reverse() : modes;
        for (const mode of order) {
          const sample = await run(mode, connections, settings.latencyDurationSec, r);
          samples.push(sample);
          console.log(
            `bench/failover: write latency round ${r} c=${connections} ${mode}: p50 ${sample.p50Ms} ms, p99 ${sample.p99Ms} ms, ${sample.requestsPerSec} req/s`,
          );
        }
      }
    }
  } finally {
    await Promise.all([clusters.sync.close(), clusters.async?.close()]);
  }
  const results = settings.latencyConnections.map((connections): WriteLatencyResult => {
    const of = (mode: 'sync' | 'async'): LatencySample[] =>
      samples.filter((s) => s.mode === mode && s.connections === connections);
    const summary = (mode: 'sync' | 'async') => ({
      p50Ms: round(median(of(mode).map((s) => s.p50Ms)), 3),
      p99Ms: round(median(of(mode).map((s) => s.p99Ms)), 3),
      requestsPerSec: Math.round(median(of(mode).map((s) => s.requestsPerSec))),
      proxyCpuUsPerRequest: round(median(of(mode).map((s) => s.proxyCpuUsPerRequest)), 1),
      nodesCpuUsPerRequest: round(median(of(mode).map((s) => s.nodesCpuUsPerRequest)), 1),
    });
    const ratio = (pick: (s: LatencySample) => number): number =>
      round(
        median(
          of('sync').flatMap((s) => {
            const other = of('async').find((a) => a.round === s.round);
            return other === undefined || pick(other) === 0 ? [] : [pick(s) / pick(other)];
          }),
        ),
      );
    const all = [...of('sync'), ...of('async')];
    return {
      connections,
      sync: summary('sync'),
      async: summary('async'),
      p50Ratio: ratio((s) => s.p50Ms),
      p99Ratio: ratio((s) => s.p99Ms),
      requestsPerSecRatio: ratio((s) => s.requestsPerSec),
      errors: all.reduce((sum, s) => sum + s.errors, 0),
      non2xx: all.reduce((sum, s) => sum + s.non2xx, 0),
    };
  });
  return { rounds: samples, results };
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
  finishMachine(machine);
  const result: FailoverBenchResult = {
    machine,
    settings,
    failover,
    writeLatency,
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
  const { machine, settings, failover, writeLatency } = result;
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
loopback HTTP round trip node → proxy per write), one with \`async\` (the node answers at once and
flushes batches every 10 ms). \`POST /api/counter\` through the proxy, each connection its own session.
There is no "replication off" setting, so async is the baseline: it still pays the batched
replication CPU, so this ratio understates sync's cost against no replication at all.

| connections | sync p50 / p99 ms | async p50 / p99 ms | sync ÷ async p50 / p99 | req/s sync / async (ratio) | proxy process CPU µs/req sync / async | nodes CPU µs/req sync / async | errors / non-2xx |
| --- | --- | --- | --- | --- | --- | --- | --- |
${latencyRows}

Target sync ÷ async p50 ≤ 1.3×: ${mark(result.targets.syncWriteP50AtMost13xAsync)}.
`;
}

/**
 * bench/proxy: a sticky workload (every connection its own session) against three demo
 * nodes, through stickylb, a bare http-proxy, HAProxy and nginx, and straight to one node,
 * in interleaved rounds of the same run. Per target: req/s, latency, errors, and the proxy
 * process's CPU time per request from /proc.
 *
 *   npm run build && node dist/bench/run.js proxy
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  BenchProcess,
  cpuTimesMs,
  descendantsOf,
  describeMachine,
  finishMachine,
  findRepoRoot,
  freePort,
  machineLine,
  median,
  resultsDirOf,
  round,
  sleep,
  waitForHttp,
  writeResults,
  type Machine,
} from './common.js';
import { runLoad, type LoadSample } from './load.js';
import { hasProxyWorkers, StickyCluster } from './sticky-cluster.js';
import { startHaproxy, startNginx, type StartResult } from './third-party.js';

export interface ProxyBenchOptions {
  /** Measured rounds (each runs every target once per workload); medians are reported (default 4, at least 3). */
  rounds?: number;
  /** Seconds per measured run (default 6). */
  durationSec?: number;
  /** Seconds of the discarded warm-up run per target and workload (default 2). */
  warmupSec?: number;
  /** Concurrent connections, each its own session (default 50). */
  connections?: number;
  /** Where proxy.json and proxy.md go; false writes nothing (default bench/results). */
  resultsDir?: string | false;
}

export type TargetName = 'direct' | 'stickylb' | 'stickylb1' | 'bare' | 'haproxy' | 'nginx';
export type Workload = 'GET' | 'POST';
const WORKLOADS: Workload[] = ['GET', 'POST'];

const LABELS: Record<TargetName, string> = {
  direct: 'direct to one node (ceiling)',
  stickylb: 'stickylb, default config (sync replication, health checks, replica store)',
  stickylb1: 'stickylb, proxy.workers: 1 (routing only, replica store elsewhere)',
  bare: 'bare http-proxy + keep-alive (floor)',
  haproxy: 'HAProxy (cookie insert)',
  nginx: 'nginx (hash $cookie_SESSIONID consistent)',
};

interface Target {
  name: TargetName;
  url: string;
  /** The proxy process whose CPU is measured (none for direct). */
  process: BenchProcess | undefined;
  /** One header set per connection: its session. */
  sessions: Array<Record<string, string>>;
}

export interface RoundSample extends LoadSample {
  round: number;
  /** CPU time of the proxy process (and its children) per request; null for direct. */
  proxyCpuUsPerRequest: number | null;
  /** CPU of the stickylb process while another target ran: replica store writes (POST), touches, health checks. */
  replicaCpuUsPerRequest: number | null;
  /** CPU of the three node processes together. */
  nodesCpuUsPerRequest: number;
  /** CPU of this process (autocannon). */
  clientCpuUsPerRequest: number;
}

export interface TargetResult {
  target: TargetName;
  label: string;
  workload: Workload;
  /** Medians over rounds; errors and non2xx are totals. */
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
  proxyCpuUsPerRequest: number | null;
  replicaCpuUsPerRequest: number | null;
  nodesCpuUsPerRequest: number;
  clientCpuUsPerRequest: number;
  /** Medians of per-round ratios (same round, same workload); null when the baseline is absent. */
  requestsPerSecVsHaproxy: number | null;
  cpuPerRequestVsHaproxy: number | null;
  requestsPerSecVsBare: number | null;
  cpuPerRequestVsBare: number | null;
  rounds: RoundSample[];
}

export interface ProxyBenchResult {
  machine: Machine;
  settings: Required<Omit<ProxyBenchOptions, 'resultsDir'>>;
  /** Target → label as shown in the tables. */
  labels: Partial<Record<TargetName, string>>;
  /** Where each target put its sessions (node → sessions) and how many stayed on their node when read back. */
  sessions: Record<string, { nodes: Record<string, number>; stuck: number; of: number }>;
  results: TargetResult[];
  /** stickylb's POST CPU split: the replica store's share measured while the other targets ran. */
  stickylbPostCpu: { totalUs: number; replicaShareUs: number; proxyingUs: number } | null;
  skipped: string[];
  configs: Record<string, string>;
}

interface CounterReply {
  node: string;
  count: number;
}

/** Each connection's session, created through the target like a first visit (POST /api/counter). */
export async function createSessions(
  target: Omit<Target, 'sessions'>,
  count: number,
  tally: ProxyBenchResult['sessions'],
): Promise<Array<Record<string, string>>> {
  const sessions: Array<Record<string, string>> = [];
  const nodes: Record<string, number> = {};
  let stuck = 0;
  for (let i = 0; i < count; i++) {
    let headers: Record<string, string>;
    let response: Response;
    if (target.name === 'direct') {
      // No proxy: send the internal header a proxy would, with an id of our own.
      headers = { 'x-stickylb-session': randomBytes(16).toString('base64url') };
      response = await fetch(`${target.url}/api/counter`, { method: 'POST', headers });
    } else {
      response = await fetch(`${target.url}/api/counter`, { method: 'POST' });
      const cookies = response.headers.getSetCookie().map((line) => line.slice(0, line.indexOf(';')));
      if (cookies.length === 0) throw new Error(`${target.name}: no Set-Cookie on the first POST`);
      headers = { cookie: cookies.join('; ') };
    }
    const created = (await response.json()) as CounterReply;
    if (!response.ok) throw new Error(`${target.name}: first POST answered ${response.status}`);
    nodes[created.node] = (nodes[created.node] ?? 0) + 1;
    const again = await fetch(`${target.url}/api/counter`, { headers });
    const read = (await again.json()) as CounterReply;
    if (again.ok && read.node === created.node && read.count === created.count) stuck++;
    sessions.push(headers);
  }
  tally[target.name] = { nodes, stuck, of: count };
  return sessions;
}

/** Rotates the order each round so no target always runs first (warm caches, neighbours' load). */
const rotate = <T>(items: T[], by: number): T[] =>
  items.map((_, index) => items[(index + by) % items.length] as T);

export async function runProxyBench(options: ProxyBenchOptions = {}): Promise<ProxyBenchResult> {
  const settings = {
    rounds: Math.max(3, options.rounds ?? 4),
    durationSec: options.durationSec ?? 6,
    warmupSec: options.warmupSec ?? 2,
    connections: options.connections ?? 50,
  };
  const machine = describeMachine();
  const skipped: string[] = [];
  const configs: Record<string, string> = {};
  const tally: ProxyBenchResult['sessions'] = {};
  const samples = new Map<string, RoundSample[]>();
  const labels: Partial<Record<TargetName, string>> = {};
  const cluster = await StickyCluster.start({ label: 'bench/proxy' });
  const extra: BenchProcess[] = [];
  try {
    const nodeUrls = cluster.nodeUrls;
    const targets: Array<Omit<Target, 'sessions'>> = [
      { name: 'direct', url: nodeUrls[0] as string, process: undefined },
      { name: 'stickylb', url: cluster.proxyUrl, process: cluster.proxy },
    ];
    if (hasProxyWorkers()) {
      // The default (\`workers: auto\`) forks one data-plane worker per core; one process is
      // what the other proxies get here, so measure that too.
      const workers = descendantsOf(cluster.proxy.pid).length;
      labels.stickylb = `${LABELS.stickylb.slice(0, -1)}, workers: auto = ${workers} worker processes)`;
      const single = await cluster.startExtraProxy('stickylb workers: 1', { workers: 1 });
      extra.push(single.process);
      targets.push({ name: 'stickylb1', url: single.url, process: single.process });
    }
    const barePort = await freePort();
    const bare = new BenchProcess('bare http-proxy', process.execPath, [
      join(findRepoRoot(), 'dist', 'bench', 'bare-proxy.js'),
      String(barePort),
      ...nodeUrls,
    ]);
    extra.push(bare);
    await waitForHttp('bare http-proxy', `http://127.0.0.1:${barePort}/health`, bare);
    targets.push({ name: 'bare', url: `http://127.0.0.1:${barePort}`, process: bare });
    const addThirdParty = (name: 'haproxy' | 'nginx', started: StartResult): void => {
      if ('skipped' in started) {
        skipped.push(started.skipped);
        console.log(`bench/proxy: skipping ${started.skipped}`);
        return;
      }
      extra.push(started.process);
      configs[name] = started.config;
      targets.push({ name, url: started.url, process: started.process });
    };
    addThirdParty('haproxy', await startHaproxy(await freePort(), nodeUrls));
    addThirdParty('nginx', await startNginx(await freePort(), nodeUrls));

    const ready: Target[] = [];
    for (const target of targets) {
      ready.push({ ...target, sessions: await createSessions(target, settings.connections, tally) });
    }
    const pids = (target: Target): Record<string, number> => ({
      ...(target.process ? { proxy: target.process.pid } : {}),
      replica: cluster.proxy.pid,
      ...Object.fromEntries(cluster.nodes.map((node, index) => [`node${index}`, node.pid])),
    });
    const measure = async (target: Target, workload: Workload, durationSec: number): Promise<RoundSample> => {
      const before = cpuTimesMs(pids(target));
      const clientBefore = process.cpuUsage();
      const load = await runLoad({
        url: `${target.url}/api/counter`,
        method: workload,
        sessions: target.sessions,
        connections: settings.connections,
        durationSec,
      });
      const client = process.cpuUsage(clientBefore);
      const after = cpuTimesMs(pids(target));
      const usPerRequest = (ms: number): number => (ms * 1000) / Math.max(1, load.requests);
      const delta = (key: string): number => (after[key] ?? 0) - (before[key] ?? 0);
      const nodesMs = cluster.nodes.reduce((sum, _, index) => sum + delta(`node${index}`), 0);
      // Let closed connections and the nodes' replication batches settle before the next run.
      await sleep(300);
      return {
        ...load,
        round: 0,
        proxyCpuUsPerRequest: target.process ? usPerRequest(delta('proxy')) : null,
        replicaCpuUsPerRequest: target.name === 'stickylb' ? null : usPerRequest(delta('replica')),
        nodesCpuUsPerRequest: usPerRequest(nodesMs),
        clientCpuUsPerRequest: (client.user + client.system) / Math.max(1, load.requests),
      };
    };

    for (const workload of WORKLOADS) {
      for (const target of ready) {
        console.log(`bench/proxy: warm-up ${target.name} ${workload}`);
        await measure(target, workload, settings.warmupSec);
      }
    }
    for (let round = 0; round < settings.rounds; round++) {
      for (const workload of WORKLOADS) {
        for (const target of rotate(ready, round)) {
          const sample = await measure(target, workload, settings.durationSec);
          sample.round = round + 1;
          const key = `${target.name} ${workload}`;
          samples.set(key, [...(samples.get(key) ?? []), sample]);
          console.log(
            `bench/proxy: round ${round + 1} ${key}: ${Math.round(sample.requestsPerSec)} req/s, p99 ${round2(sample.p99Ms)} ms, proxy CPU ${sample.proxyCpuUsPerRequest === null ? '-' : Math.round(sample.proxyCpuUsPerRequest)} µs/req`,
          );
        }
      }
    }
  } finally {
    await Promise.all([cluster.close(), ...extra.map((child) => child.stop())]);
  }

  finishMachine(machine);
  const results = summarize(samples);
  const stickyPost = results.find((r) => r.target === 'stickylb' && r.workload === 'POST');
  const replicaShares = results
    .filter((r) => r.workload === 'POST' && r.replicaCpuUsPerRequest !== null)
    .map((r) => r.replicaCpuUsPerRequest as number);
  const replicaShareUs = median(replicaShares);
  const result: ProxyBenchResult = {
    machine,
    settings,
    sessions: tally,
    results,
    stickylbPostCpu:
      stickyPost?.proxyCpuUsPerRequest != null && Number.isFinite(replicaShareUs)
        ? {
            totalUs: stickyPost.proxyCpuUsPerRequest,
            replicaShareUs: round(replicaShareUs, 1),
            proxyingUs: round(stickyPost.proxyCpuUsPerRequest - replicaShareUs, 1),
          }
        : null,
    skipped,
    configs,
    labels: Object.fromEntries(
      results.map((r) => [r.target, labels[r.target] ?? LABELS[r.target]]),
    ) as ProxyBenchResult['labels'],
  };
  for (const r of result.results) r.label = labels[r.target] ?? LABELS[r.target];
  writeResults(resultsDirOf(options.resultsDir), 'proxy', result, renderMarkdown(result));
  return result;
}

const round2 = (value: number): number => round(value, 2);

function summarize(samples: Map<string, RoundSample[]>): TargetResult[] {
  const results: TargetResult[] = [];
  for (const workload of WORKLOADS) {
    const of = (name: TargetName): RoundSample[] | undefined => samples.get(`${name} ${workload}`);
    const ratio = (
      rounds: RoundSample[],
      baseline: RoundSample[] | undefined,
      pick: (sample: RoundSample) => number | null,
    ): number | null => {
      if (baseline === undefined) return null;
      const ratios = rounds.flatMap((sample) => {
        const base = baseline.find((candidate) => candidate.round === sample.round);
        const value = pick(sample);
        const baseValue = base === undefined ? null : pick(base);
        return value === null || baseValue === null || baseValue === 0 ? [] : [value / baseValue];
      });
      return ratios.length === 0 ? null : round2(median(ratios));
    };
    for (const name of Object.keys(LABELS) as TargetName[]) {
      const rounds = of(name);
      if (rounds === undefined) continue;
      const middle = (pick: (sample: RoundSample) => number | null): number | null => {
        const values = rounds.map(pick).filter((value): value is number => value !== null);
        return values.length === 0 ? null : median(values);
      };
      const rps = (sample: RoundSample): number => sample.requestsPerSec;
      const cpu = (sample: RoundSample): number | null => sample.proxyCpuUsPerRequest;
      results.push({
        target: name,
        label: LABELS[name],
        workload,
        requestsPerSec: Math.round(middle(rps) ?? 0),
        p50Ms: round2(middle((s) => s.p50Ms) ?? Number.NaN),
        p99Ms: round2(middle((s) => s.p99Ms) ?? Number.NaN),
        errors: rounds.reduce((sum, s) => sum + s.errors, 0),
        non2xx: rounds.reduce((sum, s) => sum + s.non2xx, 0),
        proxyCpuUsPerRequest: nullableRound(middle(cpu)),
        replicaCpuUsPerRequest: nullableRound(middle((s) => s.replicaCpuUsPerRequest)),
        nodesCpuUsPerRequest: round(middle((s) => s.nodesCpuUsPerRequest) ?? Number.NaN, 1),
        clientCpuUsPerRequest: round(middle((s) => s.clientCpuUsPerRequest) ?? Number.NaN, 1),
        requestsPerSecVsHaproxy: ratio(rounds, of('haproxy'), rps),
        cpuPerRequestVsHaproxy: ratio(rounds, of('haproxy'), cpu),
        requestsPerSecVsBare: ratio(rounds, of('bare'), rps),
        cpuPerRequestVsBare: ratio(rounds, of('bare'), cpu),
        rounds: rounds.map((sample) => ({
          ...sample,
          requestsPerSec: Math.round(sample.requestsPerSec),
          p50Ms: round2(sample.p50Ms),
          p99Ms: round2(sample.p99Ms),
          proxyCpuUsPerRequest: nullableRound(sample.proxyCpuUsPerRequest),
          replicaCpuUsPerRequest: nullableRound(sample.replicaCpuUsPerRequest),
          nodesCpuUsPerRequest: round(sample.nodesCpuUsPerRequest, 1),
          clientCpuUsPerRequest: round(sample.clientCpuUsPerRequest, 1),
        })),
      });
    }
  }
  return results;
}

const nullableRound = (value: number | null): number | null => (value === null ? null : round(value, 1));

function renderMarkdown(result: ProxyBenchResult): string {
  const { machine, settings } = result;
  const dash = (value: number | null, suffix = ''): string => (value === null ? '–' : `${value}${suffix}`);
  const table = (workload: Workload): string => {
    const rows = result.results
      .filter((r) => r.workload === workload)
      .map(
        (r) =>
          `| ${r.label} | ${r.requestsPerSec} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} / ${r.non2xx} | ${dash(r.proxyCpuUsPerRequest)} | ${dash(r.requestsPerSecVsHaproxy, '×')} | ${dash(r.cpuPerRequestVsHaproxy, '×')} | ${dash(r.requestsPerSecVsBare, '×')} | ${dash(r.cpuPerRequestVsBare, '×')} | ${r.nodesCpuUsPerRequest} | ${dash(r.replicaCpuUsPerRequest)} |`,
      );
    return `| target | req/s | p50 ms | p99 ms | errors / non-2xx | proxy CPU µs/req | req/s ÷ HAProxy | CPU ÷ HAProxy | req/s ÷ bare | CPU ÷ bare | nodes CPU µs/req | replica store CPU µs/req |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}`;
  };
  const split = result.stickylbPostCpu;
  const sessions = Object.entries(result.sessions)
    .map(
      ([name, s]) =>
        `| ${result.labels[name as TargetName] ?? name} | ${Object.entries(s.nodes)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([node, count]) => `${node}: ${count}`)
          .join(', ')} | ${s.stuck} / ${s.of} |`,
    )
    .join('\n');
  return `# Proxy benchmark (bench/proxy)

${machineLine(machine)}
HAProxy: ${machine.haproxy ?? 'absent'}; nginx: ${machine.nginx ?? 'absent'}.
Reproduce: \`npm run build && node dist/bench/run.js proxy\` (\`BENCH_QUICK=1\` for short rounds).

Three demo nodes (\`stickylb backend\`, each its own process) behind each target, all on this
machine's ${machine.cores} cores together with the load generator (autocannon, in the bench process),
so every number is for a shared box: compare ratios, not absolutes. ${settings.connections} connections,
each one user with its own session: created through the target by \`POST /api/counter\`, then sent
as a cookie (\`x-stickylb-session\` header for the direct run). Median of ${settings.rounds} interleaved rounds
of ${settings.durationSec} s (order rotated each round) after a ${settings.warmupSec} s warm-up per target; ratios are
medians of per-round ratios. Proxy CPU is utime + stime from \`/proc/PID/stat\` (process and children,
10 ms ticks) over the run ÷ responses. HAProxy (\`nbthread 1\`), nginx (\`worker_processes 1\`) and the
bare proxy are one process each; stickylb runs with its default config, and where the build has
\`proxy.workers\` (default \`auto\`: one data-plane worker process per core) also with \`workers: 1\`,
as a second proxy in front of the same nodes (the nodes replicate to the first, so that one only routes).

The stickylb proxy process also hosts the replica store, so it runs during every target's round:
each POST on a node is written to it (sync replication) before the node answers, whichever proxy
routed the request. "replica store CPU" is that process's CPU during the other targets' rounds;
for stickylb (default) it is inside "proxy CPU".

## GET /api/counter (reads the session; no replication write)

${table('GET')}

## POST /api/counter (increments the counter; one sync replica write per request)

${table('POST')}
${
  split === null
    ? ''
    : `
stickylb POST: ${split.totalUs} µs of CPU per request in its process, of which the replica store
(measured while the other targets ran) ≈ ${split.replicaShareUs} µs and proxying ≈ ${split.proxyingUs} µs.
`
}
## Sessions per node (created through each target) and stickiness (read back on the same node)

| target | sessions per node | stayed on their node |
| --- | --- | --- |
${sessions}
${result.skipped.length === 0 ? '' : `\nSkipped: ${result.skipped.join('; ')}.\n`}
HAProxy routes by its own inserted \`SESSIONID\` cookie (\`cookie SESSIONID insert indirect nocache\`)
and mints the app's id in a second cookie; nginx hashes the \`SESSIONID\` cookie (\`$request_id\` for
new clients); the bare proxy keeps a Map. The generated configs are in proxy.json.
`;
}

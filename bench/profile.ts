/**
 * bench/profile: a CPU profile (`node --cpu-prof`) of one proxy process under the sticky GET
 * workload of bench/proxy, summarised by function (self and inclusive time) and by whose
 * code it is (stickylb, http-proxy, Node's http/net internals, GC).
 *
 *   npm run build && node dist/bench/profile.js [stickylb1|bare|replica] [seconds]
 *
 * PROFILE_OUT=FILE keeps a copy of the raw profile.
 *
 * stickylb1 is a `proxy.workers: 1` stickylb in front of a default cluster's nodes (the same
 * extra proxy bench/proxy measures); bare is bench/bare-proxy. The summary is printed as
 * Markdown; the raw .cpuprofile stays in the printed folder (open it in Chrome DevTools or
 * speedscope for the flame graph).
 *
 * replica profiles the other side of a write: the cluster's own proxy process (control plane,
 * hosting the `memory` replica store the nodes write to) while `POST /api/counter` runs through
 * a `workers: 1` proxy in front of the same nodes, so every sampled millisecond of it is
 * replication (and health checks); µs/req is per replicated write.
 */
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess, cpuTimesMs, findRepoRoot, freePort, makeTempDir, waitForHttp } from './common.js';
import { runLoad } from './load.js';
import { createSessions } from './proxy.js';
import { StickyCluster } from './sticky-cluster.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  busyMs: number;
  categories: Array<{ category: string; ms: number; share: number }>;
  self: Array<{ fn: string; category: string; ms: number; share: number }>;
  inclusive: Array<{ fn: string; category: string; ms: number; share: number }>;
}

const IDLE = new Set(['(idle)']);

function categoryOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (functionName === '(garbage collector)') return 'GC';
  // Native work outside any JS frame: libuv, socket reads, the HTTP parser's callbacks' glue.
  if (functionName === '(program)') return '(program): native outside JS';
  if (url.includes('/dist/src/') || url.includes('/dist/bench/')) return 'stickylb';
  if (url.includes('/http-proxy/')) return 'http-proxy';
  if (url.includes('node_modules')) return 'other deps';
  if (url.startsWith('node:')) {
    if (/node:(_http|http)/.test(url)) return 'node:http';
    if (/node:(net|stream|internal\/streams|internal\/stream_base)/.test(url)) return 'node:net+streams';
    return 'node: other';
  }
  return 'native / builtins';
}

function nameOf(frame: CallFrame): string {
  const file = frame.url.replace(/^.*\/(dist|node_modules)\//, '').replace(/^file:\/\//, '');
  return `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim();
}

/** Self and inclusive time per function, from the samples (each sample's time delta). */
export function summarizeProfile(profile: CpuProfile, top = 20): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const selfMs = new Map<string, number>();
  const inclusiveMs = new Map<string, number>();
  const categoryMs = new Map<string, number>();
  const categoryOfName = new Map<string, string>();
  let busyMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] as number);
    // The delta before the next sample is this sample's time.
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    if (node === undefined || IDLE.has(node.callFrame.functionName)) continue;
    busyMs += ms;
    const leaf = nameOf(node.callFrame);
    categoryOfName.set(leaf, categoryOf(node.callFrame));
    selfMs.set(leaf, (selfMs.get(leaf) ?? 0) + ms);
    const category = categoryOf(node.callFrame);
    categoryMs.set(category, (categoryMs.get(category) ?? 0) + ms);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = (byId.get(id) as ProfileNode).callFrame;
      if (frame.functionName === '(root)') break;
      const name = nameOf(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      categoryOfName.set(name, categoryOf(frame));
      inclusiveMs.set(name, (inclusiveMs.get(name) ?? 0) + ms);
    }
  }
  const rows = (map: Map<string, number>): ProfileSummary['self'] =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([fn, ms]) => ({
        fn,
        category: categoryOfName.get(fn) ?? '',
        ms: Math.round(ms),
        share: Math.round((ms / busyMs) * 1000) / 10,
      }));
  return {
    busyMs: Math.round(busyMs),
    categories: [...categoryMs.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([category, ms]) => ({
        category,
        ms: Math.round(ms),
        share: Math.round((ms / busyMs) * 1000) / 10,
      })),
    self: rows(selfMs),
    inclusive: rows(inclusiveMs),
  };
}

/** `cpuUsPerRequest` (measured from /proc over the load run) splits by each row's share of busy time. */
export function renderProfile(title: string, summary: ProfileSummary, cpuUsPerRequest: number): string {
  const perRequest = (ms: number): string => ((ms / summary.busyMs) * cpuUsPerRequest).toFixed(1);
  const table = (rows: ProfileSummary['self']): string =>
    `| function | whose | ms | % of busy | µs/req |\n| --- | --- | --- | --- | --- |\n${rows
      .map((r) => `| \`${r.fn}\` | ${r.category} | ${r.ms} | ${r.share} | ${perRequest(r.ms)} |`)
      .join('\n')}`;
  return `### ${title}

Busy (non-idle) time sampled: ${summary.busyMs} ms (warm-up and load); µs/req columns split the
${cpuUsPerRequest.toFixed(1)} µs of CPU per request measured from /proc over the load run by each row's share.

| whose code (self time) | ms | % of busy | µs/req |
| --- | --- | --- | --- |
${summary.categories.map((c) => `| ${c.category} | ${c.ms} | ${c.share} | ${perRequest(c.ms)} |`).join('\n')}

Top self time:

${table(summary.self)}

Top inclusive time:

${table(summary.inclusive)}
`;
}

async function main(): Promise<void> {
  const which = process.argv[2] ?? 'stickylb1';
  const seconds = Number(process.argv[3] ?? 10);
  const dir = makeTempDir('stickylb-profile-');
  const profileFlags = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const isReplica = which === 'replica';
  const cluster = await StickyCluster.start({
    label: 'bench/profile',
    ...(isReplica ? { proxyFlags: profileFlags } : {}),
  });
  let target: BenchProcess | undefined;
  try {
    let url: string;
    if (which === 'bare') {
      const port = await freePort();
      target = new BenchProcess('bare http-proxy', process.execPath, [
        ...profileFlags,
        join(findRepoRoot(), 'dist', 'bench', 'bare-proxy.js'),
        String(port),
        ...cluster.nodeUrls,
      ]);
      url = `http://127.0.0.1:${port}`;
      await waitForHttp('bare', `${url}/health`, target);
    } else {
      const started = await cluster.startExtraProxy('stickylb workers: 1', { workers: 1 }, profileFlags);
      target = started.process;
      url = started.url;
    }
    const name = which === 'bare' ? 'bare' : 'stickylb1';
    const sessions = await createSessions({ name, url, process: target }, 50, {});
    const method = isReplica ? ('POST' as const) : ('GET' as const);
    const load = { url: `${url}/api/counter`, method, sessions, connections: 50 };
    const profiled = isReplica ? cluster.proxy : target;
    await runLoad({ ...load, durationSec: 2 });
    // The process alone: with `replica` the proxy's workers write profiles of their own.
    const before = cpuTimesMs({ proxy: profiled.pid }, false);
    const sample = await runLoad({ ...load, durationSec: seconds });
    const after = cpuTimesMs({ proxy: profiled.pid }, false);
    const cpuUs = (((after.proxy ?? 0) - (before.proxy ?? 0)) * 1000) / sample.requests;
    const pid = profiled.pid;
    await (isReplica ? cluster.close() : target.stop());
    const file = readdirSync(dir).find(
      (entry) => entry.endsWith('.cpuprofile') && entry.includes(`.${pid}.`),
    );
    if (file === undefined) throw new Error(`no profile written in ${dir}:\n${target.output}`);
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    if (process.env.PROFILE_OUT) copyFileSync(join(dir, file), process.env.PROFILE_OUT);
    const summary = summarizeProfile(profile);
    console.log(
      `${which}: ${Math.round(sample.requestsPerSec)} req/s, proxy CPU ${cpuUs.toFixed(1)} µs/req (/proc, under the profiler), ${sample.errors} errors, ${sample.non2xx} non-2xx; profile ${join(dir, file)}\n`,
    );
    console.log(renderProfile(`${which} ${method}, ${seconds} s`, summary, cpuUs));
  } finally {
    await Promise.all([cluster.close(), target?.stop()]);
  }
}

if (process.argv[1]?.endsWith('profile.js')) {
  await main();
  process.exit(0);
}

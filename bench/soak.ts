/**
 * Soak: N minutes (SOAK_MINUTES, default 10) of session churn through a real stickylb process
 * tree (`stickylb proxy` with its workers, three `stickylb backend` nodes). Clients create
 * sessions, write their counters, check them and abandon them; a set of long-lived sessions is
 * written throughout. Every SOAK_KILL_EVERY_S (default 60) a node is killed with SIGKILL and
 * started again. RSS of every process (/proc/PID/status) and the control plane's heap (admin
 * /metrics) are sampled every few seconds, with where the control plane's RSS goes
 * (bench/soak-memory.ts: V8 heap committed vs off-heap, Buffers, handles by type). At the end
 * every long-lived session's counter is read back: a counter below its last acknowledged
 * value is a lost write.
 *
 * Writes bench/results/soak.{json,md,svg}.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  describeMachine,
  descendantsOf,
  finishMachine,
  machineLine,
  resultsDirOf,
  round,
  sleep,
  writeResults,
} from './common.js';
import { renderLineChart, type ChartSeries } from './soak-chart.js';
import { controlPlaneThirds, sampleControlPlane, type ControlPlaneMemory } from './soak-memory.js';
import { StickyCluster } from './sticky-cluster.js';

export interface SoakOptions {
  minutes?: number;
  /** Concurrent churn clients. */
  clients?: number;
  /** Sessions written from start to end and verified at the end. */
  longLivedSessions?: number;
  killEverySec?: number;
  sampleEverySec?: number;
  /** Abandoned sessions expire after this (so the steady state is reached within the run). */
  idleTimeout?: string;
  resultsDir?: string | false;
}

/** What the client knows of one session: its last acknowledged counter and writes of unknown outcome since. */
interface Tracked {
  id: string | undefined;
  lastAck: number;
  uncertain: number;
}

interface Sample {
  atSec: number;
  /** Process name → { pid, rssKiB }. */
  processes: Record<string, { pid: number; rssKiB: number }>;
  controlPlaneHeapUsedBytes: number | null;
  sessions: number | null;
  /** Where the control plane's RSS goes (bench/soak-memory.ts). */
  controlPlane?: ControlPlaneMemory;
}

const numberFromEnv = (name: string): number | undefined => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : undefined;
};

function rssKiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

export async function runSoakBench(options: SoakOptions = {}): Promise<unknown> {
  const minutes = options.minutes ?? numberFromEnv('SOAK_MINUTES') ?? 10;
  const clients = options.clients ?? 12;
  const longLived = options.longLivedSessions ?? 100;
  const killEverySec = options.killEverySec ?? numberFromEnv('SOAK_KILL_EVERY_S') ?? 60;
  const sampleEverySec = options.sampleEverySec ?? 3;
  const idleTimeout = options.idleTimeout ?? '60s';
  const machine = describeMachine();
  const cluster = await StickyCluster.start({ label: 'soak', idleTimeout });
  const startedAt = Date.now();
  const endsAt = startedAt + minutes * 60_000;
  const elapsedSec = (): number => (Date.now() - startedAt) / 1000;
  const statuses: Record<string, number> = {};
  const anomalies: string[] = [];
  let lostWrites = 0;
  let sessionsCreated = 0;
  let sessionsVerified = 0;

  const count = (key: string): void => {
    statuses[key] = (statuses[key] ?? 0) + 1;
  };
  /** One counter request; updates `tracked` from the answer. */
  const counterRequest = async (tracked: Tracked, method: 'POST' | 'GET'): Promise<void> => {
    const headers: Record<string, string> = tracked.id ? { cookie: `SESSIONID=${tracked.id}` } : {};
    try {
      const response = await fetch(`${cluster.proxyUrl}/api/counter`, {
        method,
        headers,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await response.text();
      count(String(response.status));
      if (response.status !== 200) {
        if (method === 'POST') tracked.uncertain++;
        return;
      }
      const cookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
      if (cookie !== undefined) {
        const id = cookie.slice('SESSIONID='.length, cookie.indexOf(';'));
        if (tracked.id === undefined) sessionsCreated++;
        tracked.id = id;
      }
      const seen = (JSON.parse(text) as { count: number }).count;
      const floor = method === 'POST' ? tracked.lastAck + 1 : tracked.lastAck;
      if (seen < floor) {
        lostWrites++;
        anomalies.push(
          `${elapsedSec().toFixed(0)} s: ${method} saw ${seen}, last acknowledged ${tracked.lastAck}`,
        );
      } else if (seen > floor + tracked.uncertain) {
        anomalies.push(
          `${elapsedSec().toFixed(0)} s: ${method} saw ${seen}, expected ≤ ${floor + tracked.uncertain}`,
        );
      }
      if (method === 'POST' || seen > tracked.lastAck) {
        tracked.lastAck = seen;
        tracked.uncertain = 0;
      }
    } catch {
      count('network error');
      if (method === 'POST') tracked.uncertain++;
    }
  };

  // Long-lived sessions: created now, written in turn until the end (well within idleTimeout).
  const longLivedSessions: Tracked[] = Array.from({ length: longLived }, () => ({
    id: undefined,
    lastAck: 0,
    uncertain: 0,
  }));
  for (const tracked of longLivedSessions) await counterRequest(tracked, 'POST');
  const longLivedLoop = (async () => {
    for (let turn = 0; Date.now() < endsAt; turn++) {
      await counterRequest(longLivedSessions[turn % longLived] as Tracked, 'POST');
      await sleep(50);
    }
  })();

  // Churn: each client creates a session, writes it 3-30 times, reads it back, abandons it.
  const churn = Array.from({ length: clients }, async () => {
    while (Date.now() < endsAt) {
      const tracked: Tracked = { id: undefined, lastAck: 0, uncertain: 0 };
      const writes = 3 + Math.floor(Math.random() * 28);
      for (let i = 0; i < writes && Date.now() < endsAt; i++) {
        await counterRequest(tracked, 'POST');
        await sleep(40);
      }
      if (tracked.id !== undefined) {
        await counterRequest(tracked, 'GET');
        sessionsVerified++;
      }
    }
  });

  // Kill -9 one node every killEverySec, in turn, and bring it back a few seconds later.
  const kills: Array<{ atSec: number; node: string; backAfterSec: number }> = [];
  const killLoop = (async () => {
    for (let victim = 0; ; victim = (victim + 1) % cluster.nodes.length) {
      const next = startedAt + (kills.length + 1) * killEverySec * 1000;
      if (next + 10_000 > endsAt) break;
      await sleep(next - Date.now());
      const node = cluster.nodes[victim];
      if (node === undefined) break;
      const atSec = elapsedSec();
      node.killNow('SIGKILL');
      await node.exited;
      await sleep(3000);
      await cluster.restartNode(victim, 'soak');
      kills.push({
        atSec: round(atSec, 1),
        node: cluster.nodeIds[victim] as string,
        backAfterSec: round(elapsedSec() - atSec, 1),
      });
    }
  })();

  // Sampling: RSS of the control plane, each worker and each node; heap of the control plane.
  const samples: Sample[] = [];
  const sampleLoop = (async () => {
    while (Date.now() < endsAt) {
      const processes: Sample['processes'] = {};
      const add = (name: string, pid: number): void => {
        const rss = rssKiB(pid);
        if (rss !== undefined) processes[name] = { pid, rssKiB: rss };
      };
      add('proxy (control plane)', cluster.proxy.pid);
      descendantsOf(cluster.proxy.pid)
        .sort((a, b) => a - b)
        .forEach((pid, index) => add(`proxy worker ${index + 1}`, pid));
      cluster.nodes.forEach((node, index) => add(cluster.nodeIds[index] as string, node.pid));
      const controlPlane = await sampleControlPlane(cluster.proxy.pid, cluster.adminUrl);
      let sessions: number | null = null;
      try {
        sessions = (await cluster.state()).sessions.total;
      } catch {
        // the admin listener was busy: a gap in the sessions series
      }
      samples.push({
        atSec: round(elapsedSec(), 1),
        processes,
        controlPlaneHeapUsedBytes: controlPlane.heapUsedBytes,
        sessions,
        controlPlane,
      });
      await sleep(sampleEverySec * 1000);
    }
  })();

  await Promise.all([longLivedLoop, ...churn, killLoop, sampleLoop]);

  // Every long-lived session read back once the run is over.
  for (const tracked of longLivedSessions) await counterRequest(tracked, 'GET');
  const state = await cluster.state();
  await cluster.close();
  finishMachine(machine);

  const durationSec = elapsedSec();
  const names = [...new Set(samples.flatMap((sample) => Object.keys(sample.processes)))];
  const flatness = names.map((name) => {
    const series = samples.filter((sample) => sample.processes[name] !== undefined);
    const third = durationSec / 3;
    const mean = (from: number, to: number): number => {
      const values = series
        .filter((sample) => sample.atSec >= from && sample.atSec < to)
        .map((sample) => (sample.processes[name] as { rssKiB: number }).rssKiB);
      return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length / 1024;
    };
    const first = mean(0, third);
    const middle = mean(third, 2 * third);
    const last = mean(2 * third, Infinity);
    const pids = new Set(series.map((sample) => (sample.processes[name] as { pid: number }).pid));
    return {
      process: name,
      restarts: pids.size - 1,
      firstThirdMeanMiB: round(first, 1),
      middleThirdMeanMiB: round(middle, 1),
      lastThirdMeanMiB: round(last, 1),
      lastOverFirst: round(last / first, 3),
      lastOverMiddle: round(last / middle, 3),
      maxMiB: round(
        Math.max(...series.map((sample) => (sample.processes[name] as { rssKiB: number }).rssKiB)) / 1024,
        1,
      ),
    };
  });
  const neverRestarted = flatness.filter((row) => row.restarts === 0);
  const controlPlaneMemory = controlPlaneThirds(samples, durationSec);
  const growthOf = (series: string): number => {
    const row = controlPlaneMemory.find((candidate) => candidate.series.startsWith(series));
    return row === undefined ? Number.NaN : round(row.last / row.middle, 3);
  };
  const controlPlaneGrowth = { offHeap: growthOf('off-heap'), heapUsedFloor: growthOf('V8 heap used') };
  // Flat: no process that ran the whole time holds >15 % more RSS in the last third than in the
  // middle one, and neither does the control plane's off-heap memory nor its live heap. Not the
  // first third: it holds start-up (V8 commits ~60 MiB of heap then gives half back at its first
  // big GCs) and the session tables filling up to their steady state, so it measured warm-up, in
  // either direction (1.23 and 0.94 in two runs of the same code). RSS alone moves in steps of
  // V8's committed heap (heapTotal), which is why the two parts without that slack are checked too.
  const isFlat =
    neverRestarted.every((row) => row.lastOverMiddle <= 1.15) &&
    !(controlPlaneGrowth.offHeap > 1.15) &&
    !(controlPlaneGrowth.heapUsedFloor > 1.15);
  const heaps = samples
    .map((sample) => sample.controlPlaneHeapUsedBytes)
    .filter((v): v is number => v !== null);
  const requests = Object.values(statuses).reduce((a, b) => a + b, 0);
  const result = {
    machine,
    settings: { minutes, clients, longLivedSessions: longLived, killEverySec, sampleEverySec, idleTimeout },
    durationSec: round(durationSec, 1),
    requests,
    requestsPerSecond: round(requests / durationSec, 1),
    statuses,
    sessionsCreated,
    churnSessionsVerified: sessionsVerified,
    longLivedVerified: longLivedSessions.filter((tracked) => tracked.id !== undefined).length,
    lostWrites,
    anomalies: anomalies.slice(0, 50),
    kills,
    finalState: { sessions: state.sessions.total, nodes: state.nodes },
    controlPlaneHeapUsedMiB: {
      first: round((heaps[0] ?? Number.NaN) / 2 ** 20, 1),
      max: round(Math.max(...heaps) / 2 ** 20, 1),
      last: round((heaps.at(-1) ?? Number.NaN) / 2 ** 20, 1),
    },
    flatness,
    controlPlaneMemory,
    controlPlaneGrowth,
    isFlat,
    samples,
  };

  const resultsDir = resultsDirOf(options.resultsDir);
  const statusLine = Object.entries(statuses)
    .map(([status, n]) => `${status}: ${n}`)
    .join(', ');
  const markdown = [
    '# Soak',
    '',
    machineLine(machine),
    '',
    `${round(durationSec / 60, 1)} min through \`stickylb proxy\` (workers: default) and 3 \`stickylb backend\` nodes, sync replication, session idleTimeout ${idleTimeout}. ${clients} churn clients (create a session, 3-30 counter writes, read back, abandon) and ${longLived} long-lived sessions written in turn. A node killed with SIGKILL every ${killEverySec} s and restarted 3 s later (${kills.length} kills).`,
    '',
    `- Requests: ${requests} (${result.requestsPerSecond}/s); ${statusLine}.`,
    `- Sessions created: ${sessionsCreated}; churn sessions read back before abandoning: ${sessionsVerified}; long-lived sessions read back at the end: ${result.longLivedVerified}.`,
    `- Lost acknowledged writes: **${lostWrites}**; other anomalies: ${anomalies.length - lostWrites}.`,
    `- Control-plane heap used: ${result.controlPlaneHeapUsedMiB.first} MiB first sample, ${result.controlPlaneHeapUsedMiB.max} MiB max, ${result.controlPlaneHeapUsedMiB.last} MiB last.`,
    `- RSS flat (every process that ran the whole time within +15 % from the middle to the last third, and the control plane's off-heap memory and live heap too; the first third is warm-up): **${isFlat ? 'yes' : 'no'}**.`,
    '',
    '| process | restarts | RSS first third (MiB) | RSS middle third (MiB) | RSS last third (MiB) | last / first | last / middle | max (MiB) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...flatness.map(
      (row) =>
        `| ${row.process} | ${row.restarts} | ${row.firstThirdMeanMiB} | ${row.middleThirdMeanMiB} | ${row.lastThirdMeanMiB} | ${row.lastOverFirst} | ${row.lastOverMiddle} | ${row.maxMiB} |`,
    ),
    '',
    "Where the control plane's RSS goes (bench/soak-memory.ts): off-heap = anonymous RSS − V8 heap committed, what sockets, parsers, Buffers and malloc hold.",
    '',
    '| control plane | first third | middle third | last third |',
    '|---|---:|---:|---:|',
    ...controlPlaneMemory.map((row) => `| ${row.series} | ${row.first} | ${row.middle} | ${row.last} |`),
    '',
    'Nodes are restarted by the run, so their thirds compare different processes. ![RSS over time](soak.svg)',
    '',
  ].join('\n');
  writeResults(resultsDir, 'soak', result, markdown);
  if (resultsDir !== false) {
    const series: ChartSeries[] = names.map((name) => ({
      name,
      points: samples
        .filter((sample) => sample.processes[name] !== undefined)
        .map((sample) => ({
          minute: sample.atSec / 60,
          value: (sample.processes[name] as { rssKiB: number }).rssKiB / 1024,
          pid: (sample.processes[name] as { pid: number }).pid,
        })),
    }));
    writeFileSync(
      join(resultsDir, 'soak.svg'),
      renderLineChart(series, 'stickylb soak: RSS per process', 'RSS (MiB)'),
    );
  }
  console.log(markdown);
  return result;
}

/**
 * Write latency for bench/failover: sync replication ÷ async, two clusters side by side,
 * interleaved rounds of autocannon POSTs.
 */
import { compareLoad, cpuTimesMs, loadSummary, median, round, sleep, type LoadSample } from './common.js';
import { createSessions } from './failover-kill.js';
import type { FailoverSettings } from './failover.js';
import { runLoad } from './load.js';
import { StickyCluster } from './sticky-cluster.js';

export interface LatencySample extends LoadSample {
  mode: 'sync' | 'async';
  connections: number;
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

/** Interleaved sync/async rounds at each connection count; medians and per-round ratios. */
export async function measureWriteLatency(
  settings: FailoverSettings,
): Promise<{ rounds: LatencySample[]; results: WriteLatencyResult[] }> {
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
      ...loadSummary(of(mode)),
      proxyCpuUsPerRequest: round(median(of(mode).map((s) => s.proxyCpuUsPerRequest)), 1),
      nodesCpuUsPerRequest: round(median(of(mode).map((s) => s.nodesCpuUsPerRequest)), 1),
    });
    return {
      connections,
      sync: summary('sync'),
      async: summary('async'),
      ...compareLoad(of('sync'), of('async')),
    };
  });
  return { rounds: samples, results };
}

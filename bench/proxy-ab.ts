/**
 * bench/proxy-ab: this build's proxy against another build's, side by side in front of the
 * same nodes: two `proxy.workers: 1` stickylb processes (the routing-only proxy bench/proxy
 * measures), interleaved rounds (order alternated), GET and POST /api/counter with 50
 * connections each its own session. Per round: req/s and the proxy process's CPU per
 * response; printed as medians and medians of per-round ratios (this ÷ other).
 *
 *   npm run build && BENCH_BASE_CLI=/path/to/old/dist/src/cli.js node dist/bench/proxy-ab.js [rounds] [seconds]
 *
 * BENCH_BODY_BYTES=N adds a third workload: POST with an N-byte JSON body (streamed to the node).
 * The bare http-proxy floor (bench/bare-proxy) runs in the same rounds, for the ratio to it.
 *
 * Not a results file: a quick A/B for a change under way, on whatever load the box has.
 */
import os from 'node:os';
import { join } from 'node:path';
import { BenchProcess, cpuTimesMs, findRepoRoot, freePort, median, waitForHttp } from './common.js';
import { runLoad } from './load.js';
import { createSessions } from './proxy.js';
import { StickyCluster } from './sticky-cluster.js';

interface Sample {
  round: number;
  requestsPerSec: number;
  cpuUsPerRequest: number;
  errors: number;
}

const baseCli = process.env.BENCH_BASE_CLI;
if (baseCli === undefined || baseCli === '')
  throw new Error('set BENCH_BASE_CLI to the other build’s dist/src/cli.js');
const rounds = Number(process.argv[2] ?? 6);
const seconds = Number(process.argv[3] ?? 4);
const load = (): string =>
  os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(' / ');

const cluster = await StickyCluster.start({ label: 'ab' });
try {
  const barePort = await freePort();
  const bare = new BenchProcess('bare http-proxy', process.execPath, [
    join(findRepoRoot(), 'dist', 'bench', 'bare-proxy.js'),
    String(barePort),
    ...cluster.nodeUrls,
  ]);
  await waitForHttp('bare http-proxy', `http://127.0.0.1:${barePort}/health`, bare);
  const candidates = {
    new: await cluster.startExtraProxy('new', { workers: 1 }),
    old: await cluster.startExtraProxy('old', { workers: 1 }, [], baseCli),
    bare: { process: bare, url: `http://127.0.0.1:${barePort}` },
  };
  const tally = {};
  const targets = await Promise.all(
    (['new', 'old', 'bare'] as const).map(async (name) => ({
      name,
      pid: candidates[name].process.child.pid as number,
      url: candidates[name].url,
      sessions: await createSessions(
        { name: name === 'bare' ? 'bare' : 'stickylb1', url: candidates[name].url, process: undefined },
        50,
        tally,
      ),
    })),
  );
  console.log(`load average at start ${load()}; ${rounds} rounds × ${seconds} s, 1 s warm-up per target`);
  const bodyBytes = Number(process.env.BENCH_BODY_BYTES ?? 0);
  const body = bodyBytes > 0 ? JSON.stringify({ pad: 'x'.repeat(Math.max(0, bodyBytes - 10)) }) : undefined;
  const workloads = [
    { label: 'GET', method: 'GET' as const, body: undefined },
    { label: 'POST', method: 'POST' as const, body: undefined },
    ...(body !== undefined ? [{ label: `POST ${body.length} B body`, method: 'POST' as const, body }] : []),
  ];
  for (const { label, method, body: requestBody } of workloads) {
    const samples: Record<string, Sample[]> = { new: [], old: [], bare: [] };
    for (const target of targets) {
      await runLoad({
        url: `${target.url}/api/counter`,
        method,
        body: requestBody,
        sessions: target.sessions,
        connections: 50,
        durationSec: 1,
      });
    }
    for (let round = 0; round < rounds; round++) {
      const order = [...targets.slice(round % 3), ...targets.slice(0, round % 3)];
      for (const target of order) {
        const before = cpuTimesMs({ proxy: target.pid }).proxy as number;
        const sample = await runLoad({
          url: `${target.url}/api/counter`,
          method,
          body: requestBody,
          sessions: target.sessions,
          connections: 50,
          durationSec: seconds,
        });
        const cpuMs = (cpuTimesMs({ proxy: target.pid }).proxy as number) - before;
        samples[target.name]?.push({
          round,
          requestsPerSec: sample.requestsPerSec,
          cpuUsPerRequest: (cpuMs * 1000) / Math.max(1, sample.requests),
          errors: sample.errors + sample.non2xx,
        });
      }
    }
    const ratio = (key: 'requestsPerSec' | 'cpuUsPerRequest', a: string, b: string): string =>
      median(
        samples[a]?.map((sample, index) => sample[key] / (samples[b]?.[index]?.[key] ?? NaN)) ?? [],
      ).toFixed(2);
    for (const name of ['new', 'old', 'bare']) {
      const list = samples[name] ?? [];
      console.log(
        `${label} ${name}: ${median(list.map((s) => s.requestsPerSec)).toFixed(0)} req/s, ` +
          `${median(list.map((s) => s.cpuUsPerRequest)).toFixed(1)} µs/req CPU, errors ${list.reduce((n, s) => n + s.errors, 0)} ` +
          `(rounds: ${list.map((s) => s.cpuUsPerRequest.toFixed(0)).join(' ')})`,
      );
    }
    for (const [a, b] of [
      ['new', 'old'],
      ['new', 'bare'],
      ['old', 'bare'],
    ]) {
      console.log(
        `${label} ${a} ÷ ${b}: req/s ${ratio('requestsPerSec', a as string, b as string)}×, ` +
          `CPU/req ${ratio('cpuUsPerRequest', a as string, b as string)}×`,
      );
    }
    console.log(`(load now ${load()})`);
  }
  await Promise.all([candidates.new.process.stop(), candidates.old.process.stop(), bare.stop()]);
} finally {
  await cluster.close();
}

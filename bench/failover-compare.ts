/**
 * Failover kills of several builds side by side: each round runs one fresh cluster and one
 * `kill -9` per build (the same node index for all, the order reversed every other round), so
 * a shared, noisy box weighs on every build alike. Prints each kill, the medians per build
 * and the median of the per-round ratios against the first build. Writes nothing.
 *
 *   npm run build && node dist/bench/failover-compare.js ROUNDS LABEL=TREE[,ENV=VALUE…] …
 *   e.g. node dist/bench/failover-compare.js 6 base=/tmp/base new=. new-none=.,NODE_CLUSTER_SCHED_POLICY=none
 *
 * TREE is a checkout built with `npm run build` (its dist/bench/failover-kill.js and
 * dist/src/cli.js run); ENV=VALUE pairs are set for that build's processes only.
 * AB_SESSIONS sets the sessions per kill (default 300), AB_THINK_MS the pause after each
 * answer (default 200; raise it with the sessions to keep the offered rate the box can serve).
 */
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median, round } from './common.js';
import type { FailoverSettings } from './failover.js';
import type { FailoverRun } from './failover-kill.js';

interface Build {
  label: string;
  env: Record<string, string>;
  runOnce: (settings: FailoverSettings, repeat: number) => Promise<FailoverRun>;
  kills: Array<FailoverRun & { load: number }>;
}

async function loadBuild(arg: string): Promise<Build> {
  const eq = arg.indexOf('=');
  const label = eq < 0 ? arg : arg.slice(0, eq);
  const [tree = '.', ...pairs] = (eq < 0 ? arg : arg.slice(eq + 1)).split(',');
  const env = Object.fromEntries(
    pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
  const module = (await import(pathToFileURL(resolve(tree, 'dist/bench/failover-kill.js')).href)) as {
    runFailoverOnce: Build['runOnce'];
  };
  return { label, env, runOnce: module.runFailoverOnce, kills: [] };
}

async function withEnv<T>(env: Record<string, string>, run: () => Promise<T>): Promise<T> {
  const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, env);
  try {
    return await run();
  } finally {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

async function main(): Promise<void> {
  const [roundsArg, ...buildArgs] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  if (!Number.isInteger(rounds) || rounds < 1 || buildArgs.length === 0) {
    console.error('usage: failover-compare.js ROUNDS LABEL=TREE[,ENV=VALUE…] …');
    process.exit(2);
  }
  const builds: Build[] = [];
  for (const arg of buildArgs) builds.push(await loadBuild(arg));
  const settings: FailoverSettings = {
    sessions: Number(process.env.AB_SESSIONS ?? 300),
    repeats: 1,
    thinkMs: Number(process.env.AB_THINK_MS ?? 200),
    postEvery: 4,
    beforeKillMs: 2500,
    afterKillMs: 2000,
    latencyRounds: 0,
    latencyDurationSec: 0,
    latencyConnections: [],
  };
  for (let r = 0; r < rounds; r++) {
    for (const build of r % 2 === 0 ? builds : [...builds].reverse()) {
      const load = loadavg()[0] as number;
      const kill = await withEnv(build.env, () => build.runOnce(settings, r));
      build.kills.push({ ...kill, load });
      console.log(
        `${build.label} round ${r + 1}: load ${load.toFixed(2)}, killed ${kill.killedNode} (${kill.victims} sessions): wait p50 / p99 ${kill.waitMs.p50} / ${kill.waitMs.p99} ms, before the kill ${kill.latencyBeforeKillMs.p50} / ${kill.latencyBeforeKillMs.p99} ms, down after ${kill.detectedDownAfterMs} ms, move ${kill.proactiveMove?.durationMs} ms, ${kill.failedAfterKill} failed${kill.failedAfterKill > 0 ? ` ${JSON.stringify(kill.failures)}` : ''}, ${kill.lostState} lost state, ${kill.unrecovered} unrecovered`,
      );
    }
  }
  const mid = (build: Build, pick: (kill: FailoverRun & { load: number }) => number): number =>
    round(median(build.kills.map(pick)));
  console.log(
    '\n| build | kills | wait p50 / p99 ms | before the kill p50 / p99 ms | failed | lost state | unrecovered | load (1 min) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const build of builds) {
    const sum = (pick: (kill: FailoverRun) => number): number => build.kills.reduce((s, k) => s + pick(k), 0);
    console.log(
      `| ${build.label} | ${build.kills.length} | ${mid(build, (k) => k.waitMs.p50)} / ${mid(build, (k) => k.waitMs.p99)} | ${mid(build, (k) => k.latencyBeforeKillMs.p50)} / ${mid(build, (k) => k.latencyBeforeKillMs.p99)} | ${sum((k) => k.failedAfterKill)} | ${sum((k) => k.lostState)} | ${sum((k) => k.unrecovered)} | ${mid(build, (k) => k.load)} |`,
    );
  }
  const [base, ...others] = builds as [Build, ...Build[]];
  for (const build of others) {
    const ratio = (pick: (kill: FailoverRun) => number): number =>
      round(median(build.kills.map((kill, i) => pick(kill) / pick(base.kills[i] as FailoverRun))));
    console.log(
      `${build.label} ÷ ${base.label}, median of per-round ratios: wait p50 ${ratio((k) => k.waitMs.p50)}×, p99 ${ratio((k) => k.waitMs.p99)}×; before the kill p50 ${ratio((k) => k.latencyBeforeKillMs.p50)}×, p99 ${ratio((k) => k.latencyBeforeKillMs.p99)}×`,
    );
  }
}

await main();

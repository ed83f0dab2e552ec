/**
 * What the process benches share: machine facts, statistics, ports, child processes that
 * are always stopped, and CPU time read from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { freePort } from '../test/helpers/free-port.js';

/** The repository root (where package.json is), from dist/bench or bench. */
export function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

/** The compiled CLI, as the integration tests and users run it. */
export const CLI = join(findRepoRoot(), 'dist', 'src', 'cli.js');

/** Where results go: `BENCH_RESULTS_DIR`, else bench/results. */
export function resultsDirOf(option: string | false | undefined): string | false {
  if (option !== undefined) return option;
  return process.env.BENCH_RESULTS_DIR ?? join(findRepoRoot(), 'bench', 'results');
}

export function writeResults(dir: string | false, name: string, result: unknown, markdown: string): void {
  if (dir === false) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, `${name}.md`), markdown);
}

export interface Machine {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  date: string;
  /** 1, 5 and 15 minute load averages when the bench started (2 cores: 2.0 means both busy). */
  loadAverageAtStart: number[];
  /** The same when it ended: other jobs on the box may have come and gone meanwhile. */
  loadAverageAtEnd?: number[];
  haproxy: string | null;
  nginx: string | null;
  /** The code measured: `BENCH_COMMIT`, else git HEAD (+ "with uncommitted changes" when src/ or backends/ differ). */
  commit: string | null;
}

function describeCommit(): string | null {
  if (process.env.BENCH_COMMIT) return process.env.BENCH_COMMIT;
  const cwd = findRepoRoot();
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' });
  if (head.status !== 0) return null;
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'backends'], {
    cwd,
    encoding: 'utf8',
  });
  return `${head.stdout.trim()}${dirty.stdout.trim() === '' ? '' : ' with uncommitted changes in src/ or backends/'}`;
}

/** First line of `haproxy -v` / `nginx -v`, or null when the binary is absent. */
export function versionOf(binary: 'haproxy' | 'nginx'): string | null {
  const result = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  if (result.error !== undefined || result.status !== 0) return null;
  // nginx prints its version on stderr.
  const line = `${result.stdout}${result.stderr}`.split('\n').find((text) => text.trim() !== '');
  return line?.trim() ?? null;
}

export function describeMachine(): Machine {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    date: new Date().toISOString(),
    loadAverageAtStart: os.loadavg().map((load) => round(load)),
    haproxy: versionOf('haproxy'),
    nginx: versionOf('nginx'),
    commit: describeCommit(),
  };
}

/** Records the load average at the end of a bench. */
export function finishMachine(machine: Machine): void {
  machine.loadAverageAtEnd = os.loadavg().map((load) => round(load));
}

export function machineLine(machine: Machine): string {
  const end = machine.loadAverageAtEnd ? `, at end ${machine.loadAverageAtEnd.join(' / ')}` : '';
  return `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}, ${machine.date}; load average at start ${machine.loadAverageAtStart.join(' / ')}${end} (1/5/15 min). Code: ${machine.commit ?? 'unknown'}.`;
}

export const round = (value: number, digits = 2): number =>
  Number.isFinite(value) ? Number(value.toFixed(digits)) : value;

export function median(values: number[]): number {
  const sorted = values.filter((value) => !Number.isNaN(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * Median over rounds of `pick(a) / pick(b)`, each sample of `a` paired with the sample of `b`
 * from the same round (a side-by-side ratio, robust to load that shifts whole rounds).
 */
export function medianRoundRatio<T extends { round: number }>(
  a: readonly T[],
  b: readonly T[],
  pick: (sample: T) => number,
): number {
  return median(
    a.flatMap((sample) => {
      const other = b.find((candidate) => candidate.round === sample.round);
      return other === undefined || pick(other) === 0 ? [] : [pick(sample) / pick(other)];
    }),
  );
}

/** What a load round of autocannon reports, as bench/redis and bench/write-latency keep it. */
export interface LoadSample {
  round: number;
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  non2xx: number;
}

/** Medians of one side's rounds. */
export function loadSummary(samples: readonly LoadSample[]): {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
} {
  return {
    requestsPerSec: Math.round(median(samples.map((s) => s.requestsPerSec))),
    p50Ms: round(median(samples.map((s) => s.p50Ms)), 3),
    p99Ms: round(median(samples.map((s) => s.p99Ms)), 3),
  };
}

/** Side `a` against side `b`: median per-round ratios, and the errors of both sides. */
export function compareLoad(
  a: readonly LoadSample[],
  b: readonly LoadSample[],
): { requestsPerSecRatio: number; p50Ratio: number; p99Ratio: number; errors: number; non2xx: number } {
  const ratio = (pick: (s: LoadSample) => number): number => round(medianRoundRatio(a, b, pick));
  const all = [...a, ...b];
  return {
    requestsPerSecRatio: ratio((s) => s.requestsPerSec),
    p50Ratio: ratio((s) => s.p50Ms),
    p99Ratio: ratio((s) => s.p99Ms),
    errors: all.reduce((sum, s) => sum + s.errors, 0),
    non2xx: all.reduce((sum, s) => sum + s.non2xx, 0),
  };
}

/** Nearest-rank percentile of unsorted values. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function waitFor(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
  /** Gives up at once when this process has exited (it will never answer). */
  child?: BenchProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child !== undefined && !child.isRunning) throw new Error(`${what}: ${child.name} exited`);
    try {
      if (await probe()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Resolves once `url` answers at all (any status). */
export function waitForHttp(what: string, url: string, child?: BenchProcess): Promise<void> {
  return waitFor(
    what,
    async () => {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      return true;
    },
    15_000,
    child,
  );
}

const running = new Set<BenchProcess>();
const tempDirs: string[] = [];
let isExitHookInstalled = false;

/** A fresh temp dir (configs, pid and log files), removed when the bench exits. */
export function makeTempDir(prefix: string): string {
  installExitHook();
  const dir = mkdtempSync(join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** Whatever happens to the bench (error, Ctrl-C), no child it started outlives it. */
function installExitHook(): void {
  if (isExitHookInstalled) return;
  isExitHookInstalled = true;
  process.on('exit', () => {
    for (const child of running) child.killNow();
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      for (const child of running) child.killNow();
      process.exit(130);
    });
  }
}

/** A child process of the bench: output kept for diagnostics, always stopped. */
export class BenchProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  #output = '';

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
  ) {
    installExitHook();
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...process.env, STICKYLB_LOG: 'json', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (chunk: Buffer): void => {
      this.#output = (this.#output + chunk.toString()).slice(-8192);
    };
    this.child.stdout?.on('data', keep);
    this.child.stderr?.on('data', keep);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.once('error', (error) => {
      this.#output += `\nspawn failed: ${error.message}`;
    });
    running.add(this);
    void this.exited.then(() => running.delete(this));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get isRunning(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last 8 KiB the process wrote. */
  get output(): string {
    return this.#output;
  }

  killNow(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.isRunning) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.isRunning) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

const TICKS_PER_SECOND = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** utime + stime (ms) of each process, with its parent: one pass over /proc. */
function readProcessTable(): Map<number, { ppid: number; cpuMs: number }> {
  const table = new Map<number, { ppid: number; cpuMs: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields start after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Field 4 is ppid, 14 utime, 15 stime (proc(5)); fields[0] is field 3.
      const ticks = Number(fields[11]) + Number(fields[12]);
      table.set(Number(entry), { ppid: Number(fields[1]), cpuMs: (ticks * 1000) / TICKS_PER_SECOND });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

function childrenByParent(table: Map<number, { ppid: number }>): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const [pid, { ppid }] of table) {
    const list = children.get(ppid);
    if (list === undefined) children.set(ppid, [pid]);
    else list.push(pid);
  }
  return children;
}

/** Live descendants of a process (e.g. the proxy's data-plane workers). */
export function descendantsOf(root: number): number[] {
  const children = childrenByParent(readProcessTable());
  const found: number[] = [];
  const stack = [...(children.get(root) ?? [])];
  while (stack.length > 0) {
    const pid = stack.pop() as number;
    found.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return found;
}

/**
 * CPU time (ms, user + system, all threads) of each process and its live descendants
 * (nginx's workers are children of its master). Clock-tick resolution: 10 ms.
 */
export function cpuTimesMs(pids: Record<string, number>, withChildren = true): Record<string, number> {
  const table = readProcessTable();
  const children = childrenByParent(table);
  const result: Record<string, number> = {};
  for (const [name, root] of Object.entries(pids)) {
    let total = 0;
    const stack = [root];
    while (stack.length > 0) {
      const pid = stack.pop() as number;
      total += table.get(pid)?.cpuMs ?? 0;
      if (withChildren) stack.push(...(children.get(pid) ?? []));
    }
    result[name] = total;
  }
  return result;
}

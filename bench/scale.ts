/**
 * Scale figures (issue 6): how the control plane's memory and CPU grow with the sessions it
 * holds (affinity table + memory replica store, 10k / 100k / 1M sessions), and how the proxy's
 * memory grows with idle keep-alive client connections (1k / 10k, on loopback).
 *
 * Run: `npm run build && node --expose-gc dist/bench/scale.js` (or `node dist/bench/run.js scale`).
 */
import { randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { AffinityTable } from '../src/affinity/index.js';
import { createBalancingPolicy } from '../src/balancing/index.js';
import { FailoverManager, SessionInstaller, type MoveReport } from '../src/failover/index.js';
import { createSilentLogger } from '../src/log.js';
import { NodeRegistry, type ProxyNode } from '../src/nodes/index.js';
import { MemoryReplicaStore } from '../src/replication/index.js';
import { loadSecret } from '../src/secret-file.js';
import { findGc } from './store.js';
import {
  BenchProcess,
  CLI,
  describeMachine,
  finishMachine,
  freePort,
  machineLine,
  makeTempDir,
  median,
  resultsDirOf,
  round,
  sleep,
  waitForHttp,
  writeResults,
} from './common.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const gc = findGc();

function heapUsed(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

interface SessionRow {
  sessions: number;
  bytesPerSession: number;
  recordMicros: number;
  replicaWriteMicros: number;
  emptySweepMs: number;
}

/** Control-plane state for `count` sessions: one affinity entry and one replica each. */
async function measureSessions(count: number): Promise<SessionRow> {
  const agent = new Agent();
  const registry = new NodeRegistry(
    ['node-1', 'node-2', 'node-3'].map((id, i) => ({ id, url: `http://127.0.0.1:${9001 + i}`, weight: 1 })),
    { routeOf: (id) => id, agent },
  );
  const before = heapUsed();
  const affinity = new AffinityTable({
    registry,
    idleTimeoutMs: 30 * 60_000,
    maxSessions: 2_000_000,
    sweepIntervalMs: 1000,
    activeWindowMs: 60_000,
  });
  const replicas = new MemoryReplicaStore({ idleTimeoutMs: 30 * 60_000, maxSessions: 2_000_000 });
  const keys = Array.from({ length: count }, () => randomBytes(16).toString('base64url'));
  const data = () => ({ values: { count: 1 }, children: {} });

  let started = process.cpuUsage();
  for (let i = 0; i < count; i++) affinity.record(keys[i] as string, `node-${(i % 3) + 1}`, true, 1);
  const recordCpu = process.cpuUsage(started);

  started = process.cpuUsage();
  const now = Date.now();
  for (let i = 0; i < count; i += 1000) {
    const batch = keys
      .slice(i, i + 1000)
      .map((key) => ({ key, version: 1, data: data(), lastAccessAt: now }));
    await replicas.write(`node-${((i / 1000) % 3) + 1}`, batch);
  }
  const writeCpu = process.cpuUsage(started);
  keys.length = 0;
  const after = heapUsed();

  const sweepStart = performance.now();
  await affinity.store.sweep();
  const emptySweepMs = performance.now() - sweepStart;

  const row = {
    sessions: count,
    bytesPerSession: round((after - before) / count, 0),
    recordMicros: round((recordCpu.user + recordCpu.system) / count, 3),
    replicaWriteMicros: round((writeCpu.user + writeCpu.system) / count, 3),
    emptySweepMs: round(emptySweepMs, 3),
  };
  affinity.stop();
  await replicas.close();
  agent.destroy();
  return row;
}

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : 0;
}

interface ConnectionRow {
  connections: number;
  proxyRssMb: number;
  bytesPerConnection: number;
  servedMeanwhile: boolean;
}

/** A proxy (one worker) with `count` idle keep-alive clients that each made one request. */
async function measureConnections(counts: number[]): Promise<ConnectionRow[]> {
  const dir = makeTempDir('stickylb-scale-');
  const [proxyPort, adminPort, replicationPort, nodePort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      `proxy: { listen: { host: 127.0.0.1, port: ${proxyPort} }, workers: 1, maxConnections: 20000, timeouts: { idle: 5m } }`,
      `admin: { listen: { host: 127.0.0.1, port: ${adminPort} } }`,
      `replication: { listen: { host: 127.0.0.1, port: ${replicationPort} }, secretFile: ${join(dir, 'rs')} }`,
      `session: { secretFile: ${join(dir, 's')} }`,
      'log: { level: warn }',
      `nodes: [{ id: node-1, url: "http://127.0.0.1:${nodePort}" }]`,
    ].join('\n'),
  );
  const node = new BenchProcess('node-1', process.execPath, [
    CLI,
    'backend',
    '--id',
    'node-1',
    '--config',
    config,
  ]);
  await waitForHttp('node-1', `http://127.0.0.1:${nodePort}/health`, node);
  const proxy = new BenchProcess('proxy', process.execPath, [CLI, 'proxy', '--config', config]);
  const rows: ConnectionRow[] = [];
  const sockets: Socket[] = [];
  try {
    await waitForHttp('proxy', `http://127.0.0.1:${proxyPort}/health`, proxy);
    await sleep(500);
    const baseline = rssOf(proxy.pid);
    for (const count of counts) {
      while (sockets.length < count) {
        const wave = Math.min(500, count - sockets.length);
        await Promise.all(
          Array.from(
            { length: wave },
            () =>
              new Promise<void>((resolve, reject) => {
                const socket = connect(proxyPort, '127.0.0.1', () =>
                  socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`),
                );
                socket.once('data', () => resolve());
                socket.once('error', reject);
                sockets.push(socket);
              }),
          ),
        );
      }
      await sleep(500);
      const response = await fetch(`http://127.0.0.1:${proxyPort}/health`);
      const rss = rssOf(proxy.pid);
      rows.push({
        connections: count,
        proxyRssMb: round(rss / 1048576, 1),
        bytesPerConnection: round((rss - baseline) / count, 0),
        servedMeanwhile: response.ok,
      });
    }
  } finally {
    for (const socket of sockets) socket.destroy();
    await proxy.stop();
    await node.stop();
  }
  return rows;
}

interface FailoverRow {
  sessions: number;
  onDeadNode: number;
  moved: number;
  failed: number;
  /** From marking the node down to the first session re-pinned on a live node. */
  firstMovedMs: number;
  /** From marking the node down to the last. */
  allMovedMs: number;
  /** The control plane's longest event-loop stall meanwhile (a 1 ms timer's longest gap). */
  longestStallMs: number;
}

/** The longest event-loop stall, from the gaps between the ticks of a 1 ms timer, from now until `stop()`. */
class StallWatch {
  longestMs = 0;
  #last = performance.now();
  readonly #timer = setInterval(() => this.#tick(), 1);

  stop(): void {
    clearInterval(this.#timer);
    // A stall still under way when the move ended counts too.
    this.#tick();
  }

  #tick(): void {
    const now = performance.now();
    this.longestMs = Math.max(this.longestMs, now - this.#last);
    this.#last = now;
  }
}

/** Fresh failovers per size; the table gives the median of each column. */
const FAILOVER_RUNS = 3;

function medianRow(runs: FailoverRow[]): FailoverRow {
  const first = runs[0] as FailoverRow;
  const mid = (pick: (row: FailoverRow) => number): number => median(runs.map(pick));
  return {
    sessions: first.sessions,
    onDeadNode: first.onDeadNode,
    moved: mid((r) => r.moved),
    failed: mid((r) => r.failed),
    firstMovedMs: mid((r) => r.firstMovedMs),
    allMovedMs: mid((r) => r.allMovedMs),
    longestStallMs: mid((r) => r.longestStallMs),
  };
}

/**
 * A proactive failover at scale, in the control plane's own code: `count` sessions over
 * three nodes (affinity table + memory replica store, as `measureSessions`), node-1 marked
 * down, and its third moved, state and all, to node-2 and node-3, two real `stickylb
 * backend` processes (their install route, their session store). What it measures is the
 * control plane: how long the move takes and how long its event loop stalls meanwhile
 * (requests waiting on a move, health events and the admin API need that loop).
 */
async function measureFailover(count: number): Promise<FailoverRow> {
  const dir = makeTempDir('stickylb-scale-failover-');
  const secretFile = join(dir, 'replication-secret');
  const secret = loadSecret({ secretFile });
  const [replicationPort, port2, port3] = await Promise.all([freePort(), freePort(), freePort()]);
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    [
      // No proxy runs: the nodes' replication calls fail (logged), their install route works.
      `replication: { listen: { host: 127.0.0.1, port: ${replicationPort} }, secretFile: ${secretFile} }`,
      `session: { maxSessions: ${count}, secretFile: ${join(dir, 's')} }`,
      'log: { level: error }',
      'nodes:',
      '  - { id: node-1, url: "http://127.0.0.1:1" }',
      `  - { id: node-2, url: "http://127.0.0.1:${port2}" }`,
      `  - { id: node-3, url: "http://127.0.0.1:${port3}" }`,
    ].join('\n'),
  );
  const nodes = ['node-2', 'node-3'].map(
    (id) => new BenchProcess(id, process.execPath, [CLI, 'backend', '--id', id, '--config', config]),
  );
  const agent = new Agent({ keepAlive: true });
  try {
    await Promise.all([
      waitForHttp('node-2', `http://127.0.0.1:${port2}/health`, nodes[0]),
      waitForHttp('node-3', `http://127.0.0.1:${port3}/health`, nodes[1]),
    ]);
    const registry = new NodeRegistry(
      [
        { id: 'node-1', url: 'http://127.0.0.1:1', weight: 1 },
        { id: 'node-2', url: `http://127.0.0.1:${port2}`, weight: 1 },
        { id: 'node-3', url: `http://127.0.0.1:${port3}`, weight: 1 },
      ],
      { routeOf: (id) => id, agent },
    );
    const affinity = new AffinityTable({
      registry,
      idleTimeoutMs: 30 * 60_000,
      maxSessions: 2 * count,
      sweepIntervalMs: 1000,
      activeWindowMs: 60_000,
    });
    const replicas = new MemoryReplicaStore({ idleTimeoutMs: 30 * 60_000, maxSessions: 2 * count });
    const now = Date.now();
    let onDeadNode = 0;
    for (let i = 0; i < count; i += 1000) {
      const owner = `node-${((i / 1000) % 3) + 1}`;
      const batch = Array.from({ length: Math.min(1000, count - i) }, () => ({
        key: randomBytes(16).toString('base64url'),
        version: 1,
        data: { values: { count: 1 }, children: {} },
        lastAccessAt: now,
      }));
      for (const write of batch) affinity.record(write.key, owner, true, 1);
      await replicas.write(owner, batch);
      if (owner === 'node-1') onDeadNode += batch.length;
    }
    const policy = createBalancingPolicy('least-sessions');
    let firstMovedAt = 0;
    const failover = new FailoverManager({
      registry,
      affinity,
      replicas,
      installer: new SessionInstaller({ agent, secret }),
      pickNode: (excluding) => policy.pickNode(registry.candidates.filter((node) => node.id !== excluding)),
      onTargetFailure: (node: ProxyNode, error: Error) => {
        throw new Error(`install on ${node.id} failed: ${error.message}`);
      },
      logger: createSilentLogger(),
      onMoved: () => {
        firstMovedAt ||= performance.now();
      },
    });
    gc();
    const stalls = new StallWatch();
    const started = performance.now();
    let report: MoveReport;
    try {
      registry.setHealthy('node-1', false);
      report = await failover.moveAll('node-1', 'down');
    } finally {
      stalls.stop();
      affinity.stop();
      await replicas.close();
    }
    const allMovedMs = performance.now() - started;
    if (firstMovedAt === 0) throw new Error('no session was re-pinned');
    return {
      sessions: count,
      onDeadNode,
      moved: report.moved,
      failed: report.failed + report.lost,
      firstMovedMs: round(firstMovedAt - started, 1),
      allMovedMs: round(allMovedMs, 0),
      longestStallMs: round(stalls.longestMs, 1),
    };
  } finally {
    agent.destroy();
    await Promise.all(nodes.map((node) => node.stop()));
  }
}

export async function runScaleBench(options: { resultsDir?: string | false } = {}): Promise<unknown> {
  const machine = describeMachine();
  const sessions: SessionRow[] = [];
  for (const count of [10_000, 100_000, 1_000_000]) sessions.push(await measureSessions(count));
  const failovers: FailoverRow[] = [];
  for (const count of [100_000, 1_000_000]) {
    const runs: FailoverRow[] = [];
    for (let run = 0; run < FAILOVER_RUNS; run++) runs.push(await measureFailover(count));
    failovers.push(medianRow(runs));
  }
  const connections = await measureConnections([1000, 10_000]);
  finishMachine(machine);
  const result = { machine, sessions, failovers, connections };
  const markdown = [
    '# Scale figures (bench/scale)',
    '',
    machineLine(machine),
    'Reproduce: `npm run build && node --expose-gc dist/bench/scale.js`.',
    '',
    '## Control-plane state per session (affinity table + memory replica store, small session)',
    '',
    '| sessions | heap bytes / session | record CPU µs | replica write CPU µs (batches of 1000) | sweep with nothing expired |',
    '| --- | --- | --- | --- | --- |',
    ...sessions.map(
      (r) =>
        `| ${r.sessions.toLocaleString('en')} | ${r.bytesPerSession} | ${r.recordMicros} | ${r.replicaWriteMicros} | ${r.emptySweepMs} ms |`,
    ),
    '',
    `## Failover at scale: a node holding a third of the sessions goes down (median of ${FAILOVER_RUNS} runs)`,
    '',
    "The control plane's own failover code (`FailoverManager`, affinity table, memory replica store, least-sessions)",
    "moves the dead node's sessions, state and all, to two real `stickylb backend` processes (install route, session",
    'store). The longest event-loop stall is the longest gap between two ticks of a 1 ms timer in the control plane:',
    'how long a request waiting on a move, a health event or the admin API could have had to wait. It counts GC pauses',
    'and the time the process waited for a core: the two nodes take their share of the 2 cores during the move, so gaps',
    'of 10-20 ms come and go in every run, whatever the code.',
    '',
    '| sessions | on the dead node | moved / failed | first session re-pinned | all moved | longest event-loop stall |',
    '| --- | --- | --- | --- | --- | --- |',
    ...failovers.map(
      (r) =>
        `| ${r.sessions.toLocaleString('en')} | ${r.onDeadNode.toLocaleString('en')} | ${r.moved.toLocaleString('en')} / ${r.failed} | ${r.firstMovedMs} ms | ${r.allMovedMs} ms | ${r.longestStallMs} ms |`,
    ),
    '',
    '## Proxy memory with idle keep-alive client connections (`workers: 1`, loopback)',
    '',
    '| connections | proxy RSS | bytes / connection | a new request served meanwhile |',
    '| --- | --- | --- | --- |',
    ...connections.map(
      (r) =>
        `| ${r.connections.toLocaleString('en')} | ${r.proxyRssMb} MB | ${r.bytesPerConnection} | ${r.servedMeanwhile ? 'yes' : 'NO'} |`,
    ),
    '',
  ].join('\n');
  writeResults(resultsDirOf(options.resultsDir), 'scale', result, markdown);
  console.log(markdown);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runScaleBench().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}

import { fork } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';
import { once } from 'node:events';
import { resolve } from 'node:path';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import type { PrimaryMessage, WorkerMessage } from '../../src/proxy/ipc.js';
import { WorkerPool, type WorkerControl } from '../../src/proxy/worker-pool.js';
import { createProxyCounters } from '../../src/proxy/proxy-counters.js';

/*
 * The pool against real worker processes (the compiled dist/ worker, as in production). The
 * node they would proxy to is never asked: these tests are about the pool's own life cycle.
 */
const config = parseConfig({
  proxy: { workers: 2, listen: { host: '127.0.0.1', port: 0 } },
  log: { level: 'error' },
  nodes: [{ id: 'node-1', url: 'http://127.0.0.1:1' }],
});

const control: WorkerControl = {
  nodeSnapshots: () => [{ id: 'node-1', isHealthy: true, isDraining: false, sessions: 0, incoming: 0 }],
  movedEntries: () => [],
  recordUsed: () => undefined,
  mayReplay: async () => false,
  reportFailure: () => undefined,
  absorbTraffic: () => undefined,
  moveSession: async () => {
    throw new Error('not used');
  },
};

const pools: WorkerPool[] = [];
function createPool(count: number, poolConfig = config): WorkerPool {
  const pool = new WorkerPool({
    count,
    config: poolConfig,
    sessionSecret: 'x'.repeat(32),
    control,
    logger: createSilentLogger(),
  });
  pools.push(pool);
  return pool;
}
afterEach(async () => {
  // A test that failed with fake timers on must not leave them to the next ones.
  vi.useRealTimers();
  await Promise.all(pools.splice(0).map((pool) => pool.close(1000)));
});

/** Fails instead of hanging when `promise` never settles (the bug some tests look for is a hang). */
function settleWithin<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe('WorkerPool', () => {
  it('starts workers that are sent a broadcast before their init', async () => {
    const pool = createPool(2);
    // node:cluster emits its 'message' before the pool's own handler sees the worker's `ready`:
    // a node-state change at that very moment, the window where a broadcast overtakes `init`.
    const onMessage = (_worker: Worker, message: WorkerMessage) => {
      if (message.t !== 'ready') return;
      pool.broadcastNodes();
      pool.queueMoved('key', 'node-1');
      pool.flushMoved();
    };
    cluster.on('message', onMessage);
    try {
      expect(await settleWithin(pool.start(), 15_000)).toBeGreaterThan(0);
    } finally {
      cluster.off('message', onMessage);
    }
  });

  it('kills a worker still starting when close() begins: it never listens', async () => {
    const pool = createPool(1);
    const starting = pool.start();
    const closing = pool.close(1000);
    // Without the stop check, the worker is sent `init` and listens during shutdown. (close()
    // kills it before its `ready`; the check in the `ready` handler, for a `ready` already on
    // its way, is not reached here.)
    await expect(settleWithin(starting, 15_000)).rejects.toThrow(/exited before listening/);
    await closing;
    expect(pool.size).toBe(0);
  });

  it('forgets a dead worker even when a stats message of it is handled after its exit', async () => {
    const pool = createPool(1);
    let first: Worker | undefined;
    const onFork = (worker: Worker) => (first ??= worker);
    cluster.on('fork', onFork);
    try {
      await pool.start();
    } finally {
      cluster.off('fork', onFork);
    }
    if (first === undefined) throw new Error('no fork seen');
    const victim = first;
    const exited = once(victim, 'exit');
    victim.process.kill('SIGKILL');
    await exited;
    // A report read from the channel after 'exit' was emitted (the two race in node:cluster).
    victim.emit('message', {
      t: 'stats',
      counters: { ...createProxyCounters(), rejectedIds: 0 },
      nodes: { 'node-1': [5, 7] },
      traffic: {},
    } satisfies WorkerMessage);
    expect(pool.stats().nodes['node-1']?.[0] ?? 0).toBe(0);
  });
});

/** Resolves on the `n`th worker exit counted from this call. */
function nthExit(n: number): Promise<void> {
  let seen = 0;
  return new Promise((done) => {
    const onExit = () => {
      if (++seen < n) return;
      cluster.off('exit', onExit);
      done();
    };
    cluster.on('exit', onExit);
  });
}

describe('WorkerPool replacing workers that die at start', () => {
  it('waits before each replacement once they keep dying', async () => {
    // The client port is taken: every worker fails to listen and exits at once.
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const { port } = blocker.address() as { port: number };
    const pool = createPool(
      1,
      parseConfig({
        proxy: { workers: 2, listen: { host: '127.0.0.1', port } },
        log: { level: 'error' },
        nodes: [{ id: 'node-1', url: 'http://127.0.0.1:1' }],
      }),
    );
    // Only the pool's timers are faked: the worker processes and their exits are real.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const secondExit = nthExit(2);
      await expect(pool.start()).rejects.toThrow(/exited before listening/);
      // The first death is replaced at once; the replacement dies too.
      await secondExit;
      expect(pool.forks).toBe(2);
      // Two quick deaths in a row: the next fork waits for its backoff timer.
      expect(pool.size).toBe(0);
      const thirdExit = nthExit(1);
      vi.advanceTimersByTime(100);
      expect(pool.forks).toBe(3);
      await thirdExit;
      vi.advanceTimersByTime(100);
      expect(pool.forks).toBe(3);
      vi.advanceTimersByTime(100);
      expect(pool.forks).toBe(4);
    } finally {
      vi.useRealTimers();
      await pool.close(1000);
      await new Promise((done) => blocker.close(done));
    }
  });
});

describe('proxy worker', () => {
  it('starts on an init that arrives after another message', async () => {
    const child = fork(resolve('dist/src/proxy/proxy-worker.js'), [], { stdio: 'ignore' });
    try {
      const messages: WorkerMessage[] = [];
      child.on('message', (message: WorkerMessage) => messages.push(message));
      // Queued before the worker even runs: it reads `nodes` first, then `init`.
      child.send({ t: 'nodes', nodes: [] } satisfies PrimaryMessage);
      child.send({
        t: 'init',
        config,
        sessionSecret: 'x'.repeat(32),
        moved: [],
        nodes: control.nodeSnapshots(),
      } satisfies PrimaryMessage);
      const listening = await settleWithin(
        new Promise<WorkerMessage>((done) =>
          child.on('message', (message: WorkerMessage) => message.t === 'listening' && done(message)),
        ),
        15_000,
      );
      expect(listening).toMatchObject({ t: 'listening' });
      expect(messages[0]).toEqual({ t: 'ready' });
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  });
});

import { once } from 'node:events';
import { Agent, createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { testAffinity } from '../helpers/affinity.js';
import type { AffinityTable } from '../../src/affinity/index.js';
import { createBalancingPolicy } from '../../src/balancing/index.js';
import type { BalancingPolicyName } from '../../src/config/index.js';
import { EVICT_PATH, FailoverManager, INSTALL_PATH, SessionInstaller } from '../../src/failover/index.js';
import { createSilentLogger } from '../../src/log.js';
import { NodeRegistry, type ProxyNode } from '../../src/nodes/index.js';
import { MemoryReplicaStore } from '../../src/replication/index.js';

/**
 * A real HTTP server playing a failover target's install route: it records every install
 * and holds the answers of those its `hold` predicate picks until `release` lets them go.
 */
class InstallTarget {
  readonly server: Server;
  /** Keys of each install request received, in order of arrival. */
  readonly installs: string[][] = [];
  /** Keys of each evict request received. */
  readonly evictions: string[][] = [];
  hold: (keys: readonly string[]) => boolean = () => false;
  /** Installs answered 503 (the node is up, its install fails). */
  fail: (keys: readonly string[]) => boolean = () => false;
  /** Evictions answered 503. */
  failEvict = false;
  readonly #held: Array<{ keys: string[]; res: ServerResponse }> = [];
  readonly #waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor() {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        if (req.url === EVICT_PATH) {
          this.evictions.push((JSON.parse(body) as { keys: string[] }).keys);
          if (this.failEvict) res.writeHead(503, { 'content-type': 'application/json' }).end('{}');
          else res.writeHead(200, { 'content-type': 'application/json' }).end('{"evicted":1}');
          return;
        }
        if (req.url !== INSTALL_PATH) {
          res.writeHead(404).end();
          return;
        }
        const keys = (JSON.parse(body) as { sessions: Array<{ key: string }> }).sessions.map((s) => s.key);
        this.installs.push(keys);
        for (const waiter of this.#waiters) if (this.installs.length >= waiter.count) waiter.resolve();
        if (this.fail(keys)) res.writeHead(503, { 'content-type': 'application/json' }).end('{}');
        else if (this.hold(keys)) this.#held.push({ keys, res });
        else answer(res);
      });
    });
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Resolves once `count` install requests have arrived. */
  installsReceived(count: number): Promise<void> {
    if (this.installs.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  /** Answers the held installs that hold one of `keys` (all of them when omitted). */
  release(keys?: readonly string[]): void {
    for (let i = this.#held.length - 1; i >= 0; i--) {
      const held = this.#held[i] as { keys: string[]; res: ServerResponse };
      if (keys !== undefined && !held.keys.some((key) => keys.includes(key))) continue;
      this.#held.splice(i, 1);
      answer(held.res);
    }
  }

  async close(): Promise<void> {
    this.hold = () => false;
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function answer(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"installed":1,"stale":0}');
}

let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/**
 * Node `a` (down, or up with `sourceUp`) holding `count` replicated sessions, targets (`b`
 * unless `targets` names others) each behind a real install server; `alsoDown` are more
 * nodes, down, and `alsoUp` more nodes, up, holding that many sessions each; nothing listens
 * for either. Targets are picked by the first candidate, or by `policy`.
 */
async function setUp(
  count: number,
  {
    alsoDown = [],
    alsoUp = {},
    sourceUp = false,
    sourceServer,
    targets: targetIds = ['b'],
    policy,
    awaitPeerMove,
  }: SetUpOptions = {},
): Promise<{
  failover: FailoverManager;
  affinity: AffinityTable;
  registry: NodeRegistry;
  replicas: MemoryReplicaStore;
  target: InstallTarget;
  targets: Map<string, InstallTarget>;
  keys: string[];
}> {
  const targets = new Map<string, InstallTarget>();
  for (const id of targetIds) {
    const target = new InstallTarget();
    target.server.listen(0, '127.0.0.1');
    await once(target.server, 'listening');
    cleanup.push(() => target.close());
    targets.set(id, target);
  }
  const agent = new Agent({ keepAlive: true });
  cleanup.push(() => agent.destroy());
  const registry = new NodeRegistry(
    [
      { id: 'a', url: sourceServer?.url ?? 'http://127.0.0.1:1', weight: 1 },
      ...[...targets].map(([id, target]) => ({ id, url: target.url, weight: 1 })),
      ...[...alsoDown, ...Object.keys(alsoUp)].map((id) => ({ id, url: 'http://127.0.0.1:1', weight: 1 })),
    ],
    { routeOf: (id) => `r-${id}`, agent },
  );
  const affinity = testAffinity(registry, 100_000);
  const replicas = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
  cleanup.push(() => replicas.close());
  const keys = Array.from({ length: count }, (_, i) => `session-${String(i).padStart(4, '0')}`);
  for (const key of keys) affinity.record(key, 'a');
  for (const [id, sessions] of Object.entries(alsoUp)) {
    for (let i = 0; i < sessions; i++) affinity.record(`${id}-session-${i}`, id);
  }
  await replicas.write(
    'a',
    keys.map((key, i) => ({ key, version: 1, data: { count: i }, lastAccessAt: Date.now() })),
  );
  for (const id of [...(sourceUp ? [] : ['a']), ...alsoDown]) registry.setHealthy(id, false);
  const balancing = policy === undefined ? undefined : createBalancingPolicy(policy);
  const failover = new FailoverManager({
    registry,
    affinity,
    replicas,
    installer: new SessionInstaller({ agent, secret: 'test-secret' }),
    pickNode: (excluding) => {
      const candidates = registry.candidates.filter((candidate) => candidate.id !== excluding);
      const node = balancing === undefined ? candidates[0] : balancing.pickNode(candidates);
      if (node === undefined) throw new Error('no node');
      return node;
    },
    onTargetFailure: () => undefined,
    logger: createSilentLogger(),
    ...(awaitPeerMove !== undefined ? { awaitPeerMove } : {}),
    // Small, so a move of a few dozen sessions has chunks in flight and chunks queued.
    chunkSize: 10,
    chunksInFlight: 2,
  });
  return {
    failover,
    affinity,
    registry,
    replicas,
    target: targets.values().next().value as InstallTarget,
    targets,
    keys,
  };
}

interface SetUpOptions {
  /** A real server for the source node `a` (records installs and evictions); default: none listens. */
  sourceServer?: InstallTarget;
  alsoDown?: readonly string[];
  alsoUp?: Record<string, number>;
  sourceUp?: boolean;
  targets?: readonly string[];
  policy?: BalancingPolicyName;
  /** Distributed mode: waits for another proxy's move of `key` to `holder`. */
  awaitPeerMove?: (key: string, holder: string) => Promise<boolean>;
}

/** Resolves once `condition` holds, checked every few ms (the test's own timeout bounds it). */
async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

/** Settles with 'pending' if `promise` has not settled by the time the event loop has turned. */
async function stateOf(promise: Promise<unknown>): Promise<'settled' | 'pending'> {
  const pending = Symbol('pending');
  const winner = await Promise.race([
    promise.then(
      () => 'settled' as const,
      () => 'settled' as const,
    ),
    new Promise<symbol>((resolve) => setImmediate(() => resolve(pending))),
  ]);
  return winner === pending ? 'pending' : 'settled';
}

describe('FailoverManager', () => {
  it('moves a session a request waits for at once, in an install of its own, while the failover still installs the rest', async () => {
    const { failover, affinity, target, keys } = await setUp(60);
    // Every install of the proactive failover is held; an install of one session is not.
    target.hold = (installKeys) => installKeys.length > 1;
    const all = failover.moveAll('a', 'down');
    // Both installs in flight have arrived; the failover's other chunks are queued behind them.
    await target.installsReceived(2);
    const sent = new Set(target.installs.flat());
    const queued = keys.find((key) => !sent.has(key)) as string;
    expect(queued).toBeDefined();

    const node = await failover.moveSession(queued, 'a');

    expect(node.id).toBe('b');
    expect(affinity.nodeOf(queued)).toBe('b');
    expect(target.installs).toContainEqual([queued]);
    expect(await stateOf(all)).toBe('pending');

    target.hold = () => false;
    target.release();
    const report = await all;
    // The one the request moved is not the failover's: it moved on demand.
    expect(report.moved).toBe(59);
    expect(report.failed).toBe(0);
    // Installed once: the failover's chunk skipped the session already moved.
    expect(target.installs.flat().filter((key) => key === queued)).toHaveLength(1);
    expect(new Set(target.installs.flat()).size).toBe(60);
    for (const key of keys) expect(affinity.nodeOf(key)).toBe('b');
  });

  it('moves a replica the dead node owns though the table pins it to a node that cannot serve', async () => {
    // The table and the replica store disagree: the table pins it to `c`, which cannot serve,
    // the replica store has it owned by `a`. Whoever moves it must be `a`'s failover.
    const { failover, affinity, target, keys } = await setUp(3, { alsoDown: ['c'] });
    const [stray] = keys as [string];
    affinity.assign(stray, 'c', 'a');

    const report = await failover.moveAll('a', 'down');

    expect(report.moved).toBe(3);
    expect(affinity.nodeOf(stray)).toBe('b');
    expect(target.installs.flat()).toContain(stray);
  });

  it('moves a session pinned to the node after the move began listing its replicas', async () => {
    const { failover, affinity, target } = await setUp(2);
    const all = failover.moveAll('a', 'evacuate');
    // The replicas are listed; the table's sessions are listed a turn later.
    affinity.record('late', 'a');

    const report = await all;

    // No replica of it to install: it moves without state, as any such session does.
    expect(report).toMatchObject({ moved: 2, lost: 1, failed: 0 });
    expect(affinity.nodeOf('late')).toBe('b');
    expect(target.installs.flat()).toHaveLength(2);
  });

  it('a node up and down again while its failover runs: the sessions it took meanwhile move in the same run', async () => {
    const { failover, affinity, registry, replicas, target, keys } = await setUp(3);
    target.hold = () => true;
    const first = failover.moveAll('a', 'down');
    await target.installsReceived(1);
    // Back for a moment: it takes a new session, then goes down again (that call joins the run).
    registry.setHealthy('a', true);
    affinity.record('meanwhile', 'a');
    await replicas.write('a', [
      { key: 'meanwhile', version: 1, data: { count: 7 }, lastAccessAt: Date.now() },
    ]);
    registry.setHealthy('a', false);
    const second = failover.moveAll('a', 'down');
    target.hold = () => false;
    target.release();

    const report = await second;

    expect(await first).toBe(report);
    expect(report).toMatchObject({ moved: 4, failed: 0 });
    for (const key of [...keys, 'meanwhile']) expect(affinity.nodeOf(key)).toBe('b');
    expect(target.installs.flat()).toContain('meanwhile');
    expect(registry.get('a')?.sessions).toBe(0);
  });

  it('moves the most recently used sessions of a dead node first', async () => {
    const { failover, affinity, target, keys } = await setUp(40);
    // The last ten were used again just now.
    for (const key of keys.slice(30)) affinity.record(key, 'a');
    target.hold = () => true;
    const all = failover.moveAll('a', 'down');
    await target.installsReceived(2);

    expect(target.installs.flat().sort()).toEqual(keys.slice(20).sort());
    expect(target.installs).toContainEqual(keys.slice(30).reverse());

    target.hold = () => false;
    target.release();
    expect((await all).moved).toBe(40);
  });

  it('lets a request for a session in flight go once its own install is done, not the whole failover', async () => {
    const { failover, affinity, target, keys } = await setUp(40);
    target.hold = () => true;
    const all = failover.moveAll('a', 'down');
    await target.installsReceived(2);
    const [first, second] = target.installs as [string[], string[]];
    const key = first[0] as string;

    const waiting = failover.moveSession(key, 'a');
    expect(await stateOf(waiting)).toBe('pending');
    target.release(first);

    expect((await waiting).id).toBe('b');
    expect(affinity.nodeOf(key)).toBe('b');
    // Another install of the same failover is still held: its sessions still wait.
    expect(await stateOf(failover.movingTo(second[0] as string) as Promise<ProxyNode>)).toBe('pending');
    expect(await stateOf(all)).toBe('pending');

    target.hold = () => false;
    target.release();
    expect((await all).moved).toBe(40);
    expect(keys.every((k) => affinity.nodeOf(k) === 'b')).toBe(true);
  });

  it('spreads moves running at once by the balancing policy, counting the sessions still on their way', async () => {
    const { failover, affinity, registry, targets, keys } = await setUp(21, {
      targets: ['b', 'c'],
      policy: 'least-sessions',
    });
    const [held, ...rest] = keys as [string, ...string[]];
    affinity.assign(held, 'c', 'a');
    for (const target of targets.values()) target.hold = () => true;
    // Twenty requests of the dead node's sessions arrive before its failover: each moves its
    // own session, and all twenty installs are under way together.
    const moves = rest.map((key) => failover.moveSession(key, 'a'));
    await waitUntil(() => [...targets.values()].reduce((n, t) => n + t.installs.length, 0) === 20);

    // b held 0, c held 1: b takes the first, then they alternate. Before the moving sessions
    // counted, b looked least loaded until the first install finished, and took all twenty.
    const b = targets.get('b') as InstallTarget;
    const c = targets.get('c') as InstallTarget;
    expect([b.installs.length, c.installs.length]).toEqual([10, 10]);
    expect(registry.get('b')).toMatchObject({ sessions: 0, incoming: 10 });
    expect(registry.get('c')).toMatchObject({ sessions: 1, incoming: 10 });

    for (const target of targets.values()) {
      target.hold = () => false;
      target.release();
    }
    await Promise.all(moves);
    expect(registry.get('b')).toMatchObject({ sessions: 10, incoming: 0 });
    expect(registry.get('c')).toMatchObject({ sessions: 11, incoming: 0 });
  });

  it('counts a planned move as incoming until each chunk is installed, and releases it when a target fails', async () => {
    const { failover, registry, targets } = await setUp(40, {
      targets: ['b', 'c'],
      policy: 'least-sessions',
    });
    const b = targets.get('b') as InstallTarget;
    const c = targets.get('c') as InstallTarget;
    b.hold = () => true;
    c.hold = () => true;
    const all = failover.moveAll('a', 'down');
    await Promise.all([b.installsReceived(1), c.installsReceived(1)]);
    // The whole plan is counted, the chunks still queued too.
    expect((registry.get('b')?.incoming ?? 0) + (registry.get('c')?.incoming ?? 0)).toBe(40);

    // b fails from now on (the installs under way cut, nothing listening): its chunks go to
    // c, and the count follows them.
    b.server.closeAllConnections();
    b.server.close();
    c.hold = () => false;
    c.release();
    const report = await all;

    expect(report).toMatchObject({ moved: 40, failed: 0 });
    expect(registry.get('c')).toMatchObject({ sessions: 40, incoming: 0 });
    expect(registry.get('b')).toMatchObject({ sessions: 0, incoming: 0 });
  });

  it('a target whose install failed but that stays up gets the session with its state on the next move', async () => {
    // b answers installs 503 at first; a reset or an error answer only makes it suspect, so
    // it stays up (and owns the replicas the failed move transferred to it).
    const { failover, affinity, replicas, target, keys } = await setUp(1, { targets: ['b'] });
    const [key] = keys as [string];
    target.fail = () => true;
    const first = await failover.moveAll('a', 'down');
    expect(first).toMatchObject({ moved: 0, failed: 1 });
    // Given back to a: the replica store names the node the session was on.
    expect((await replicas.read(key))?.owner).toBe('a');

    target.fail = () => false;
    const node = await failover.moveSession(key, 'a');
    expect(node.id).toBe('b');
    // Installed with its state this time (before: taken as another proxy's move, no install).
    expect(target.installs).toEqual([[key], [key]]);
    expect(affinity.nodeOf(key)).toBe('b');
    expect((await replicas.read(key))?.owner).toBe('b');
  });

  it('a move asked for by a request off a node that stays up makes that node forget the session', async () => {
    const source = new InstallTarget();
    source.server.listen(0, '127.0.0.1');
    await once(source.server, 'listening');
    cleanup.push(() => source.close());
    const { failover, keys } = await setUp(1, { targets: ['b'], sourceUp: true, sourceServer: source });
    const [key] = keys as [string];
    // A request reset on a (suspect, not down) was retried elsewhere: its session moved.
    await failover.moveSession(key, 'a');
    await waitUntil(() => source.evictions.length > 0);
    expect(source.evictions).toEqual([[key]]);
  });

  it('a session that moves back onto a node it once moved off is never evicted from it', async () => {
    const source = new InstallTarget();
    source.server.listen(0, '127.0.0.1');
    await once(source.server, 'listening');
    cleanup.push(() => source.close());
    const { failover, registry, keys } = await setUp(2, {
      targets: ['b'],
      sourceUp: true,
      sourceServer: source,
    });
    const [back, other] = keys as [string, string];
    // S moves off a (which stays up); telling a to forget it fails this once.
    source.failEvict = true;
    await failover.moveSession(back, 'a');
    await waitUntil(() => source.evictions.length === 1);
    source.failEvict = false;
    // b is evacuated: S comes back to a, the only other node.
    registry.setDraining('b', true);
    await failover.moveAll('b', 'evacuate');
    expect(source.installs.at(-1)).toEqual([back]);
    // Another session moves off a (to b, taking sessions again): its eviction must not take S, now live on a.
    registry.setDraining('b', false);
    expect((await failover.moveSession(other, 'a')).id).toBe('b');
    await waitUntil(() => source.evictions.length === 2);
    expect(source.evictions[1]).toEqual([other]);
  });

  it('distributed mode: a move off a dead node that gives up leaves the replicas with the last target', async () => {
    const { failover, replicas, target, keys } = await setUp(1, {
      targets: ['b'],
      awaitPeerMove: async () => true,
    });
    target.fail = () => true;
    await failover.moveAll('a', 'down');
    // Another proxy waiting on b's move installs it there itself (not given back to dead a).
    expect((await replicas.read(keys[0] as string))?.owner).toBe('b');
  });

  it('an evacuation whose every install fails leaves the sessions on their live node, owned by it again', async () => {
    // The only target, c, refuses every install (nothing listens there).
    const { failover, affinity, registry, replicas, keys } = await setUp(3, {
      targets: [],
      alsoUp: { c: 0 },
      sourceUp: true,
    });
    // One of them had moved to a earlier: its id routes to d, which does not hold it.
    const [movedKey] = keys as [string];
    affinity.assign(movedKey, 'a', 'd');

    const report = await failover.moveAll('a', 'evacuate');

    expect(report).toMatchObject({ moved: 0, failed: 3 });
    for (const key of keys) {
      expect(affinity.nodeOf(key)).toBe('a');
      // a's next write of it is its own again (not refused as another node's).
      expect((await replicas.read(key))?.owner).toBe('a');
      expect(await replicas.write('a', [{ key, version: 2, data: {}, lastAccessAt: Date.now() }])).toEqual([
        'ok',
      ]);
    }
    expect(affinity.movedNodeOf(movedKey)).toBe('a');
    // (a is not listening in this set-up: the records it is also sent are lost on the way.)
    expect(registry.all.map((node) => [node.id, node.sessions, node.incoming])).toEqual([
      ['a', 3, 0],
      ['c', 0, 0],
    ]);
  });

  it('rebalances each target up to its fair share, counting what the rebalance already sends it', async () => {
    // 120 sessions on three targets and a: a fair share is 30. Round-robin offers d (at its
    // share) in turn; each refusal falls back to the first target still under its share.
    const { failover, registry } = await setUp(90, {
      targets: ['b', 'c'],
      alsoUp: { d: 30 },
      sourceUp: true,
      policy: 'round-robin',
    });

    const report = await failover.rebalance(0.2);

    expect(report.targets).toEqual({ b: 30, c: 30 });
    expect(report).toMatchObject({ moved: 60, failed: 0 });
    expect(registry.all.map((node) => [node.id, node.sessions, node.incoming])).toEqual([
      ['a', 30, 0],
      ['b', 30, 0],
      ['c', 30, 0],
      ['d', 30, 0],
    ]);
  });

  it('does not count a session another proxy moved as on its way to this proxy’s target', async () => {
    let peerMoveDone: (done: boolean) => void = () => undefined;
    let isWaitingForPeer = false;
    const { failover, registry, replicas, keys } = await setUp(1, {
      targets: ['b'],
      alsoUp: { c: 0 },
      awaitPeerMove: () => {
        isWaitingForPeer = true;
        return new Promise((resolve) => (peerMoveDone = resolve));
      },
    });
    const [key] = keys as [string];
    // Another proxy won the transfer to c and is still installing it there.
    await replicas.transfer(key, 'a', 'c');

    const move = failover.moveSession(key, 'a');
    await waitUntil(() => isWaitingForPeer);
    expect(registry.get('b')?.incoming).toBe(0);
    expect(await stateOf(move)).toBe('pending');

    peerMoveDone(true);
    await move;
    expect(registry.all.map((node) => node.incoming)).toEqual([0, 0, 0]);
  });

  it('releases every count when a target fails mid-move and another proxy holds one of the sessions', async () => {
    const { failover, registry, replicas, targets, keys } = await setUp(3, {
      targets: ['b', 'd'],
      alsoUp: { c: 0 },
      awaitPeerMove: async () => true,
    });
    const [peerHeld] = keys as [string];
    await replicas.transfer(peerHeld, 'a', 'c');
    // b takes nothing: its installs are refused, and the group goes on to d.
    const b = targets.get('b') as InstallTarget;
    b.server.close();

    const report = await failover.moveAll('a', 'down');

    expect(report).toMatchObject({ moved: 2, failed: 0 });
    expect(registry.get('d')?.sessions).toBe(2);
    expect(registry.all.map((node) => [node.id, node.incoming])).toEqual([
      ['a', 0],
      ['b', 0],
      ['d', 0],
      ['c', 0],
    ]);
  });
});

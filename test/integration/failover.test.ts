import { readFileSync, writeFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { SESSION_HEADER } from '../../src/protocol.js';
import { Client, freePort, NodeProcess, startCluster, waitFor, type Cluster } from './harness.js';
import { busiest, seedSessions } from './seed-sessions.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

interface AdminState {
  nodes: Array<{ id: string; state: string; sessions: number }>;
  sessions: { total: number };
}

async function adminState(c: Cluster): Promise<AdminState> {
  return (await (await fetch(`${c.adminUrl}/api/state`)).json()) as AdminState;
}

async function adminPost(c: Cluster, path: string): Promise<{ status: number; json: any }> {
  const response = await fetch(`${c.adminUrl}${path}`, { method: 'POST' });
  return { status: response.status, json: await response.json() };
}

/**
 * The node applies and replicates a POST, then dies before answering: the proxy must not replay
 * it (502), and the session's counter then reads `count`, the write counted once.
 */
async function expectCrashNotReplayed(client: Client, count: number): Promise<void> {
  const crash = await client.request('POST', '/api/counter/crash');
  expect(crash.status).toBe(502);
  expect(crash.json.error).toBe('SLB_UPSTREAM_FAILED');
  const { status, json } = await client.request('GET', '/api/counter');
  expect(status).toBe(200);
  expect(json.count).toBe(count);
}

/**
 * Every session writes its counter in a loop (at most `maxWrites` times each), keeping its last
 * acknowledged count; `stop` ends the loops and resolves to the number of failed writes.
 */
function startWriters(
  sessions: Map<Client, { count: number }>,
  maxWrites: number,
): { stop: () => Promise<number> } {
  let errors = 0;
  let isRunning = true;
  const writers = [...sessions].map(async ([client, last]) => {
    for (let i = 0; i < maxWrites && isRunning; i++) {
      const { status, json } = await client.request('POST', '/api/counter');
      if (status === 200) last.count = json.count;
      else errors++;
    }
  });
  return {
    async stop() {
      isRunning = false;
      await Promise.all(writers);
      return errors;
    },
  };
}

describe('failover with state', () => {
  it('kill -9 the busiest node: the next request of every session keeps its counter, no error', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const sessions = await seedSessions(cluster, 30, 3);
    const victim = busiest(sessions);
    const before = await adminState(cluster);
    await cluster.nodes.find((node) => node.id === victim)?.kill('SIGKILL');

    for (const [client, last] of sessions) {
      const { status, json } = await client.request('POST', '/api/counter');
      expect(status).toBe(200);
      expect(json.count).toBe(last.count + 1);
      expect(json.node).not.toBe(victim);
    }

    const after = await waitFor(async () => {
      const state = await adminState(cluster as Cluster);
      return state.nodes.find((node) => node.id === victim)?.state === 'down' ? state : undefined;
    });
    expect(after.nodes.find((node) => node.id === victim)?.sessions).toBe(0);
    expect(after.sessions.total).toBe(before.sessions.total);
    expect(after.nodes.reduce((sum, node) => sum + node.sessions, 0)).toBe(after.sessions.total);
  });

  it('a node killed and restarted before the health checks notice: each session is restored from its replica there, counter intact', async () => {
    // 5 failed checks 2 s apart to be marked down: the restart (about a second) goes unnoticed.
    cluster = await startCluster({
      nodeCount: 2,
      config: { health: { interval: '2s', timeout: '1s', fall: 5 } },
    });
    const sessions = await seedSessions(cluster, 12, 3);
    const victim = busiest(sessions);
    await cluster.nodes.find((node) => node.id === victim)?.restart();

    for (const [client, last] of sessions) {
      const { status, json } = await client.request('POST', '/api/counter');
      expect(status).toBe(200);
      expect(json.count).toBe(last.count + 1);
      // Served where it was: nothing moved it, the restarted node restored it.
      expect(json.node).toBe(last.node);
    }
    const state = await adminState(cluster);
    expect(state.nodes.find((node) => node.id === victim)?.state).toBe('up');
    // Counted where an operator looks (the node's report reaches the admin within a poll).
    const restored = [...sessions.values()].filter(({ node }) => node === victim).length;
    await waitFor(async () =>
      (await (await fetch(`${(cluster as Cluster).adminUrl}/metrics`)).text()).includes(
        `stickylb_node_sessions_restored_total{node="${victim}"} ${restored}`,
      ),
    );
  });

  it('a worker report that reaches the control plane after its node went down, or was removed, moves the session off it', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    await cluster.nodes[0]?.kill('SIGKILL');
    await waitFor(async () => (await adminState(cluster as Cluster)).nodes[0]?.state === 'down');
    // What a worker reports, up to 20 ms late, for a session it created on node-1 just before the kill.
    const key = 'l4t3r3p0rt3ds3ss10nk3y';
    cluster.lb.recordUsed(key, 'node-1', 1);
    await waitFor(() => cluster?.lb.nodeOfSession(key)?.id === 'node-2');
    const state = await adminState(cluster);
    expect(state.nodes.map((node) => node.sessions)).toEqual([0, 1]);
    expect(state.sessions.total).toBe(1);

    // The same for a node a reload removed.
    const running = cluster.lb.config;
    cluster.lb.reload({ ...running, nodes: running.nodes.filter((node) => node.id !== 'node-1') });
    // After the removal's own move (joined here) listed the node's sessions.
    await cluster.lb.failover.moveAll('node-1', 'down');
    cluster.lb.recordUsed('r3m0v3dn0d3s3ss10nk3y', 'node-1', 1);
    await waitFor(() => cluster?.lb.nodeOfSession('r3m0v3dn0d3s3ss10nk3y')?.id === 'node-2');
    expect((await adminState(cluster)).sessions.total).toBe(2);
  });

  it('replays a POST sent on a keep-alive socket the killed node had closed: no error page', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    // Several sessions, each with pooled proxy→node sockets, written again right after the kill.
    const sessions = await seedSessions(cluster, 12, 2);
    const victim = busiest(sessions);
    await cluster.nodes.find((node) => node.id === victim)?.kill('SIGKILL');
    const results = await Promise.all(
      [...sessions].map(async ([client, last]) => ({
        last,
        answer: await client.request('POST', '/api/counter'),
      })),
    );
    for (const { last, answer } of results) {
      expect(answer.status).toBe(200);
      expect(answer.json.count).toBe(last.count + 1);
    }
  });

  it('does not replay a POST the dying node applied and replicated; its write survives once', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    const client = new Client(cluster.proxyUrl);
    await client.request('POST', '/api/counter');
    await client.request('POST', '/api/counter');
    await expectCrashNotReplayed(client, 3);
  });

  it('re-issues the cookie with the new route after a failover', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    const client = new Client(cluster.proxyUrl);
    const first = await client.request('POST', '/api/counter');
    const oldId = client.sessionId as string;
    await cluster.nodes.find((node) => node.id === first.json.node)?.kill('SIGKILL');
    const moved = await client.request('POST', '/api/counter');
    expect(moved.json.count).toBe(2);
    expect(client.sessionId).not.toBe(oldId);
    expect(client.sessionId?.split('.')[0]).toBe(oldId.split('.')[0]);
    // An old copy of the cookie (another tab) still reaches the session.
    const stale = await fetch(`${cluster.proxyUrl}/api/counter`, {
      headers: { cookie: `SESSIONID=${oldId}` },
    });
    expect(((await stale.json()) as { count: number }).count).toBe(2);
  });

  it('chaos: 40 writers, two nodes killed 1.5 s apart, nothing acknowledged is lost', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const c = cluster;
    // Bounded by count (so the error ratio does not depend on how fast this machine is) and,
    // as a safety net, by time.
    const writesPerClient = 150;
    const deadline = Date.now() + 60_000;
    let requests = 0;
    let errors = 0;
    const clients = Array.from({ length: 40 }, () => ({
      client: new Client(c.proxyUrl),
      lastAck: 0,
      failedSinceAck: 0,
    }));
    const writers = clients.map(async (state) => {
      // Bounded in time and count.
      for (let i = 0; i < writesPerClient && Date.now() < deadline; i++) {
        requests++;
        try {
          const { status, json } = await state.client.request('POST', '/api/counter');
          if (status === 200) {
            expect(json.count).toBeGreaterThan(state.lastAck);
            state.lastAck = json.count;
            state.failedSinceAck = 0;
          } else {
            errors++;
            state.failedSinceAck++;
          }
        } catch {
          errors++;
          state.failedSinceAck++;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await c.nodes[0]?.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await c.nodes[1]?.kill('SIGKILL');
    await Promise.all(writers);

    expect(requests).toBe(40 * writesPerClient);
    expect(errors / requests).toBeLessThanOrEqual(0.01);
    let exact = 0;
    for (const state of clients) {
      const { status, json } = await state.client.request('GET', '/api/counter');
      expect(status).toBe(200);
      expect(json.node).toBe('node-3');
      // Never below the last acknowledged value; above it only by writes that failed after it
      // (a node may apply and replicate a write, then die before answering).
      expect(json.count).toBeGreaterThanOrEqual(state.lastAck);
      expect(json.count).toBeLessThanOrEqual(state.lastAck + state.failedSinceAck);
      if (json.count === state.lastAck) exact++;
    }
    expect(exact).toBeGreaterThanOrEqual(clients.length - errors);
  }, 90_000);

  it('SIGSTOP a node until it is down, move its sessions, SIGCONT it: no stale state wins', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const c = cluster;
    const sessions = await seedSessions(c, 15, 2);
    const victim = c.nodes.find((node) => node.id === busiest(sessions));
    if (victim === undefined) throw new Error('no victim');
    const victims = [...sessions].filter(([, last]) => last.node === victim.id);

    victim.child.kill('SIGSTOP');
    try {
      await waitFor(() => c.lb.registry.get(victim.id)?.state === 'down');
      await waitFor(() => c.lb.registry.get(victim.id)?.sessions === 0);
      // Writes land on the new nodes while the old one sleeps.
      for (const [client, last] of victims) {
        const { json } = await client.request('POST', '/api/counter');
        expect(json).toMatchObject({ count: last.count + 1 });
        expect(json.node).not.toBe(victim.id);
      }
    } finally {
      victim.child.kill('SIGCONT');
    }
    await waitFor(() => c.lb.registry.get(victim.id)?.state === 'up');

    for (const [client, last] of victims) {
      const key = (client.sessionId as string).split('.')[0] as string;
      // The woken node's stale copy neither serves through the proxy…
      const { json } = await client.request('GET', '/api/counter');
      expect(json.count).toBe(last.count + 1);
      expect(json.node).not.toBe(victim.id);
      // …nor overwrites the replica if a request reaches it directly: it refuses and hangs up.
      await expect(
        fetch(`${victim.url}/api/counter`, {
          method: 'POST',
          headers: { [SESSION_HEADER]: client.sessionId as string },
        }),
      ).rejects.toThrow();
      const replica = await c.lb.replicas.read(key);
      expect(replica?.owner).not.toBe(victim.id);
      expect((replica?.data as { values: { count: number } }).values.count).toBe(last.count + 1);
    }
  });

  it('a node brought back takes new sessions while moved ones stay put', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    const c = cluster;
    const sessions = await seedSessions(c, 10, 1);
    const node1 = c.nodes[0];
    if (node1 === undefined) throw new Error('no node');
    await node1.kill('SIGKILL');
    for (const [client] of sessions)
      expect((await client.request('POST', '/api/counter')).json.node).toBe('node-2');

    await node1.restart(); // what `npx stickylb backend --id node-1` does
    await waitFor(() => c.lb.registry.get('node-1')?.state === 'up');
    for (const [client, last] of sessions) {
      const { json } = await client.request('GET', '/api/counter');
      expect(json).toMatchObject({ node: 'node-2', count: last.count + 1 });
    }
    const fresh = await seedSessions(c, 4, 1);
    expect([...fresh.values()].every((last) => last.node === 'node-1')).toBe(true);
  });

  it('a reload that gives a node a new URL (a new process there) fails its sessions over, counters intact', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    const c = cluster;
    const sessions = await seedSessions(c, 10, 3);
    const old = c.nodes[0] as NodeProcess;
    const newUrl = `http://127.0.0.1:${await freePort()}`;
    // What `stickylb start` does on SIGHUP: the proxy takes the new URL, the node's old process
    // stops and an empty one starts there (or, with `stickylb proxy`, one the operator started).
    const configFile = c.configFile.replace(/\.yaml$/, '-moved.yaml');
    writeFileSync(configFile, readFileSync(c.configFile, 'utf8').split(old.url).join(newUrl));
    const moved = new NodeProcess('node-1', newUrl, configFile);
    c.nodes.push(moved);
    await moved.ready();
    const running = c.lb.config;
    c.lb.reload({
      ...running,
      nodes: running.nodes.map((node) => (node.id === 'node-1' ? { ...node, url: newUrl } : node)),
    });
    await old.kill('SIGTERM');
    for (const [client, last] of sessions) {
      const { status, json } = await client.request('POST', '/api/counter');
      expect({ status, count: json.count }).toEqual({ status: 200, count: last.count + 1 });
    }
    // Up again at its new URL once its health checks pass there, and taking new sessions.
    await waitFor(() => c.lb.registry.get('node-1')?.state === 'up');
    expect(c.lb.registry.get('node-1')?.url).toBe(newUrl);
    const fresh = await seedSessions(c, 4, 1);
    expect([...fresh.values()].some((last) => last.node === 'node-1')).toBe(true);
  });

  it('drain stops new sessions going to a node; its sessions stay', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const sessions = await seedSessions(cluster, 9, 1);
    const drained = await adminPost(cluster, '/api/nodes/node-3/drain');
    expect(drained).toMatchObject({ status: 200, json: { node: 'node-3', state: 'draining' } });
    const fresh = await seedSessions(cluster, 12, 1);
    expect([...fresh.values()].some((last) => last.node === 'node-3')).toBe(false);
    for (const [client, last] of sessions) {
      expect((await client.request('GET', '/api/counter')).json.node).toBe(last.node);
    }
    expect((await adminPost(cluster, '/api/nodes/node-3/undrain')).json.state).toBe('up');
    expect((await adminPost(cluster, '/api/nodes/node-9/drain')).status).toBe(404);
  });

  it('evacuate moves every session off a node; then it can be killed with nothing lost', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const sessions = await seedSessions(cluster, 18, 2);
    const { status, json } = await adminPost(cluster, '/api/nodes/node-2/evacuate');
    expect(status).toBe(200);
    expect(json.report.failed).toBe(0);
    expect(json.report.lost).toBe(0);
    const state = await adminState(cluster);
    expect(state.nodes.find((node) => node.id === 'node-2')).toMatchObject({
      state: 'draining',
      sessions: 0,
    });
    await cluster.nodes[1]?.kill('SIGKILL');
    for (const [client, last] of sessions) {
      const { status: code, json: body } = await client.request('POST', '/api/counter');
      expect(code).toBe(200);
      expect(body.count).toBe(last.count + 1);
      expect(body.node).not.toBe('node-2');
    }
  });

  it('evacuates a node under live traffic with no error and no lost write', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const c = cluster;
    const sessions = await seedSessions(c, 15, 1);
    const writers = startWriters(sessions, 500);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { json } = await adminPost(c, '/api/nodes/node-2/evacuate');
    const errors = await writers.stop();
    expect(json.report.failed).toBe(0);
    // A POST forwarded to node-2 in the instant its session changes owner is refused there and
    // replayed on the new owner: with workers too (the replay check first collects every
    // worker's versions seen, see WorkerPool), so no client ever sees an error.
    expect(errors).toBe(0);
    for (const [client, last] of sessions) {
      const { json: body } = await client.request('GET', '/api/counter');
      expect(body.count).toBe(last.count);
      expect(body.node).not.toBe('node-2');
    }
  });

  it('rebalance under live writes: a write refused as its session moves is replayed, and no healthy node is marked down', async () => {
    cluster = await startCluster({ nodeCount: 3 });
    const c = cluster;
    await adminPost(c, '/api/nodes/node-2/drain');
    await adminPost(c, '/api/nodes/node-3/drain');
    const sessions = await seedSessions(c, 120, 1);
    await adminPost(c, '/api/nodes/node-2/undrain');
    await adminPost(c, '/api/nodes/node-3/undrain');
    // (Nodes start after the proxy: the first probes were refused, before this.)
    const since = Date.now();
    const writers = startWriters(sessions, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { json } = await adminPost(c, '/api/rebalance');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const errors = await writers.stop();
    expect(json.report.moved).toBeGreaterThan(0);
    expect(errors).toBe(0);
    // A node hanging up on a write the replica store fenced off is not a dead node: before,
    // that one reset marked node-1 down and moved every session off it.
    const downs = c.lb.events.recent(100).filter((event) => event.type === 'node:down' && event.at >= since);
    expect(downs.map((event) => event.message)).toEqual([]);
    expect(c.lb.registry.all.every((node) => node.isHealthy)).toBe(true);
    for (const [client, last] of sessions) {
      const { json: body } = await client.request('GET', '/api/counter');
      expect(body.count).toBe(last.count);
    }
  });

  it('rebalance spreads sessions onto a node that joined empty, state and all', async () => {
    cluster = await startCluster({ nodeCount: 2 });
    const c = cluster;
    await adminPost(c, '/api/nodes/node-2/drain');
    const sessions = await seedSessions(c, 20, 2);
    expect([...sessions.values()].every((last) => last.node === 'node-1')).toBe(true);
    // With proxy workers the control plane learns of sessions from their reports, up to 20 ms late.
    await waitFor(async () => (await adminState(c)).sessions.total === 20);
    await adminPost(c, '/api/nodes/node-2/undrain');
    const { json } = await adminPost(c, '/api/rebalance');
    expect(json.report.moved).toBeGreaterThanOrEqual(8);
    const state = await adminState(c);
    const [a, b] = state.nodes.map((node) => node.sessions) as [number, number];
    expect(Math.abs(a - b)).toBeLessThanOrEqual(Math.ceil(0.2 * 10) * 2);
    for (const [client, last] of sessions) {
      const { json: body } = await client.request('POST', '/api/counter');
      expect(body.count).toBe(last.count + 1);
    }
  });
});

describe('answers that never come', () => {
  // The control plane's answer can be lost (over IPC with proxy workers: a busy or dying
  // primary). Each case below makes it never come; the request must still end, with a JSON
  // error, after proxy.timeouts.upstream, and the proxy keep serving.

  it('a session move that never finishes: 504 after proxy.timeouts.upstream, the proxy keeps serving', async () => {
    cluster = await startCluster({ nodeCount: 2, config: { proxy: { timeouts: { upstream: '2s' } } } });
    const c = cluster;
    const client = new Client(c.proxyUrl);
    const { json } = await client.request('POST', '/api/counter');
    c.lb.failover.moveSession = () => new Promise<never>(() => undefined);
    // Down in the registry only (no health event, so no proactive move): the next request of
    // the session asks for a move. Workers learn the state over IPC; until then it is served.
    c.lb.registry.setHealthy(json.node as string, false);
    const refused = await waitFor(async () => {
      const answer = await client.request('POST', '/api/counter');
      return answer.status === 200 ? undefined : answer;
    });
    expect(refused.status).toBe(504);
    expect(refused.json.error).toBe('SLB_UPSTREAM_TIMEOUT');
    const fresh = await new Client(c.proxyUrl).request('POST', '/api/counter');
    expect(fresh.status).toBe(200);
    expect(fresh.json.node).not.toBe(json.node);
  });

  it('a replay check that never answers: the POST is not replayed (502), its write survives once', async () => {
    cluster = await startCluster({ nodeCount: 2, config: { proxy: { timeouts: { upstream: '2s' } } } });
    const c = cluster;
    const client = new Client(c.proxyUrl);
    await client.request('POST', '/api/counter');
    c.lb.mayReplay = () => new Promise<boolean>(() => undefined);
    await expectCrashNotReplayed(client, 2);
  });
});

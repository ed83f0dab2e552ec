import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startDemoNode, type DemoNode } from '../../backends/demo/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { SECRET_HEADER, SESSION_HEADER, sessionKeyOf } from '../../src/protocol.js';
import { buildReplicationServer, MemoryReplicaStore, REPLICA_ROUTES } from '../../src/replication/index.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../integration/harness.js';
import { clientRequest, startFaultCluster, type FaultCluster } from './fault-cluster.js';
import { rawExchange } from './raw-client.js';
import { ReplicaRelay } from './replica-relay.js';

const SECRET = 'replication-secret-0123456789';
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** The proxy's replication server (real store, real Fastify app) on `port` (0: any). */
async function startStore(
  store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 }),
  port = 0,
): Promise<{ store: MemoryReplicaStore; app: FastifyInstance; port: number }> {
  const app = await buildReplicationServer({ store, secret: SECRET, logger: createSilentLogger() });
  await app.listen({ host: '127.0.0.1', port });
  cleanups.push(() => app.close());
  return { store, app, port: (app.server.address() as AddressInfo).port };
}

async function write(port: number, body: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`http://127.0.0.1:${port}${REPLICA_ROUTES.write}`, {
    method: 'POST',
    headers: { [SECRET_HEADER]: SECRET, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

const record = (key: string, version: number) => ({
  key,
  version,
  lastAccessAt: Date.now(),
  data: { values: { count: version } },
});

describe('replication endpoint abuse (authenticated writes that must still lose)', () => {
  it('a captured write replayed later is stale and changes nothing', async () => {
    const { store, port } = await startStore();
    const captured = { node: 'node-1', records: [record('k1', 1)] };
    expect((await write(port, captured)).json.outcomes).toEqual(['ok']);
    expect((await write(port, { node: 'node-1', records: [record('k1', 2)] })).json.outcomes).toEqual(['ok']);
    expect((await write(port, captured)).json.outcomes).toEqual(['stale']);
    expect(await store.read('k1')).toMatchObject({ version: 2, data: { values: { count: 2 } } });
  });

  it('writes delivered out of order: the older one, arriving last, is stale', async () => {
    const { store, port } = await startStore();
    expect((await write(port, { node: 'node-1', records: [record('k1', 3)] })).json.outcomes).toEqual(['ok']);
    expect((await write(port, { node: 'node-1', records: [record('k1', 2)] })).json.outcomes).toEqual([
      'stale',
    ]);
    // Within one batch too: newest wins whatever the order.
    expect(
      (await write(port, { node: 'node-1', records: [record('k2', 5), record('k2', 4)] })).json.outcomes,
    ).toEqual(['ok', 'stale']);
    expect(await store.read('k1')).toMatchObject({ version: 3 });
    expect(await store.read('k2')).toMatchObject({ version: 5 });
  });

  it('a write naming another node for a session it does not own is refused, even with a higher version', async () => {
    const { store, port } = await startStore();
    await write(port, { node: 'node-1', records: [record('k1', 1)] });
    expect((await write(port, { node: 'node-2', records: [record('k1', 99)] })).json.outcomes).toEqual([
      'not-owner',
    ]);
    expect(await store.read('k1')).toMatchObject({ owner: 'node-1', version: 1 });
  });

  it('clients cannot reach the replication routes through the proxy: 404, the node never sees it', async () => {
    const cluster: FaultCluster = await startFaultCluster();
    cleanups.push(() => cluster.close());
    for (const path of Object.values(REPLICA_ROUTES)) {
      const answer = await clientRequest(cluster.proxyPort, {
        method: 'POST',
        path,
        body: JSON.stringify({ node: 'node-1', records: [record('k1', 9)] }),
        headers: { [SECRET_HEADER]: SECRET },
      });
      expect(answer.status).toBe(404);
    }
    expect(cluster.node.appRequests).toEqual([]);
  });

  it('clients cannot open the replication channel through the proxy: the upgrade gets 404, the node never sees it', async () => {
    const cluster: FaultCluster = await startFaultCluster();
    cleanups.push(() => cluster.close());
    const { response } = await rawExchange(
      cluster.proxyPort,
      `GET ${REPLICA_ROUTES.channel} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\n` +
        `upgrade: stickylb-replica/1\r\n${SECRET_HEADER}: ${SECRET}\r\n\r\n`,
    );
    expect(response?.status).toBe(404);
    expect(cluster.node.appRequests).toEqual([]);
  });
});

/** A demo node (sync replication) writing to `replicationPort`; its log lines are kept. */
async function startNode(replicationPort: number): Promise<{ node: DemoNode; logs: any[] }> {
  const logs: any[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const port = await freePort();
  const config = parseConfig({
    log: { level: 'info' },
    replication: {
      mode: 'sync',
      listen: { host: '127.0.0.1', port: replicationPort },
      secret: SECRET,
      timeout: '300ms',
    },
    nodes: [{ id: 'node-a', url: `http://127.0.0.1:${port}` }],
  });
  const node = await startDemoNode({ config, nodeId: 'node-a', logger: pino({ level: 'info' }, sink) });
  cleanups.push(() => node.close());
  return { node, logs };
}

const SESSION_ID = `${randomBytes(16).toString('base64url')}.r1.mac`;

async function increment(node: DemoNode): Promise<{ status: number; json: any }> {
  const response = await fetch(`${node.url}/api/counter`, {
    method: 'POST',
    headers: { [SESSION_HEADER]: SESSION_ID },
  });
  return { status: response.status, json: await response.json() };
}

async function failedRequests(node: DemoNode): Promise<number> {
  const metrics = (await (
    await fetch(`${node.url}/_stickylb/metrics`, { headers: { [SECRET_HEADER]: SECRET } })
  ).json()) as { replication: { failedRequests: number } };
  return metrics.replication.failedRequests;
}

describe('replica store down or slow (sync mode): never acknowledged, always loud', () => {
  it('store stopped: 503 to the client, a warning and a failure count; back up: the replica holds every acknowledged write', async () => {
    const first = await startStore();
    const { node, logs } = await startNode(first.port);
    expect(await increment(node)).toMatchObject({ status: 200, json: { count: 1 } });

    await first.app.close();
    const refused = await increment(node);
    expect(refused).toMatchObject({ status: 503, json: { error: 'SLB_REPLICA_UNAVAILABLE' } });
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
    expect(await failedRequests(node)).toBeGreaterThan(0);
    expect(logs.some((line) => line.level >= 40 && /replica store unavailable/.test(line.msg))).toBe(true);

    // The same store comes back on the same port (a proxy restart would bring an empty one: re-seed).
    await startStore(first.store, first.port);
    const acknowledged = await waitFor(async () => {
      const answer = await increment(node);
      return answer.status === 200 ? answer : undefined;
    });
    const replica = await first.store.read(sessionKeyOf(SESSION_ID));
    expect(replica?.data).toMatchObject({ values: { count: acknowledged.json.count } });
    expect(replica?.version).toBe(node.store.peek(sessionKeyOf(SESSION_ID))?.version);
  });

  it('store slower than replication.timeout: 503, not a late 200; what it applies late is superseded in order', async () => {
    const { store, port } = await startStore();
    const relay = await ReplicaRelay.start(port);
    cleanups.push(() => relay.close());
    const { node } = await startNode(relay.port);
    expect(await increment(node)).toMatchObject({ status: 200, json: { count: 1 } });

    relay.mode = 'hold';
    expect(await increment(node)).toMatchObject({ status: 503, json: { error: 'SLB_REPLICA_UNAVAILABLE' } });
    expect(await failedRequests(node)).toBeGreaterThan(0);
    relay.release();

    const acknowledged = await waitFor(async () => {
      const answer = await increment(node);
      return answer.status === 200 ? answer : undefined;
    });
    const local = node.store.peek(sessionKeyOf(SESSION_ID));
    await waitFor(async () => (await store.read(sessionKeyOf(SESSION_ID)))?.version === local?.version);
    expect((await store.read(sessionKeyOf(SESSION_ID)))?.data).toMatchObject({
      values: { count: acknowledged.json.count },
    });
  });
});

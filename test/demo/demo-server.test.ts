import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { buildDemoApp, startDemoNode, type DemoNode } from '../../backends/demo/index.js';
import { parseConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { SESSION_HEADER, SESSION_USED_HEADER, sessionKeyOf } from '../../src/protocol.js';
import { buildReplicationServer, MemoryReplicaStore } from '../../src/replication/index.js';
import { loadSecret } from '../../src/secret-file.js';
import { freePort } from '../helpers/free-port.js';

const SESSION_ID = 'w3bs0ck3ts3ss10n.r1.m4c';

/** Opens a WebSocket and collects its messages as text. */
function openSocket(
  url: string,
  headers: Record<string, string>,
): Promise<{ socket: WebSocket; messages: string[] }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    const messages: string[] = [];
    socket.on('message', (data) => messages.push(String(data)));
    socket.once('open', () => resolve({ socket, messages }));
    socket.once('error', reject);
  });
}

async function waitFor(predicate: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !predicate(); i += 1) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(predicate()).toBe(true);
}

describe('demo node on a real socket', () => {
  let app: FastifyInstance | undefined;
  let node: DemoNode | undefined;
  let replication: FastifyInstance | undefined;

  afterEach(async () => {
    await app?.close();
    await node?.close();
    await replication?.close();
    app = undefined;
    node = undefined;
    replication = undefined;
  });

  async function listen(): Promise<string> {
    app = await buildDemoApp({ nodeId: 'node-ws' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('not listening');
    return `ws://127.0.0.1:${address.port}/ws`;
  }

  it('sends the node and session id first on /ws, then echoes every message', async () => {
    const { socket, messages } = await openSocket(await listen(), { [SESSION_HEADER]: SESSION_ID });
    await waitFor(() => messages.length === 1);
    socket.send('ping');
    socket.send('{"hello":"world"}');
    await waitFor(() => messages.length === 3);
    expect(messages).toEqual([`{"node":"node-ws","sessionId":"${SESSION_ID}"}`, 'ping', '{"hello":"world"}']);
    socket.close();
  });

  it('survives a client that resets its WebSocket connection', async () => {
    const url = await listen();
    const { socket, messages } = await openSocket(url, { [SESSION_HEADER]: SESSION_ID });
    await waitFor(() => messages.length === 1);
    socket.terminate();
    const again = await openSocket(url, { [SESSION_HEADER]: SESSION_ID });
    await waitFor(() => again.messages.length === 1);
    again.socket.close();
  });

  it('stops reading a WebSocket client that does not read its echoes, and echoes everything once it does', async () => {
    const { socket, messages } = await openSocket(await listen(), { [SESSION_HEADER]: SESSION_ID });
    try {
      await waitFor(() => messages.length === 1);
      const clients = (app as unknown as { websocketServer: { clients: Set<WebSocket> } }).websocketServer
        .clients;
      const [onNode] = [...clients];
      if (onNode === undefined) throw new Error('no server-side socket');
      socket.pause(); // takes nothing more: the node's echoes pile up on its side
      const frames = 64;
      const frame = Buffer.alloc(1024 * 1024, 7);
      for (let i = 0; i < frames; i++) socket.send(frame);
      // The node stops reading this client with about its 1 MB mark of echoes waiting.
      for (let i = 0; i < 200 && !onNode.isPaused; i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(onNode.isPaused).toBe(true);
      expect(onNode.bufferedAmount).toBeLessThanOrEqual(3 * frame.length);
      socket.resume();
      for (let i = 0; i < 300 && messages.length < 1 + frames; i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(messages).toHaveLength(1 + frames);
      expect(messages.slice(1).every((message) => message.length === frame.length)).toBe(true);
      expect(onNode.isPaused).toBe(false);
    } finally {
      socket.close();
    }
  });

  it('keeps idle keep-alive connections longer than the proxy does (65 s)', async () => {
    await listen();
    expect(app?.server.keepAliveTimeout).toBe(65_000);
  });

  it('starts from a config with startDemoNode, serves real HTTP and replicates every write', async () => {
    const [port, replicationPort] = await Promise.all([freePort(), freePort()]);
    const dir = mkdtempSync(join(tmpdir(), 'stickylb-demo-'));
    const config = parseConfig({
      log: { level: 'silent' },
      replication: {
        listen: { host: '127.0.0.1', port: replicationPort },
        secretFile: join(dir, 'replication-secret'),
      },
      nodes: [
        { id: 'node-a', url: `http://127.0.0.1:${port}` },
        { id: 'node-b', url: 'http://127.0.0.1:1' },
      ],
    });
    const replicas = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
    replication = await buildReplicationServer({
      store: replicas,
      secret: loadSecret(config.replication),
      logger: createSilentLogger(),
    });
    await replication.listen({ host: '127.0.0.1', port: replicationPort });
    node = await startDemoNode({ config, nodeId: 'node-a', logger: createSilentLogger() });
    expect(node.url).toBe(`http://127.0.0.1:${port}`);

    const health = await fetch(`${node.url}/health`);
    expect(await health.json()).toEqual({ status: 'ok', node: 'node-a' });

    const headers = { [SESSION_HEADER]: SESSION_ID };
    await fetch(`${node.url}/api/counter`, { method: 'POST', headers });
    const second = await fetch(`${node.url}/api/counter`, { method: 'POST', headers });
    expect(Number(second.headers.get(SESSION_USED_HEADER))).toBe(
      node.store.peek(sessionKeyOf(SESSION_ID))?.version,
    );
    expect(await second.json()).toEqual({ sessionId: SESSION_ID, node: 'node-a', count: 2 });
    expect(node.store.size).toBe(1);
    // sync mode: acknowledged means already in the replica store, version and all.
    const replica = await replicas.read(sessionKeyOf(SESSION_ID));
    const local = node.store.peek(sessionKeyOf(SESSION_ID));
    expect(replica).toMatchObject({
      owner: 'node-a',
      version: local?.version,
      data: { values: { count: 2 } },
    });
  });

  it('refuses to acknowledge a write it could not replicate (sync mode) and stays up', async () => {
    const [port, replicationPort] = await Promise.all([freePort(), freePort()]);
    const dir = mkdtempSync(join(tmpdir(), 'stickylb-demo-'));
    const config = parseConfig({
      log: { level: 'silent' },
      replication: {
        listen: { host: '127.0.0.1', port: replicationPort },
        secretFile: join(dir, 'replication-secret'),
        timeout: '1s',
      },
      nodes: [{ id: 'node-a', url: `http://127.0.0.1:${port}` }],
    });
    node = await startDemoNode({ config, nodeId: 'node-a', logger: createSilentLogger() });
    const response = await fetch(`${node.url}/api/counter`, {
      method: 'POST',
      headers: { [SESSION_HEADER]: SESSION_ID },
    });
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ error: 'SLB_REPLICA_UNAVAILABLE' });
    expect((await fetch(`${node.url}/health`)).status).toBe(200);
  });

  it('refuses a node id the config does not list', async () => {
    const config = parseConfig({
      log: { level: 'silent' },
      nodes: [{ id: 'node-a', url: 'http://127.0.0.1:1' }],
    });
    await expect(
      startDemoNode({ config, nodeId: 'node-z', logger: createSilentLogger() }),
    ).rejects.toMatchObject({ code: 'SLB_CONFIG_INVALID' });
  });
});

import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { SECRET_HEADER } from '../../src/protocol.js';
import {
  ChannelReplicaTransport,
  MemoryReplicaStore,
  REPLICA_ROUTES,
  buildReplicationServer,
  type ReplicationServerOptions,
} from '../../src/replication/index.js';
import {
  CHANNEL_PROTOCOL,
  FrameParser,
  FrameType,
  encodeFrame,
  type Frame,
} from '../../src/replication/replica-frames.js';

const SECRET = 'channel-secret-0123456789';
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

interface LogLine {
  level: number;
  msg: string;
  reason?: string;
}

/** A replication server (real Fastify app, real memory store) on 127.0.0.1; its log lines are kept. */
async function startServer(
  options: { port?: number; channel?: ReplicationServerOptions['channel'] } = {},
): Promise<{
  app: FastifyInstance;
  store: MemoryReplicaStore;
  port: number;
  endpoint: string;
  logs: LogLine[];
}> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const store = new MemoryReplicaStore({ idleTimeoutMs: 60_000 });
  const app = await buildReplicationServer({
    store,
    secret: SECRET,
    logger: pino({ level: 'debug' }, sink),
    ...(options.channel ? { channel: options.channel } : {}),
  });
  // Outside the ephemeral range (freePort): a test may start it again on the same port.
  await app.listen({ host: '127.0.0.1', port: options.port ?? (await freePort()) });
  cleanups.push(() => app.close());
  const port = (app.server.address() as AddressInfo).port;
  return { app, store, port, endpoint: `http://127.0.0.1:${port}`, logs };
}

function startTransport(
  endpoint: string,
  options: { secret?: string; timeoutMs?: number } = {},
): ChannelReplicaTransport {
  const transport = new ChannelReplicaTransport({
    endpoint,
    secret: options.secret ?? SECRET,
    timeoutMs: options.timeoutMs ?? 5000,
  });
  cleanups.push(() => transport.close());
  return transport;
}

const recordJson = (key: string, version: number): { key: string; json: string } => ({
  key,
  json: JSON.stringify({ key, version, lastAccessAt: Date.now(), data: { version } }),
});

/** A write frame of one record, version 1, from node-1. */
const writeFrame = (id: number, key: string): Buffer =>
  encodeFrame(
    FrameType.write,
    id,
    JSON.stringify({ node: 'node-1', records: [JSON.parse(recordJson(key, 1).json) as unknown] }),
  );

/** A raw TCP client: sends the upgrade request with `headers`, keeps every byte answered. */
class RawClient {
  readonly received: Buffer[] = [];
  readonly closed: Promise<unknown>;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.received.push(chunk));
    socket.on('error', () => {});
    this.closed = once(socket, 'close');
  }

  static async open(port: number, head: string): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1');
    cleanups.push(() => {
      socket.destroy();
    });
    await once(socket, 'connect');
    const client = new RawClient(socket);
    socket.write(head);
    return client;
  }

  /** Opens a switched channel (secret right), resolved once the 101 arrived. */
  static async channel(port: number): Promise<RawClient> {
    const client = await RawClient.open(port, upgradeHead());
    await vi.waitFor(() => expect(client.text()).toContain('\r\n\r\n'));
    expect(client.text()).toMatch(/^HTTP\/1\.1 101 /);
    client.received.length = 0;
    return client;
  }

  text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }

  /** Answer frames received so far. */
  frames(): Frame[] {
    const parser = new FrameParser({ maxFrameBytes: 1 << 16, isKnownType: () => true });
    const frames: Frame[] = [];
    parser.push(Buffer.concat(this.received), (frame) => frames.push(frame));
    return frames;
  }
}

function upgradeHead(
  options: { path?: string; secret?: string | undefined; upgrade?: string; method?: string } = {},
): string {
  const secret = 'secret' in options ? options.secret : SECRET;
  return (
    `${options.method ?? 'GET'} ${options.path ?? REPLICA_ROUTES.channel} HTTP/1.1\r\nhost: x\r\n` +
    `connection: Upgrade\r\nupgrade: ${options.upgrade ?? CHANNEL_PROTOCOL}\r\n` +
    (secret === undefined ? '' : `${SECRET_HEADER}: ${secret}\r\n`) +
    '\r\n'
  );
}

describe('ChannelReplicaTransport', () => {
  it('writes, touches, removes and reads the epoch over one connection', async () => {
    const { store, endpoint, app } = await startServer();
    const transport = startTransport(endpoint);
    const written = await transport.write('node-1', [recordJson('k1', 1), recordJson('k2', 1)]);
    expect(written).toEqual({ epoch: store.epoch, outcomes: ['ok', 'ok'] });
    expect(await transport.write('node-1', [recordJson('k1', 1)])).toMatchObject({ outcomes: ['stale'] });
    expect(await transport.write('node-2', [recordJson('k2', 5)])).toMatchObject({ outcomes: ['not-owner'] });
    await expect(transport.touch('node-1', ['k1'])).resolves.toEqual({ epoch: store.epoch });
    await expect(transport.remove('node-1', ['k2'])).resolves.toEqual({ epoch: store.epoch });
    await expect(transport.epoch()).resolves.toBe(store.epoch);
    expect(await store.read('k1')).toMatchObject({ version: 1, owner: 'node-1', data: { version: 1 } });
    expect(await store.read('k2')).toBeUndefined();
    expect(store.stats()).toMatchObject({ touches: 1, removes: 1 });
    // Every call went over one switched connection: no HTTP request reached a route.
    expect(await connectionsOf(app)).toBe(1);
  });

  it('reads back sessions as big as a write may carry, several at once, without cutting the channel', async () => {
    const { store, endpoint, logs } = await startServer();
    const transport = startTransport(endpoint);
    const at = Date.now();
    const big = (key: string, mib: number) => ({
      key,
      version: 1,
      lastAccessAt: at,
      data: { blob: 'x'.repeat(Math.round(mib * 1024 * 1024)) },
    });
    await store.write('node-1', [big('one', 7.5), big('a', 3), big('b', 3), big('c', 3)]);
    const [one, ...three] = await Promise.all(
      ['one', 'a', 'b', 'c'].map((key) => transport.read('node-1', key)),
    );
    expect(one?.record).toEqual({ ...big('one', 7.5), owner: 'node-1' });
    expect(three.map((answer) => answer.record?.key)).toEqual(['a', 'b', 'c']);
    expect(await transport.read('node-1', 'none')).toEqual({ epoch: store.epoch, record: undefined });
    expect(logs.filter((line) => line.msg === 'replication channel closed')).toEqual([]);
  });

  it('refuses a read answer cut short (no room for its epoch) instead of reading it as no session', async () => {
    const fake = await FakeStore.start();
    const transport = startTransport(`http://127.0.0.1:${fake.port}`);
    const reading = transport.read('node-1', 'k1');
    const [socket, frame] = await fake.nextFrame();
    expect(frame.type).toBe(FrameType.read);
    const answer = encodeFrame(FrameType.record, frame.id, '');
    socket.write(answer);
    await expect(reading).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringMatching(/truncated/),
    });
  });

  it('keeps many writes in flight on one connection and settles each with its own answer', async () => {
    const { store, endpoint, app } = await startServer();
    const transport = startTransport(endpoint);
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, i) =>
        transport.write('node-1', [recordJson(`k${i % 100}`, 1 + Math.floor(i / 100))]),
      ),
    );
    expect(answers.every((answer) => answer.outcomes.length === 1 && answer.outcomes[0] === 'ok')).toBe(true);
    expect(store.stats()).toMatchObject({ writeCalls: 300, records: 100 });
    expect(await store.read('k99')).toMatchObject({ version: 3 });
    expect(await connectionsOf(app)).toBe(1);
  });

  it('rejects with ReplicaStoreError naming the 401 when the secret is wrong, and stores nothing', async () => {
    const { store, endpoint } = await startServer();
    const transport = startTransport(endpoint, { secret: 'not-the-secret-at-all' });
    await expect(transport.write('node-1', [recordJson('k1', 1)])).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringContaining('401'),
    });
    expect(store.stats().records).toBe(0);
  });

  it('answers a body that fails the checks with the same 400 code as HTTP, and the connection stays usable', async () => {
    const { store, endpoint } = await startServer();
    const transport = startTransport(endpoint);
    const bad = { key: 'a/b', json: '{"key":"a/b","version":1,"lastAccessAt":1,"data":{}}' };
    await expect(transport.write('node-1', [bad])).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringContaining('SLB_BAD_REQUEST'),
    });
    expect(await transport.write('node-1', [recordJson('k1', 1)])).toMatchObject({ outcomes: ['ok'] });
    expect(store.stats().records).toBe(1);
  });

  it('fails a call in flight when the store closes the connection and does not come back', async () => {
    const fake = await FakeStore.start();
    const transport = startTransport(`http://127.0.0.1:${fake.port}`);
    const pending = transport.write('node-1', [recordJson('k1', 1)]);
    const [peer] = await fake.nextFrame();
    await fake.stop();
    peer.destroy();
    await expect(pending).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
  });

  it('sends a call once more on a new connection when the store closed the old one, and takes that answer', async () => {
    const { store, port } = await startServer();
    const relay = await Relay.start(port);
    const transport = startTransport(`http://127.0.0.1:${relay.port}`);
    await transport.epoch();
    relay.dropNextRequest = true;
    await expect(transport.write('node-1', [recordJson('k1', 1)])).resolves.toMatchObject({
      outcomes: ['ok'],
    });
    expect(relay.connections).toBe(2);
    expect(await store.read('k1')).toMatchObject({ version: 1 });
  });

  it('fails every call in flight after timeoutMs without an answer, never resolving one', async () => {
    const fake = await FakeStore.start();
    const transport = startTransport(`http://127.0.0.1:${fake.port}`, { timeoutMs: 100 });
    const pending = [transport.write('node-1', [recordJson('k1', 1)]), transport.epoch()];
    const results = await Promise.allSettled(pending);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringContaining('did not answer within 100 ms'),
    });
    // The late store is cut off: nothing it sends later can settle a call.
    await fake.stop();
  });

  it('reconnects once the store is back on its port', async () => {
    const first = await startServer();
    const transport = startTransport(first.endpoint);
    await transport.epoch();
    await first.app.close();
    await expect(transport.epoch()).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    const second = await startServer({ port: first.port });
    await vi.waitFor(async () => expect(await transport.epoch()).toBe(second.store.epoch), { timeout: 5000 });
  });

  it('rejects calls after close()', async () => {
    const { endpoint } = await startServer();
    const transport = startTransport(endpoint);
    await transport.epoch();
    transport.close();
    await expect(transport.epoch()).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
  });
});

describe('replication channel upgrade', () => {
  it.each([
    { case: 'no secret', head: upgradeHead({ secret: undefined }), status: 401, code: 'SLB_UNAUTHORIZED' },
    { case: 'a wrong secret', head: upgradeHead({ secret: 'nope' }), status: 401, code: 'SLB_UNAUTHORIZED' },
    {
      case: 'another path',
      head: upgradeHead({ path: REPLICA_ROUTES.write }),
      status: 404,
      code: 'SLB_NOT_FOUND',
    },
    {
      case: 'another protocol',
      head: upgradeHead({ upgrade: 'websocket' }),
      status: 400,
      code: 'SLB_BAD_REQUEST',
    },
    { case: 'POST', head: upgradeHead({ method: 'POST' }), status: 400, code: 'SLB_BAD_REQUEST' },
  ])(
    'refuses $case with $status JSON and closes, before any frame is read',
    async ({ head, status, code }) => {
      const { port, store } = await startServer();
      const client = await RawClient.open(
        port,
        head + encodeFrame(FrameType.write, 1, '{}').toString('latin1'),
      );
      await client.closed;
      const text = client.text();
      expect(text).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4))).toMatchObject({ error: code });
      expect(store.stats().writeCalls).toBe(0);
    },
  );

  it('keeps the HTTP routes working beside the channel', async () => {
    const { endpoint, store } = await startServer();
    await startTransport(endpoint).epoch();
    const response = await fetch(`${endpoint}${REPLICA_ROUTES.epoch}`, {
      headers: { [SECRET_HEADER]: SECRET },
    });
    expect(await response.json()).toEqual({ epoch: store.epoch });
  });
});

describe('replication channel answers', () => {
  it('answers frames of one chunk in the order they arrived, whatever their kind', async () => {
    const { port } = await startServer();
    const client = await RawClient.channel(port);
    client.socket.write(
      Buffer.concat([
        writeFrame(1, 'k1'),
        encodeFrame(FrameType.epoch, 2, ''),
        encodeFrame(FrameType.write, 3, '{}'),
        encodeFrame(FrameType.touch, 4, JSON.stringify({ node: 'node-1', keys: ['k1'] })),
        encodeFrame(FrameType.epoch, 5, ''),
        encodeFrame(FrameType.remove, 6, JSON.stringify({ node: 'node-1', keys: ['k1'] })),
        encodeFrame(FrameType.touch, 7, '[]'),
        encodeFrame(FrameType.epoch, 8, ''),
      ]),
    );
    await vi.waitFor(() => expect(client.frames()).toHaveLength(8));
    expect(client.frames().map((frame) => [frame.id, frame.type])).toEqual([
      [1, FrameType.ack],
      [2, FrameType.ack],
      [3, FrameType.error],
      [4, FrameType.ack],
      [5, FrameType.ack],
      [6, FrameType.ack],
      [7, FrameType.error],
      [8, FrameType.ack],
    ]);
  });
});

describe('replication channel bad input', () => {
  it.each([
    {
      case: 'an oversized length',
      bytes: Buffer.from([0x7f, 0xff, 0xff, 0xff, FrameType.write]),
      reason: /exceeds the limit/,
    },
    {
      case: 'garbage',
      bytes: Buffer.from('this is not a frame at all\r\n'),
      reason: /exceeds the limit|unknown frame type/,
    },
    { case: 'an unknown frame type', bytes: encodeFrame(0x33, 1, ''), reason: /unknown frame type 0x33/ },
    {
      case: 'an answer frame from a node',
      bytes: encodeFrame(FrameType.ack, 1, ''),
      reason: /unknown frame type 0x81/,
    },
  ])(
    'closes the connection on $case with a logged reason; the server stays up',
    async ({ bytes, reason }) => {
      const { port, logs, store, endpoint } = await startServer();
      const client = await RawClient.channel(port);
      client.socket.write(bytes);
      await client.closed;
      expect(
        logs.some((line) => line.msg === 'replication channel closed' && reason.test(line.reason ?? '')),
      ).toBe(true);
      expect(store.stats().writeCalls).toBe(0);
      await expect(startTransport(endpoint).epoch()).resolves.toBe(store.epoch);
    },
  );

  it('answers frames that arrived before bad input, then closes', async () => {
    const { port } = await startServer();
    const client = await RawClient.channel(port);
    client.socket.write(
      Buffer.concat([encodeFrame(FrameType.epoch, 41, ''), Buffer.from([0xff, 0xff, 0xff, 0xff])]),
    );
    await client.closed;
    expect(client.frames().map((frame) => [frame.type, frame.id])).toEqual([[FrameType.ack, 41]]);
  });

  it('acknowledges writes, touches and removes applied before bad input in the same chunk, then closes', async () => {
    const { port, store, logs, app } = await startServer();
    const client = await RawClient.channel(port);
    client.socket.write(
      Buffer.concat([
        writeFrame(41, 'k1'),
        encodeFrame(FrameType.touch, 42, JSON.stringify({ node: 'node-1', keys: ['k1'] })),
        writeFrame(43, 'k2'),
        encodeFrame(FrameType.remove, 44, JSON.stringify({ node: 'node-1', keys: ['k2'] })),
        Buffer.from([0xff, 0xff, 0xff, 0xff]),
      ]),
    );
    await client.closed;
    expect(client.frames().map((frame) => [frame.type, frame.id])).toEqual([
      [FrameType.ack, 41],
      [FrameType.ack, 42],
      [FrameType.ack, 43],
      [FrameType.ack, 44],
    ]);
    expect(await store.read('k1')).toMatchObject({ version: 1 });
    expect(await store.read('k2')).toBeUndefined();
    expect(logs.some((line) => /exceeds the limit/.test(line.reason ?? ''))).toBe(true);
    // The server's side is closed too, not left half open.
    await vi.waitFor(async () => expect(await connectionsOf(app)).toBe(0));
  });

  it('puts half frames together, whatever the cut', async () => {
    const { port, store } = await startServer();
    const client = await RawClient.channel(port);
    const body = JSON.stringify({ node: 'node-1', records: [JSON.parse(recordJson('k1', 1).json)] });
    const frame = encodeFrame(FrameType.write, 5, body);
    for (let at = 0; at < frame.length; at += 7) {
      client.socket.write(frame.subarray(at, at + 7));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await vi.waitFor(() => expect(client.frames()).toHaveLength(1));
    expect(client.frames()[0]).toMatchObject({ type: FrameType.ack, id: 5 });
    expect(await store.read('k1')).toMatchObject({ version: 1 });
  });

  it('keeps a channel whose reads always end mid-frame while frames keep completing', async () => {
    // A proxy far behind reads full socket buffers, each ending inside a frame: the frame
    // timeout must measure one partial frame's wait, not the time since the last boundary.
    const frameTimeoutMs = 400;
    const { port, store, logs } = await startServer({ channel: { frameTimeoutMs } });
    const client = await RawClient.channel(port);
    const count = 40;
    const frames = Array.from({ length: count }, (_, i) => writeFrame(i + 1, `k${i}`));
    const cut = 5;
    client.socket.write((frames[0] as Buffer).subarray(0, cut));
    const startedAt = Date.now();
    for (let i = 1; i < count; i++) {
      // Each gap is far below frameTimeoutMs; all of them together are well above it.
      await new Promise((resolve) => setTimeout(resolve, 25));
      client.socket.write(
        Buffer.concat([(frames[i - 1] as Buffer).subarray(cut), (frames[i] as Buffer).subarray(0, cut)]),
      );
    }
    // The test only shows the fix if the channel lived past one frameTimeoutMs.
    expect(Date.now() - startedAt).toBeGreaterThan(2 * frameTimeoutMs);
    client.socket.write((frames[count - 1] as Buffer).subarray(cut));
    await vi.waitFor(() => expect(client.frames()).toHaveLength(count));
    expect(client.frames().map((frame) => frame.id)).toEqual(frames.map((_, i) => i + 1));
    expect(client.socket.destroyed).toBe(false);
    expect(logs.filter((line) => line.msg === 'replication channel closed')).toEqual([]);
    expect(store.stats().records).toBe(count);
  });

  it('lets go of the connection of every peer that died, mid-frame or between frames', async () => {
    // A node killed with SIGKILL and started again opens a new channel each time; the kernel
    // closes the old one with a FIN. The proxy must close its side too, not keep the socket
    // (and any half frame) until the idle timeout, one more per restart.
    const { app, port } = await startServer();
    const connections = (): Promise<number> =>
      new Promise((resolve, reject) =>
        app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
      );
    const frame = writeFrame(1, 'k1');
    for (let restart = 0; restart < 4; restart++) {
      const client = await RawClient.channel(port);
      if (restart % 2 === 0) client.socket.write(frame.subarray(0, frame.length - 3));
      await vi.waitFor(async () => expect(await connections()).toBe(1));
      client.socket.destroy();
      await vi.waitFor(async () => expect(await connections()).toBe(0), { timeout: 5000 });
    }
    const live = await RawClient.channel(port);
    live.socket.write(writeFrame(2, 'k2'));
    await vi.waitFor(() => expect(live.frames()).toHaveLength(1));
    expect(await connections()).toBe(1);
  });

  it('cuts off a peer that starts a frame and stalls', async () => {
    const { port, logs, store } = await startServer({ channel: { frameTimeoutMs: 50 } });
    const client = await RawClient.channel(port);
    const frame = encodeFrame(FrameType.write, 1, JSON.stringify({ node: 'node-1', records: [] }));
    client.socket.write(frame.subarray(0, frame.length - 3));
    await client.closed;
    expect(logs.some((line) => /frame not completed within 50 ms/.test(line.reason ?? ''))).toBe(true);
    expect(store.stats().writeCalls).toBe(0);
  });

  it('cuts off a peer that sends requests but does not read the answers', async () => {
    const { port, logs, store, endpoint } = await startServer({ channel: { maxUnreadBytes: 64 * 1024 } });
    const client = await RawClient.channel(port);
    client.socket.pause();
    // Each bad body is answered with an error frame ~8× its size: the answers pile up
    // in the kernel's buffers, then in the server's, until the limit cuts the peer off.
    const frame = encodeFrame(FrameType.write, 1, '{}');
    client.socket.write(Buffer.concat(Array.from({ length: 100_000 }, () => frame)));
    await vi.waitFor(
      () => expect(logs.some((line) => line.reason === 'peer does not read its answers')).toBe(true),
      { timeout: 10_000 },
    );
    expect(store.stats().writeCalls).toBe(0);
    await expect(startTransport(endpoint).epoch()).resolves.toBe(store.epoch);
  });

  it('cuts off a peer that asks for sessions but does not read them, past maxUnreadRecordBytes', async () => {
    const { port, logs, store } = await startServer({ channel: { maxUnreadRecordBytes: 1024 * 1024 } });
    await store.write('node-1', [
      { key: 'big', version: 1, lastAccessAt: Date.now(), data: 'x'.repeat(256 * 1024) },
    ]);
    const client = await RawClient.channel(port);
    client.socket.pause();
    const read = encodeFrame(FrameType.read, 1, JSON.stringify({ node: 'node-1', key: 'big' }));
    client.socket.write(Buffer.concat(Array.from({ length: 400 }, () => read)));
    await vi.waitFor(
      () => expect(logs.some((line) => line.reason === 'peer does not read its answers')).toBe(true),
      { timeout: 10_000 },
    );
  });

  it('closes a channel idle for idleTimeoutMs', async () => {
    const { port, logs } = await startServer({ channel: { idleTimeoutMs: 50 } });
    const client = await RawClient.channel(port);
    await client.closed;
    expect(logs.some((line) => line.reason === 'idle')).toBe(true);
  });

  it('refuses a frame larger than maxFrameBytes before reading its body', async () => {
    const { port, logs } = await startServer({ channel: { maxFrameBytes: 64 } });
    const client = await RawClient.channel(port);
    client.socket.write(encodeFrame(FrameType.write, 1, 'x'.repeat(100)).subarray(0, 9));
    await client.closed;
    expect(
      logs.some((line) => /frame length 105 exceeds the limit of 64 bytes/.test(line.reason ?? '')),
    ).toBe(true);
  });
});

/** Connections the server holds open now (switched channels stay counted by the net.Server). */
function connectionsOf(app: FastifyInstance): Promise<number> {
  return new Promise((resolve, reject) =>
    app.server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

/** A TCP server speaking just the upgrade, that never answers frames (a store that hangs). */
class FakeStore {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #frames: Array<[Socket, Frame]> = [];

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeStore> {
    const server = createServer();
    const fake = new FakeStore(server);
    server.on('connection', (socket) => {
      fake.#sockets.add(socket);
      socket.on('error', () => {});
      let isSwitched = false;
      const parser = new FrameParser({ maxFrameBytes: 1 << 20, isKnownType: () => true });
      socket.on('data', (chunk: Buffer) => {
        if (!isSwitched) {
          isSwitched = true;
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${CHANNEL_PROTOCOL}\r\n\r\n`,
          );
          const end = chunk.indexOf('\r\n\r\n');
          chunk = chunk.subarray(end + 4);
        }
        parser.push(chunk, (frame) => fake.#frames.push([socket, frame]));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => fake.stop());
    return fake;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async nextFrame(): Promise<[Socket, Frame]> {
    await vi.waitFor(() => expect(this.#frames.length).toBeGreaterThan(0));
    return this.#frames.shift() as [Socket, Frame];
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A TCP relay in front of a server that can drop the next request frame and the connection with it. */
class Relay {
  dropNextRequest = false;
  connections = 0;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(targetPort: number): Promise<Relay> {
    const server = createServer();
    const relay = new Relay(server);
    server.on('connection', (socket) => {
      relay.connections++;
      const upstream = connect(targetPort, '127.0.0.1');
      relay.#sockets.add(socket).add(upstream);
      const closeBoth = (): void => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('error', closeBoth).on('close', closeBoth);
      upstream.on('error', closeBoth).on('close', closeBoth);
      let isSwitched = false;
      socket.on('data', (chunk: Buffer) => {
        // After the upgrade, a chunk is one request frame here (one call at a time).
        if (isSwitched && relay.dropNextRequest) {
          relay.dropNextRequest = false;
          closeBoth();
          return;
        }
        isSwitched = true;
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => socket.write(chunk));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => relay.stop());
    return relay;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

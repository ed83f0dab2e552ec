import { Agent } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaHttpClient } from '../../src/replication/replica-http-client.js';

type Behaviour = 'answer' | 'reset' | 'hang' | 'not-json';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/**
 * A bare HTTP/1.1 server on a raw socket, so a test can reset a keep-alive connection at
 * the exact request it wants: `behave(connection, requestOnConnection)`, both from 0.
 */
async function startRawServer(behave: (connection: number, request: number) => Behaviour): Promise<{
  endpoint: string;
  connections: () => number;
}> {
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    const connection = connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    let requests = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        buffered = buffered.subarray(end + 4 + length);
        const behaviour = behave(connection, requests++);
        if (behaviour === 'reset') {
          socket.resetAndDestroy();
          return;
        }
        if (behaviour === 'hang') return;
        const body = behaviour === 'answer' ? '{"epoch":"e1"}' : 'not json';
        socket.write(
          `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
            `connection: keep-alive\r\n\r\n${body}`,
        );
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => connections,
  };
}

function createClient(endpoint: string, timeoutMs = 5000): ReplicaHttpClient {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const client = new ReplicaHttpClient({ endpoint, secret: 'test-secret-0123456789', agent, timeoutMs });
  cleanups.push(() => agent.destroy());
  return client;
}

describe('ReplicaHttpClient', () => {
  it('retries once, on a new connection, when a reused keep-alive socket is reset', async () => {
    // The first connection answers once, then resets: a server closing an idle socket.
    const server = await startRawServer((connection, request) =>
      connection === 0 && request > 0 ? 'reset' : 'answer',
    );
    const client = createClient(server.endpoint);
    await expect(client.get('/x')).resolves.toEqual({ epoch: 'e1' });
    await expect(client.post('/x', '{}')).resolves.toEqual({ epoch: 'e1' });
    expect(server.connections()).toBe(2);
  });

  it('does not retry a reset on a fresh connection', async () => {
    const server = await startRawServer(() => 'reset');
    const client = createClient(server.endpoint);
    await expect(client.post('/x', '{}')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
    expect(server.connections()).toBe(1);
  });

  it('rejects with ReplicaStoreError when the store does not answer in time', async () => {
    const server = await startRawServer(() => 'hang');
    const client = createClient(server.endpoint, 50);
    await expect(client.post('/x', '{}')).rejects.toMatchObject({
      code: 'SLB_REPLICA_UNAVAILABLE',
      message: expect.stringContaining('50 ms'),
    });
  });

  it('rejects with ReplicaStoreError on an answer that is not JSON', async () => {
    const server = await startRawServer(() => 'not-json');
    const client = createClient(server.endpoint);
    await expect(client.get('/x')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
  });

  it('refuses an endpoint that is not http://', () => {
    expect(() => createClient('https://127.0.0.1:1')).toThrow(RangeError);
  });
});

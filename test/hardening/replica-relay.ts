import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on 127.0.0.1:0 in front of a replication server, to slow it down or cut it
 * off on demand: 'pass' forwards bytes both ways, 'hold' keeps what nodes send until
 * `release()`, 'down' closes every connection (as a stopped store would).
 */
export class ReplicaRelay {
  mode: 'pass' | 'hold' = 'pass';
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  readonly #held: Array<() => void> = [];

  private constructor(
    server: Server,
    readonly targetPort: number,
  ) {
    this.#server = server;
  }

  static async start(targetPort: number): Promise<ReplicaRelay> {
    const server = createServer();
    const relay = new ReplicaRelay(server, targetPort);
    server.on('connection', (socket) => relay.#accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return relay;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Sends on everything held back, in order, and passes later bytes through. */
  release(): void {
    this.mode = 'pass';
    for (const send of this.#held.splice(0)) send();
  }

  async close(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      a.destroy();
      b.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket: Socket): void {
    const upstream = connect(this.targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [socket, upstream];
    this.#pairs.add(pair);
    const closeBoth = (): void => {
      socket.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    socket.on('error', closeBoth).on('close', closeBoth);
    upstream.on('error', closeBoth).on('close', closeBoth);
    socket.on('data', (chunk: Buffer) => {
      const send = (): void => {
        if (!upstream.destroyed) upstream.write(chunk);
      };
      if (this.mode === 'hold') this.#held.push(send);
      else send();
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!socket.destroyed) socket.write(chunk);
    });
  }
}

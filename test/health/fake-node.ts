import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** How a fake node answers: with `status`, holding the answer until `release()`, or by resetting. */
export type FakeNodeMode = 'answer' | 'hold' | 'reset';

/** A real HTTP server on 127.0.0.1:0 that plays a node's health endpoint. */
export interface FakeNode {
  readonly server: Server;
  readonly url: string;
  status: number;
  mode: FakeNodeMode;
  /** Request targets (path and query) received, in order. */
  readonly paths: string[];
  readonly userAgents: (string | undefined)[];
  /** TCP connections open on the node's side right now. */
  readonly openConnections: number;
  /** Resolves when the next request arrives. */
  nextRequest(): Promise<unknown>;
  /** Answers the held requests with the current `status`. */
  release(): void;
  close(): Promise<void>;
}

export async function startFakeNode(status = 200): Promise<FakeNode> {
  const held: ServerResponse[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    node.paths.push(request.url ?? '');
    node.userAgents.push(request.headers['user-agent']);
    if (node.mode === 'reset') request.socket.destroy();
    else if (node.mode === 'hold') held.push(response);
    else response.writeHead(node.status, { 'content-type': 'text/plain' }).end('health body');
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const node: FakeNode = {
    server,
    url: `http://127.0.0.1:${port}`,
    status,
    mode: 'answer',
    paths: [],
    userAgents: [],
    get openConnections() {
      return sockets.size;
    },
    nextRequest: () => once(server, 'request'),
    release() {
      for (const response of held.splice(0)) response.writeHead(node.status).end();
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };
  return node;
}

/** A URL nothing listens on: connections to it are refused. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

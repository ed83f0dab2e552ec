import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** One request the fault node parsed off a connection. */
export interface FaultRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Which TCP connection carried it (1, 2, … in accept order). */
  connectionId: number;
}

/**
 * How the node answers one non-health request: write raw bytes (and maybe close), or do
 * nothing at all (a hang). `socket` is the node's side of the connection. Returning
 * 'tunnel' stops HTTP parsing on that connection: later bytes are echoed back raw (an
 * upgraded WebSocket, as far as a proxy can tell).
 */
export type FaultBehaviour = (socket: Socket, request: FaultRequest) => unknown;

/** A well-formed keep-alive answer: what a healthy node sends. */
export function okResponse(body = '{"ok":true}'): string {
  return (
    'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\nconnection: keep-alive\r\n\r\n${body}`
  );
}

const NOT_FOUND = 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n';

/**
 * A node made of a raw TCP server on 127.0.0.1:0 that speaks just enough HTTP/1.1 to parse
 * requests (Content-Length bodies only) and answers each with whatever `behaviour` writes,
 * so a test can send framing no real HTTP server would. `GET /health` is always answered
 * well, so health checks keep the node up while its answers to proxied requests are broken.
 */
export class FaultNode {
  behaviour: FaultBehaviour = (socket) => socket.write(okResponse());
  readonly requests: FaultRequest[] = [];
  readonly #server: Server;
  readonly #sockets = new Map<number, Socket>();
  #connections = 0;
  #isListening = true;
  /** Settles when the server has closed: not listening, every connection gone. */
  readonly #closed: Promise<unknown>;

  private constructor(server: Server) {
    this.#server = server;
    this.#closed = once(server, 'close');
  }

  static async start(): Promise<FaultNode> {
    const server = createServer();
    const node = new FaultNode(server);
    server.on('connection', (socket) => node.#accept(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Connections accepted so far. */
  get connections(): number {
    return this.#connections;
  }

  /** Whether connection `id` is still open on the node's side. */
  isOpen(id: number): boolean {
    return this.#sockets.has(id);
  }

  /** Requests proxied for clients (not health checks nor the proxy's own internal calls), in order. */
  get appRequests(): FaultRequest[] {
    return this.requests.filter(
      (request) => request.path !== '/health' && !request.path.startsWith('/_stickylb/'),
    );
  }

  async close(): Promise<void> {
    if (this.#isListening) this.stopListening();
    for (const socket of this.#sockets.values()) socket.destroy();
    await this.#closed;
  }

  /** New connections are refused from now on; the open ones stay (a node whose listener died). */
  stopListening(): void {
    this.#isListening = false;
    this.#server.close();
  }

  #accept(socket: Socket): void {
    const id = ++this.#connections;
    this.#sockets.set(id, socket);
    socket.on('close', () => this.#sockets.delete(id));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    let isTunnel = false;
    socket.on('data', (chunk: Buffer) => {
      if (isTunnel) {
        socket.write(chunk);
        return;
      }
      buffered = Buffer.concat([buffered, chunk]);
      // Bounded: at most one request per loop turn per chunk read.
      for (
        let parsed = parseRequest(buffered, id);
        parsed !== undefined;
        parsed = parseRequest(buffered, id)
      ) {
        buffered = buffered.subarray(parsed.length);
        this.requests.push(parsed.request);
        if (parsed.request.path === '/health') socket.write(okResponse('{"status":"ok"}'));
        else if (parsed.request.path.startsWith('/_stickylb/')) socket.write(NOT_FOUND);
        else if (this.behaviour(socket, parsed.request) === 'tunnel') {
          isTunnel = true;
          if (buffered.length > 0) socket.write(buffered);
          return;
        }
        if (socket.destroyed) return;
      }
    });
  }
}

function parseRequest(
  buffer: Buffer,
  connectionId: number,
): { request: FaultRequest; length: number } | undefined {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [requestLine = '', ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyBytes = Number(headers['content-length'] ?? 0);
  if (buffer.length < end + 4 + bodyBytes) return undefined;
  const [method = '', path = ''] = requestLine.split(' ');
  return {
    request: {
      method,
      path,
      headers,
      body: buffer.subarray(end + 4, end + 4 + bodyBytes).toString(),
      connectionId,
    },
    length: end + 4 + bodyBytes,
  };
}

import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { SESSION_USED_HEADER } from '../../src/protocol.js';

/** What a recording node saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  rawHeaders: string[];
  /** Body bytes received so far. */
  bodyBytes: number;
  /** The request ended with its whole body. */
  isComplete: boolean;
  /** The connection died before the request was answered (the proxy aborted it). */
  isAborted: boolean;
  /** The TCP connection that carried the request has closed since. */
  isSocketClosed: boolean;
}

/**
 * A small real HTTP node on 127.0.0.1:0 that records every request it is sent and counts
 * its open connections and unanswered requests, so a test can prove a request was never
 * forwarded, or that nothing was left open after a client left. Routes:
 * - `GET /health` → 200, `/_stickylb/…` → 404 (not recorded: the proxy's own polls)
 * - `GET /api/headers` → `{"headers":…}` the headers as received
 * - `GET /api/session` → uses the session (answers `x-stickylb-session-used`) and echoes its id
 * - `GET /api/internal-headers` → answers with internal `x-stickylb-*` headers of its own
 * - `POST /upload` → reads the whole body, answers `{"bytes":N}`
 * - `POST /early` → answers 200 headers and a first chunk at once, ends when the body has arrived
 * - `GET /hold` → never answers (until the connection closes)
 * - `GET /stream` → a chunk every 50 ms for 10 s
 * - `GET /large` → 48 MiB, written as fast as the connection takes them (`largeWaits` counts the
 *   times it had to wait for 'drain': every buffer on the way was full)
 * - anything else → 200 `{"path":…}`
 */
export class RecordingNode {
  readonly server: Server;
  readonly seen: SeenRequest[] = [];
  readonly #sockets = new Set<Socket>();
  /** Times a `/large` answer waited for 'drain' (the proxy, or its client, stopped taking it). */
  largeWaits = 0;
  #inFlight = 0;
  #url = '';

  constructor() {
    this.server = createServer(this.#onRequest);
    // Short, like many real apps: stale pooled sockets toward it are a normal event.
    this.server.keepAliveTimeout = 5000;
    this.server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Listens on 127.0.0.1:0. */
  async start(): Promise<this> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.#url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  get url(): string {
    return this.#url;
  }

  /** TCP connections open on the node's side right now. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  /** Requests received and not yet answered nor aborted. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Requests seen on `path` (query ignored). */
  seenOn(path: string): SeenRequest[] {
    return this.seen.filter((request) => request.url.split('?')[0] === path);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  readonly #onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    // Health checks and the proxy's own metrics polls are not what the tests look for.
    if (path === '/health' || path?.startsWith('/_stickylb/')) {
      req.resume();
      res.writeHead(path === '/health' ? 200 : 404, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const seen: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bodyBytes: 0,
      isComplete: false,
      isAborted: false,
      isSocketClosed: req.socket.destroyed,
    };
    req.socket.once('close', () => (seen.isSocketClosed = true));
    this.seen.push(seen);
    this.#inFlight++;
    let isDone = false;
    const finish = (): void => {
      if (isDone) return;
      isDone = true;
      this.#inFlight--;
    };
    res.once('finish', finish);
    res.once('close', () => {
      if (!res.writableFinished) seen.isAborted = true;
      finish();
    });
    req.on('data', (chunk: Buffer) => (seen.bodyBytes += chunk.length));
    req.once('end', () => (seen.isComplete = true));

    const json = (body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    switch (path) {
      case '/api/headers':
        req.resume();
        req.once('end', () => json({ headers: req.headers }));
        return;
      case '/api/session':
        req.resume();
        req.once('end', () =>
          json({ sessionId: req.headers['x-stickylb-session'] }, { [SESSION_USED_HEADER]: '1' }),
        );
        return;
      case '/api/internal-headers':
        req.resume();
        req.once('end', () =>
          json(
            { ok: true },
            { 'X-StickyLB-Secret': 'leaked', x_stickylb_debug: 'leaked', 'x-stickylb-session-new': '1' },
          ),
        );
        return;
      case '/upload':
        req.once('end', () => json({ bytes: seen.bodyBytes }));
        return;
      case '/early':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('early\n');
        req.once('end', () => res.end('done\n'));
        return;
      case '/hold':
        req.resume();
        return;
      case '/stream': {
        // A chunk every 50 ms, up to 200: a response long enough to leave in the middle of.
        res.writeHead(200, { 'content-type': 'text/plain' });
        let sent = 0;
        const timer = setInterval(() => {
          res.write(`chunk ${++sent}\n`);
          if (sent >= 200) res.end();
        }, 50);
        res.once('close', () => clearInterval(timer));
        res.write('chunk 0\n');
        return;
      }
      case '/large':
        req.resume();
        this.#writeLarge(res);
        return;
      default:
        req.resume();
        req.once('end', () => json({ path: req.url }));
    }
  };

  #writeLarge(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(LARGE_BYTES) });
    let written = 0;
    const writeMore = (): void => {
      while (written < LARGE_BYTES) {
        written += LARGE_CHUNK.length;
        if (!res.write(LARGE_CHUNK)) {
          this.largeWaits++;
          res.once('drain', writeMore);
          return;
        }
      }
      res.end();
    };
    writeMore();
  }
}

/** Size of a `/large` answer: far more than every socket buffer between node and client holds. */
export const LARGE_BYTES = 48 * 1024 * 1024;
const LARGE_CHUNK = Buffer.alloc(1024 * 1024, 108);

/** Starts `count` recording nodes. */
export async function startRecordingNodes(count: number): Promise<RecordingNode[]> {
  return Promise.all(Array.from({ length: count }, () => new RecordingNode().start()));
}

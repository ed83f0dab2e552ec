import { Agent, request, type IncomingMessage } from 'node:http';
import { ReplicaStoreError } from '../errors.js';
import { SECRET_HEADER } from '../protocol.js';

/** Options of a ReplicaHttpClient. */
export interface ReplicaHttpClientOptions {
  /** Base URL of the replication server, `http://host:port` (a path prefix is kept). */
  endpoint: string;
  /** Shared secret sent in SECRET_HEADER. */
  secret: string;
  /** Keep-alive agent to use; omitted: a private one, destroyed by `close()`. */
  agent?: Agent | undefined;
  /** Time a request may take, from sending to the last byte of the answer. */
  timeoutMs: number;
}

/** Error codes of a keep-alive socket the server closed just as we reused it. */
const STALE_SOCKET_CODES = new Set(['ECONNRESET', 'EPIPE']);

/**
 * JSON over HTTP to the replication server, on keep-alive sockets. Every failure
 * (transport, timeout, non-2xx, unparsable answer) rejects with ReplicaStoreError.
 */
export class ReplicaHttpClient {
  readonly #host: string;
  readonly #port: number;
  readonly #basePath: string;
  readonly #secret: string;
  readonly #agent: Agent;
  readonly #ownsAgent: boolean;
  readonly #timeoutMs: number;

  constructor(options: ReplicaHttpClientOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:')
      throw new RangeError(`replication endpoint must be http://, got ${url.protocol}`);
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = url.port === '' ? 80 : Number(url.port);
    this.#basePath = url.pathname.replace(/\/+$/, '');
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs;
    this.#ownsAgent = options.agent === undefined;
    // Idle sockets close after 60 s, before the server's 65 s keep-alive timeout can close
    // one under us; LIFO reuses the warmest socket so the spares can time out.
    this.#agent =
      options.agent ?? new Agent({ keepAlive: true, maxSockets: 16, scheduling: 'lifo', timeout: 60_000 });
  }

  /** POSTs a JSON body (already serialised) and resolves to the parsed JSON answer. */
  post(path: string, body: string): Promise<unknown> {
    return this.#send('POST', path, body, false);
  }

  /** GETs and resolves to the parsed JSON answer. */
  get(path: string): Promise<unknown> {
    return this.#send('GET', path, undefined, false);
  }

  /** Destroys the private agent's sockets (a caller's agent is left alone). */
  close(): void {
    if (this.#ownsAgent) this.#agent.destroy();
  }

  #send(method: string, path: string, body: string | undefined, isRetry: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string | number> = {
        [SECRET_HEADER]: this.#secret,
        accept: 'application/json',
      };
      if (body !== undefined) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = Buffer.byteLength(body);
      }
      let hasResponse = false;
      const req = request({
        host: this.#host,
        port: this.#port,
        path: this.#basePath + path,
        method,
        agent: this.#agent,
        headers,
      });
      const timer = setTimeout(() => {
        req.destroy(new ReplicaStoreError(`replica store did not answer within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      req.on('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        // A reused keep-alive socket the server closed meanwhile: the request never reached
        // it, and every replication call is idempotent (versions, set semantics), so one
        // retry is safe. This is the remedy Node's http docs give for `reusedSocket`.
        if (!isRetry && !hasResponse && req.reusedSocket && STALE_SOCKET_CODES.has(error.code ?? '')) {
          resolve(this.#send(method, path, body, true));
          return;
        }
        reject(
          error instanceof ReplicaStoreError
            ? error
            : new ReplicaStoreError(`replica store unreachable: ${error.message}`, { cause: error }),
        );
      });
      req.on('response', (res: IncomingMessage) => {
        hasResponse = true;
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(new ReplicaStoreError(`replica store answer cut short: ${error.message}`, { cause: error }));
        });
        res.on('end', () => {
          clearTimeout(timer);
          const status = res.statusCode ?? 0;
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch (error) {
            reject(new ReplicaStoreError(`replica store answered ${status} with no JSON`, { cause: error }));
            return;
          }
          if (status < 200 || status >= 300) {
            reject(new ReplicaStoreError(`replica store answered ${status}: ${describe(parsed)}`));
            return;
          }
          resolve(parsed);
        });
      });
      req.end(body);
    });
  }
}

/** `CODE: message` of an error body, for the error we raise. */
function describe(body: unknown): string {
  if (body !== null && typeof body === 'object') {
    const { error, message } = body as { error?: unknown; message?: unknown };
    return `${String(error)}: ${String(message)}`;
  }
  return String(body);
}

import { connect, type Socket } from 'node:net';

/**
 * A client that sends exact bytes over a TCP socket and keeps every byte it gets back, for
 * requests `fetch` and `node:http` would refuse to write or would normalise (smuggling
 * shapes, bare LF, slow clients). Reusable by any test: nothing here knows stickylb.
 */
export class RawConnection {
  readonly socket: Socket;
  /** Everything received so far, as latin1 text (byte for byte). */
  received = '';
  /** Whether the peer has closed (FIN or reset) or the socket was destroyed. */
  isClosed = false;
  /** Set when the socket saw an error (ECONNRESET, EPIPE…); a reset counts as closed. */
  error: NodeJS.ErrnoException | undefined;
  readonly #connected: Promise<void>;
  readonly #closed: Promise<void>;
  #onData: (() => void) | undefined;

  constructor(port: number, host = '127.0.0.1') {
    this.socket = connect(port, host);
    this.socket.setNoDelay(true);
    this.#connected = new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    // A refused or reset connection is an outcome the tests assert, never an unhandled error.
    this.#connected.catch(() => undefined);
    this.socket.on('data', (chunk: Buffer) => {
      this.received += chunk.toString('latin1');
      this.#onData?.();
    });
    this.socket.on('error', (error: NodeJS.ErrnoException) => (this.error = error));
    this.#closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.isClosed = true;
        this.#onData?.();
        resolve();
      }),
    );
  }

  /** Resolves once connected (rejects if refused). */
  connected(): Promise<void> {
    return this.#connected;
  }

  /** Writes bytes as given (strings as latin1, so every byte value can be sent). */
  async write(bytes: string | Buffer): Promise<void> {
    await this.#connected;
    await new Promise<void>((resolve) => {
      this.socket.write(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, () => resolve());
    });
  }

  /** Resolves when `predicate(received)` holds, or when the socket closes, or after `timeoutMs`. */
  async waitFor(predicate: (received: string) => boolean, timeoutMs = 5000): Promise<string> {
    if (predicate(this.received) || this.isClosed) return this.received;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.#onData = () => {
        if (predicate(this.received) || this.isClosed) {
          this.#onData = undefined;
          done();
        }
      };
    });
    this.#onData = undefined;
    return this.received;
  }

  /** Resolves true when the peer closed within `timeoutMs`, false otherwise. */
  async waitForClose(timeoutMs = 5000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const closed = await Promise.race([this.#closed.then(() => true as const), timedOut]);
    clearTimeout(timer);
    return closed;
  }

  /** Resolves when one whole response (headers and a Content-Length body) has arrived. */
  async readResponse(timeoutMs = 5000): Promise<RawResponse | undefined> {
    await this.waitFor((text) => parseResponse(text) !== undefined, timeoutMs);
    return parseResponse(this.received);
  }

  /** Forgets what was received (before reading the next response on a kept-alive socket). */
  clear(): void {
    this.received = '';
  }

  /** Closes the socket at once (an abrupt client). */
  destroy(): void {
    this.socket.destroy();
  }
}

/** A parsed HTTP/1.1 response; `rest` is whatever followed it on the wire. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  rest: string;
}

/** Parses the first response in `text` if it is complete (Content-Length or chunked framing). */
export function parseResponse(text: string): RawResponse | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end === -1) return undefined;
  const lines = text.slice(0, end).split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  if (!Number.isInteger(status)) return undefined;
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const bodyStart = end + 4;
  if (headers['transfer-encoding'] === 'chunked') return parseChunked(status, headers, text, bodyStart);
  const length = Number(headers['content-length'] ?? 0);
  if (text.length < bodyStart + length) return undefined;
  return {
    status,
    headers,
    body: text.slice(bodyStart, bodyStart + length),
    rest: text.slice(bodyStart + length),
  };
}

/** Decodes a chunked body starting at `at`; undefined until its last chunk has arrived. */
function parseChunked(
  status: number,
  headers: Record<string, string>,
  text: string,
  at: number,
): RawResponse | undefined {
  let body = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd === -1) return undefined;
    const size = parseInt(text.slice(at, lineEnd), 16);
    if (Number.isNaN(size)) return undefined;
    const dataStart = lineEnd + 2;
    if (size === 0) {
      const trailerEnd = text.indexOf('\r\n', dataStart);
      if (trailerEnd === -1) return undefined;
      return { status, headers, body, rest: text.slice(trailerEnd + 2) };
    }
    if (text.length < dataStart + size + 2) return undefined;
    body += text.slice(dataStart, dataStart + size);
    at = dataStart + size + 2;
  }
}

/**
 * One exchange on a fresh connection: sends `bytes`, waits until the peer closes or
 * `timeoutMs` passes, and closes the socket either way. `closed` tells which happened.
 */
export async function rawExchange(
  port: number,
  bytes: string | Buffer,
  timeoutMs = 5000,
): Promise<{ text: string; response: RawResponse | undefined; closed: boolean }> {
  const connection = new RawConnection(port);
  try {
    await connection.write(bytes);
    const closed = await connection.waitForClose(timeoutMs);
    return { text: connection.received, response: parseResponse(connection.received), closed };
  } finally {
    connection.destroy();
  }
}

import { request, type IncomingMessage } from 'node:http';

/** One parsed Server-Sent Events frame (a comment frame has only `comment`). */
export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: string;
  comment?: string;
}

/** A raw SSE reader over node:http, so tests see exactly what the server writes. */
export class SseClient {
  readonly frames: SseFrame[] = [];
  response!: IncomingMessage;
  #buffer = '';
  #waiters: Array<() => void> = [];
  #closed = false;

  private constructor() {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient();
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (response) => {
        client.response = response;
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => client.#push(chunk));
        response.on('close', () => {
          client.#closed = true;
          client.#wake();
        });
        resolve();
      });
      req.once('error', reject);
      req.end();
    });
    return client;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  /** Resolves with the first frame (from the start) matching `predicate`. */
  async waitFor(predicate: (frame: SseFrame) => boolean, timeoutMs = 10_000): Promise<SseFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = this.frames.find(predicate);
      if (frame !== undefined) return frame;
      if (this.#closed) throw new Error('stream closed');
      if (Date.now() > deadline) throw new Error('no matching frame in time');
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** Resolves once the server has closed the stream. */
  async closed(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#closed) {
      if (Date.now() > deadline) throw new Error('stream still open');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  close(): void {
    this.response?.destroy();
  }

  #push(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const frame: SseFrame = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          frame.comment = line.slice(1).trim();
          continue;
        }
        const colon = line.indexOf(':');
        const field = line.slice(0, colon) as keyof SseFrame;
        const value = line.slice(colon + 1).replace(/^ /, '');
        frame[field] = frame[field] === undefined ? value : `${frame[field]}\n${value}`;
      }
      this.frames.push(frame);
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

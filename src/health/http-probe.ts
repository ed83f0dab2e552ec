import { request as httpRequest, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { performance } from 'node:perf_hooks';

/** What one probe found: `status` when the node answered, `error` when the answer was not a success. */
export interface ProbeOutcome {
  ok: boolean;
  status?: number;
  /** Time to the response headers, or to the failure. */
  latencyMs: number;
  error?: string;
}

const HEADERS = { 'user-agent': 'stickylb-health' };

/**
 * One `GET` health probe with a deadline over the whole exchange (connect, headers, body).
 * 2xx is a success; any other status, a refused or reset connection, or the deadline is a
 * failure. The body is always read to the end (or the socket destroyed), so a keep-alive
 * socket goes back to the agent clean.
 *
 * `done` resolves, never rejects, once the request is over and its socket released or closed:
 * after `abort()` too, so whoever awaits it knows no handle is left behind.
 */
export class HttpProbe {
  readonly done: Promise<ProbeOutcome>;
  readonly #url: URL;
  readonly #agent: Agent;
  readonly #startedAt = performance.now();
  readonly #deadline: NodeJS.Timeout;
  #request: ClientRequest | undefined;
  #outcome: ProbeOutcome | undefined;
  #hasAnswer = false;
  #hasRetried = false;
  #resolve!: (outcome: ProbeOutcome) => void;

  constructor(url: URL, agent: Agent, timeoutMs: number) {
    this.#url = url;
    this.#agent = agent;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    this.#deadline = setTimeout(() => this.#fail(`timeout after ${timeoutMs} ms`), timeoutMs);
    this.#deadline.unref();
    this.#send();
  }

  /** Ends the probe now; its outcome is a failure nobody should count. */
  abort(): void {
    this.#fail('aborted');
  }

  #send(): void {
    const send = this.#url.protocol === 'https:' ? httpsRequest : httpRequest;
    const request = send(this.#url, { agent: this.#agent, headers: HEADERS });
    this.#request = request;
    request.on('response', (response) => this.#onResponse(request, response));
    request.on('error', (error) => this.#onError(request, error));
    request.on('close', () => this.#onClose(request));
    request.end();
  }

  #onResponse(request: ClientRequest, response: IncomingMessage): void {
    this.#hasAnswer = true;
    const status = response.statusCode ?? 0;
    const latencyMs = this.#elapsedMs();
    response.on('end', () => {
      const ok = status >= 200 && status < 300;
      this.#settle(ok ? { ok, status, latencyMs } : { ok, status, latencyMs, error: `HTTP ${status}` });
    });
    // A node that dies mid-body is failing, whatever the status line said.
    response.on('error', (error) => this.#onError(request, error));
    response.resume();
  }

  #onError(request: ClientRequest, error: Error): void {
    if (request !== this.#request || this.#outcome) return;
    // A keep-alive socket the node closed while it sat idle in the pool: the request never
    // reached the node, so one retry on a fresh socket is safe and the node is not to blame.
    // https://nodejs.org/api/http.html#requestreusedsocket
    const code = (error as NodeJS.ErrnoException).code;
    if (request.reusedSocket && code === 'ECONNRESET' && !this.#hasAnswer && !this.#hasRetried) {
      this.#hasRetried = true;
      this.#send();
      return;
    }
    this.#settle({ ok: false, latencyMs: this.#elapsedMs(), error: describeError(error) });
  }

  #onClose(request: ClientRequest): void {
    if (request !== this.#request) return;
    this.#settle({ ok: false, latencyMs: this.#elapsedMs(), error: 'connection closed early' });
    clearTimeout(this.#deadline);
    this.#resolve(this.#outcome ?? { ok: false, latencyMs: 0, error: 'no outcome' });
  }

  #fail(error: string): void {
    if (this.#outcome) {
      // Answered already but the body has not finished: free the socket, keep the outcome.
      if (this.#request && !this.#request.destroyed) this.#request.destroy();
      return;
    }
    this.#settle({ ok: false, latencyMs: this.#elapsedMs(), error });
    this.#request?.destroy();
  }

  /** Records the first outcome; `done` resolves when the request closes. */
  #settle(outcome: ProbeOutcome): void {
    this.#outcome ??= outcome;
  }

  #elapsedMs(): number {
    return Math.round((performance.now() - this.#startedAt) * 100) / 100;
  }
}

function describeError(error: Error): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
}

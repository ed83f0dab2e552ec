import { request, type Agent } from 'node:http';
import { ReplicaStoreError } from '../errors.js';
import { SECRET_HEADER } from '../protocol.js';
import type { ReplicaRecord } from '../replication/index.js';

/** Node-internal routes the proxy calls (the node's session plugin serves them). */
export const INSTALL_PATH = '/_stickylb/sessions/install';
export const EVICT_PATH = '/_stickylb/sessions/evict';

/**
 * Pushes session state to a node (failover target) and tells a node to drop sessions that
 * moved away while it was cut off. Authenticated with the replication secret.
 */
export class SessionInstaller {
  readonly #agent: Agent;
  readonly #secret: string;
  readonly #timeoutMs: number;

  constructor(options: { agent: Agent; secret: string; timeoutMs?: number }) {
    this.#agent = options.agent;
    this.#secret = options.secret;
    this.#timeoutMs = options.timeoutMs ?? 5000;
  }

  /** Installs sessions on a node; resolves when the node has them in its store. */
  async install(nodeUrl: string, records: readonly ReplicaRecord[]): Promise<void> {
    const sessions = records.map(({ key, version, data, lastAccessAt }) => ({
      key,
      version,
      data,
      lastAccessAt,
    }));
    await this.#post(nodeUrl, INSTALL_PATH, { sessions });
  }

  /** Makes a node forget sessions it no longer owns. */
  async evict(nodeUrl: string, keys: readonly string[]): Promise<void> {
    await this.#post(nodeUrl, EVICT_PATH, { keys });
  }

  #post(nodeUrl: string, path: string, body: unknown): Promise<void> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, nodeUrl),
        {
          method: 'POST',
          agent: this.#agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            [SECRET_HEADER]: this.#secret,
          },
          timeout: this.#timeoutMs,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            if (res.statusCode === 200) resolve();
            else
              reject(
                new ReplicaStoreError(`${nodeUrl}${path} answered ${res.statusCode}: ${text.slice(0, 200)}`),
              );
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new ReplicaStoreError(`${nodeUrl}${path} timed out`)));
      req.on('error', (error) =>
        reject(
          error instanceof ReplicaStoreError
            ? error
            : new ReplicaStoreError(`${nodeUrl}${path}: ${error.message}`, { cause: error }),
        ),
      );
      req.end(payload);
    });
  }
}

import type { AffinityView } from '../affinity/index.js';
import type { NodeRegistry } from '../nodes/index.js';
import { USED_BATCH_MAX, USED_FLUSH_MS, type WorkerMessage } from './ipc.js';

/**
 * The affinity table as a proxy worker sees it: moved sessions mirrored from the control
 * plane, and sessions used reported up in batches (one message per ~20 ms, deduplicated),
 * so the request path never waits on another process.
 */
export class WorkerAffinity implements AffinityView {
  readonly #moved = new Map<string, string>();
  /** key → [node, highest version] used since the last flush. */
  #used = new Map<string, [string, number]>();
  #timer: NodeJS.Timeout | undefined;
  readonly #send: (message: WorkerMessage) => void;
  readonly #registry: NodeRegistry;

  constructor(send: (message: WorkerMessage) => void, registry: NodeRegistry) {
    this.#send = send;
    this.#registry = registry;
  }

  get hasMoved(): boolean {
    return this.#moved.size > 0;
  }

  movedNodeOf(key: string): string | undefined {
    return this.#moved.get(key);
  }

  record(key: string, nodeId: string, isNew: boolean, version: number): void {
    if (isNew) {
      // Counted here at once so this worker's balancing sees it before the next snapshot
      // from the control plane replaces the estimate with the exact count.
      const node = this.#registry.get(nodeId);
      if (node) node.sessions++;
    }
    const seen = this.#used.get(key);
    if (seen !== undefined) {
      if (version > seen[1]) seen[1] = version;
      return;
    }
    this.#used.set(key, [nodeId, version]);
    if (this.#used.size >= USED_BATCH_MAX) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), USED_FLUSH_MS);
  }

  /** Applies moved-session changes pushed by the control plane. */
  applyMoved(entries: ReadonlyArray<[string, string | null]>): void {
    for (const [key, nodeId] of entries) {
      if (nodeId === null) this.#moved.delete(key);
      else this.#moved.set(key, nodeId);
    }
  }

  /** Sends the batch of used sessions now. */
  flush(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#used.size === 0) return;
    const entries: Array<string | number> = [];
    for (const [key, [nodeId, version]] of this.#used) entries.push(key, nodeId, version);
    this.#used = new Map();
    this.#send({ t: 'used', entries });
  }
}

import cluster, { type Worker } from 'node:cluster';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TrafficSnapshot } from '../admin/node-traffic.js';
import type { Config } from '../config/index.js';
import { StickyError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ProxyNode } from '../nodes/index.js';
import {
  USED_BARRIER_TIMEOUT_MS,
  type NodeSnapshot,
  type PrimaryMessage,
  type WorkerMessage,
} from './ipc.js';
import { PoolStatsTable, type PoolStats } from './pool-stats.js';
import { RespawnBackoff } from './respawn-backoff.js';
import type { FailureEvidence } from '../health/index.js';

/** What the pool needs of the control plane. */
export interface WorkerControl {
  nodeSnapshots(): NodeSnapshot[];
  movedEntries(): Array<[string, string]>;
  recordUsed(key: string, nodeId: string, version: number): void;
  /** Whether a failed non-idempotent request of this session may be replayed (see ProxyServer). */
  mayReplay(key: string): Promise<boolean>;
  reportFailure(nodeId: string, reason: string, evidence: FailureEvidence): void;
  /** A worker's traffic snapshot (rates, latency); `undefined` when the worker is gone (its totals are kept). */
  absorbTraffic(workerId: string, snapshot: TrafficSnapshot | undefined): void;
  moveSession(key: string, fromNodeId: string): Promise<ProxyNode>;
}

export type { PoolStats } from './pool-stats.js';

/**
 * The compiled worker entry. Running from source (tests import src/ through vitest), the
 * workers still run the compiled code in dist/, which `npm test` builds first.
 */
function workerEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return here.endsWith('.ts')
    ? resolve(dirname(here), '../../dist/src/proxy/proxy-worker.js')
    : resolve(dirname(here), 'proxy-worker.js');
}

/**
 * The proxy workers (node:cluster), seen from the control plane: forks them, pushes node
 * state and moved sessions, answers their rare requests (move a session), collects their
 * counters, replaces a worker that crashes, and stops them gracefully.
 */
export class WorkerPool {
  readonly #count: number;
  #config: Config;
  readonly #sessionSecret: string;
  readonly #control: WorkerControl;
  readonly #logger: Logger;
  readonly #workers = new Set<Worker>();
  /**
   * Workers sent `init`. Only they get broadcasts: one still starting reads nothing but `init`,
   * which carries the full state anyway.
   */
  readonly #initialised = new Set<Worker>();
  readonly #stats = new PoolStatsTable<Worker>();
  #pendingMoved: Array<[string, string | null]> = [];
  #movedFlush: NodeJS.Immediate | undefined;
  #isStopping = false;
  readonly #backoff = new RespawnBackoff();
  /** Replacements waiting out their backoff (cleared by close()). */
  readonly #respawnTimers = new Set<NodeJS.Timeout>();
  /** Barrier id → resolve, for `flush-used` requests awaiting their `used-flushed` answer. */
  readonly #usedBarriers = new Map<number, () => void>();
  #nextBarrierId = 0;
  /** Workers started and replaced since start (crash replacements included). */
  forks = 0;

  constructor(options: {
    count: number;
    config: Config;
    sessionSecret: string;
    control: WorkerControl;
    logger: Logger;
  }) {
    this.#count = options.count;
    this.#config = options.config;
    this.#sessionSecret = options.sessionSecret;
    this.#control = options.control;
    this.#logger = options.logger;
  }

  get size(): number {
    return this.#workers.size;
  }

  /** Pids of the running workers. */
  get pids(): number[] {
    return [...this.#workers].map((worker) => worker.process.pid as number);
  }

  /** Forks the workers; resolves to the port they share once every one listens. */
  async start(): Promise<number> {
    cluster.setupPrimary({ exec: workerEntry(), args: [] });
    const ports = await Promise.all(Array.from({ length: this.#count }, () => this.#fork()));
    return ports[0] as number;
  }

  /** Tells every worker the nodes' state (on every change, and when session counts move). */
  broadcastNodes(): void {
    this.#broadcast({ t: 'nodes', nodes: this.#control.nodeSnapshots() });
  }

  /** Queues a moved-session change for the workers (sent together on the next turn). */
  queueMoved(key: string, nodeId: string | undefined): void {
    this.#pendingMoved.push([key, nodeId ?? null]);
    this.#movedFlush ??= setImmediate(() => this.#flushMoved());
  }

  /** Sends queued moved-session changes now. */
  flushMoved(): void {
    this.#flushMoved();
  }

  /** Applies a reloaded config in every worker, and to the workers forked from now on. */
  reload(config: Config): void {
    this.#config = config;
    this.#broadcast({ t: 'reload', config });
  }

  /** Counters summed over the workers, dead ones' included (they never go backwards). */
  stats(): PoolStats {
    return this.#stats.sum();
  }

  /** Graceful stop: each worker stops accepting and finishes in-flight requests (up to `graceMs`). */
  async close(graceMs: number): Promise<void> {
    this.#isStopping = true;
    if (this.#movedFlush !== undefined) clearImmediate(this.#movedFlush);
    for (const timer of this.#respawnTimers) clearTimeout(timer);
    this.#respawnTimers.clear();
    await Promise.all(
      [...this.#workers].map(
        (worker) =>
          new Promise<void>((done) => {
            if (worker.isDead()) {
              done();
              return;
            }
            worker.once('exit', () => done());
            // Still starting: it listens on nothing and holds no request, so nothing to finish.
            if (!this.#initialised.has(worker)) {
              worker.process.kill('SIGKILL');
              return;
            }
            this.#send(worker, { t: 'shutdown', graceMs });
            setTimeout(() => worker.process.kill('SIGKILL'), graceMs + 2000).unref();
          }),
      ),
    );
  }

  #fork(): Promise<number> {
    const worker = cluster.fork({ STICKYLB_WORKER: '1' });
    const forkedAtMs = Date.now();
    this.forks++;
    this.#workers.add(worker);
    worker.on('error', (error) =>
      this.#logger.warn({ pid: worker.process.pid, err: error }, 'proxy worker channel error'),
    );
    return new Promise((resolvePort, reject) => {
      let isListening = false;
      worker.on('message', (message: WorkerMessage) => {
        if (message.t === 'ready') {
          // Stopping: an `init` now would start a worker accepting clients after close() began.
          if (this.#isStopping) {
            worker.process.kill('SIGKILL');
            return;
          }
          this.#initialised.add(worker);
          this.#send(worker, {
            t: 'init',
            // The listen address exactly as configured: node:cluster shares one handle per
            // (address, port) key, so a replacement asking for port 0 joins the same socket.
            config: this.#config,
            sessionSecret: this.#sessionSecret,
            moved: this.#control.movedEntries(),
            nodes: this.#control.nodeSnapshots(),
          } satisfies PrimaryMessage);
          return;
        }
        if (message.t === 'listening' && !isListening) {
          isListening = true;
          resolvePort(message.port);
          return;
        }
        this.#onMessage(worker, message);
      });
      worker.once('exit', (code, signal) => {
        this.#workers.delete(worker);
        this.#initialised.delete(worker);
        this.#stats.retire(worker);
        this.#control.absorbTraffic(String(worker.id), undefined);
        if (!isListening)
          reject(new Error(`proxy worker exited before listening (${signal ?? `code ${code}`})`));
        if (this.#isStopping) return;
        const delayMs = this.#backoff.next(Date.now() - forkedAtMs);
        this.#logger.error(
          { pid: worker.process.pid, code, signal, delayMs },
          'proxy worker died: starting a replacement',
        );
        if (delayMs === 0) {
          this.#replace();
          return;
        }
        const timer = setTimeout(() => {
          this.#respawnTimers.delete(timer);
          this.#replace();
        }, delayMs);
        this.#respawnTimers.add(timer);
      });
    });
  }

  #replace(): void {
    this.#fork().catch((error: unknown) => {
      if (!this.#isStopping) this.#logger.error({ err: error }, 'could not replace proxy worker');
    });
  }

  #onMessage(worker: Worker, message: WorkerMessage): void {
    switch (message.t) {
      case 'used': {
        const { entries } = message;
        for (let i = 0; i + 2 < entries.length; i += 3) {
          this.#control.recordUsed(entries[i] as string, entries[i + 1] as string, entries[i + 2] as number);
        }
        break;
      }
      case 'replay':
        // The last version the client saw may have been answered through another worker whose
        // `used` batch is still waiting (up to USED_FLUSH_MS): collect every batch first, or a
        // request that never reached the session would be refused a replay.
        this.#flushUsed(worker)
          .then(() => this.#control.mayReplay(message.key))
          .then(
            (isSafe) => this.#reply(worker, { t: 'replay-reply', id: message.id, isSafe }),
            () => this.#reply(worker, { t: 'replay-reply', id: message.id, isSafe: false }),
          );
        break;
      case 'failure':
        this.#control.reportFailure(message.nodeId, message.reason, message.evidence);
        break;
      case 'move':
        this.#control.moveSession(message.key, message.from).then(
          (node) => this.#reply(worker, { t: 'move-reply', id: message.id, nodeId: node.id }),
          (error: unknown) =>
            this.#reply(worker, {
              t: 'move-reply',
              id: message.id,
              error: {
                code: error instanceof StickyError ? error.code : 'SLB_NO_HEALTHY_NODE',
                message: (error as Error).message,
              },
            }),
        );
        break;
      case 'used-flushed':
        this.#usedBarriers.get(message.id)?.();
        break;
      case 'stats':
        // A report read after the worker's 'exit' would bring it back, its inFlight stuck forever.
        if (!this.#workers.has(worker)) break;
        this.#stats.set(worker, { counters: message.counters, nodes: message.nodes });
        this.#control.absorbTraffic(String(worker.id), message.traffic);
        break;
      default:
        break;
    }
  }

  /** Resolves once every worker but `asking` (which flushed before asking) sent its `used` batch. */
  #flushUsed(asking: Worker): Promise<void> {
    // Only initialised workers answer; one still starting has seen no request, so has no batch.
    const others = [...this.#initialised].filter((worker) => worker !== asking && worker.isConnected());
    return Promise.all(
      others.map(
        (worker) =>
          new Promise<void>((resolve) => {
            const id = this.#nextBarrierId++;
            const done = () => {
              clearTimeout(timer);
              this.#usedBarriers.delete(id);
              resolve();
            };
            const timer = setTimeout(done, USED_BARRIER_TIMEOUT_MS);
            this.#usedBarriers.set(id, done);
            this.#send(worker, { t: 'flush-used', id });
          }),
      ),
    ).then(() => undefined);
  }

  #reply(worker: Worker, message: PrimaryMessage): void {
    // Moved entries first, so the worker's mirror already knows where the session went.
    this.#flushMoved();
    if (!worker.isDead()) this.#send(worker, message);
  }

  #flushMoved(): void {
    if (this.#movedFlush !== undefined) clearImmediate(this.#movedFlush);
    this.#movedFlush = undefined;
    if (this.#pendingMoved.length === 0) return;
    const entries = this.#pendingMoved;
    this.#pendingMoved = [];
    this.#broadcast({ t: 'moved', entries });
  }

  #broadcast(message: PrimaryMessage): void {
    for (const worker of this.#initialised) this.#send(worker, message);
  }

  /**
   * Sends to one worker. A worker killed a moment ago may still look connected: the write then
   * fails (EPIPE) into the callback instead of an 'error' event that would end this process;
   * its 'exit' handler replaces it.
   */
  #send(worker: Worker, message: PrimaryMessage): void {
    if (!worker.isConnected()) return;
    worker.send(message, (error: Error | null) => {
      if (error)
        this.#logger.debug({ pid: worker.process.pid, err: error }, 'message to a dying proxy worker lost');
    });
  }
}

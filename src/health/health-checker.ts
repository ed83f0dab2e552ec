import { EventEmitter, once } from 'node:events';
import { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { validateHealthSettings, type HealthSettings } from './health-settings.js';
import { HttpProbe } from './http-probe.js';

/** A node to check: its id and base URL, e.g. `http://127.0.0.1:9001`. */
export interface HealthTarget {
  readonly id: string;
  readonly url: string;
  /** State of a target not known yet (default `up`, so a fresh proxy serves at once). Ignored for known ones. */
  readonly initialState?: 'up' | 'down';
}

/** Events a HealthChecker emits; `node:down` / `node:up` only when a node's state changes. */
export type HealthEvents = {
  'node:down': [nodeId: string, reason: string];
  'node:up': [nodeId: string];
  /** Every counted probe result (the dashboard's "last check"). */
  check: [result: HealthCheckResult];
};

/** One active probe's result. */
export interface HealthCheckResult {
  nodeId: string;
  ok: boolean;
  /** The HTTP status, when the node answered. */
  status?: number;
  latencyMs: number;
  /** Why the probe failed: `HTTP 500`, `connect ECONNREFUSED …`, `timeout after 500 ms`. */
  error?: string;
  /** `Date.now()` when the probe ended. */
  at: number;
}

export interface HealthCheckerOptions extends HealthSettings {
  logger?: Logger;
  /** Agent for http probes. Default: a keep-alive agent of the checker's own, destroyed by `stop()`. */
  agent?: Agent;
}

/**
 * How much a passive failure says. `conclusive`: the node refused the connection or cannot be
 * reached (nothing listens there): down at once. `suspect`: a reset, a timeout, an odd answer
 * to an internal call — it may be that one exchange (a node hangs up on a write the replica
 * store fenced off while its session moved): the node is probed at once, down if that fails.
 */
export type FailureEvidence = 'conclusive' | 'suspect';

/** All the rest of the proxy may know of health: state, last result, state changes, passive failures. */
export type HealthStatus = Pick<HealthChecker, 'isUp' | 'lastResult' | 'reportFailure' | 'on' | 'off'>;

/**
 * Probes get their own keep-alive agent, apart from the proxy's, so a pool full of client
 * traffic never delays a probe. Idle sockets close after 4 s, before Node's default 5 s server
 * keep-alive timeout would close them under us; `HttpProbe` retries the rare race left.
 */
const PROBE_AGENT_OPTIONS = {
  keepAlive: true,
  maxFreeSockets: 1,
  scheduling: 'lifo',
  timeout: 4_000,
} as const;

interface Target {
  readonly id: string;
  url: string;
  probeUrl: URL;
  isUp: boolean;
  /** Consecutive successes / failures; each resets the other. */
  successes: number;
  failures: number;
  /** The probe whose result will count; an aborted one is detached so its result is dropped. */
  inFlight: { probe: HttpProbe; counted: Promise<void> } | undefined;
  last: HealthCheckResult | undefined;
  /** A suspect failure's reason while the probe confirming it is in flight. */
  suspect: string | undefined;
}

/**
 * Active and passive health checks of the nodes, HAProxy's model. Publishes state changes
 * as `node:down` / `node:up` and knows nothing of who listens. One unref'd timer drives every
 * node; a node whose probe is still in flight when the timer fires is skipped, not probed twice.
 */
export class HealthChecker extends EventEmitter<HealthEvents> {
  readonly #targets = new Map<string, Target>();
  #settings: HealthSettings;
  readonly #logger: Logger | undefined;
  readonly #agent: Agent;
  readonly #ownsAgent: boolean;
  #httpsAgent: HttpsAgent | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HealthCheckerOptions) {
    super();
    const { logger, agent, ...settings } = options;
    this.#settings = validateHealthSettings(settings);
    this.#logger = logger;
    this.#ownsAgent = agent === undefined;
    this.#agent = agent ?? new Agent(PROBE_AGENT_OPTIONS);
  }

  /**
   * Replaces the set of nodes (config reload). New ones start in their `initialState`; kept
   * ones keep their state; removed ones are dropped with their probe and emit nothing more.
   * A node whose URL changed is a new node there (another process, which holds none of its
   * state): `node:down` if it was up, and down until `rise` probes pass at the new URL. While
   * running, new and moved nodes are probed at once rather than an interval later.
   */
  setTargets(targets: readonly HealthTarget[]): void {
    const wanted = new Map<string, HealthTarget>();
    for (const target of targets) {
      if (wanted.has(target.id)) throw new RangeError(`duplicate health target id "${target.id}"`);
      wanted.set(target.id, target);
    }
    for (const [id, target] of this.#targets) {
      if (wanted.has(id)) continue;
      this.#detachProbe(target);
      this.#targets.delete(id);
    }
    const fresh: Target[] = [];
    for (const { id, url, initialState } of wanted.values()) {
      const known = this.#targets.get(id);
      if (known?.url === url) continue;
      const probeUrl = toProbeUrl(url, this.#settings.path);
      if (known) {
        this.#detachProbe(known);
        known.url = url;
        known.probeUrl = probeUrl;
        known.successes = 0;
        known.failures = 0;
        known.suspect = undefined;
        if (known.isUp) this.#markDown(known, `its URL changed to ${url}`);
        fresh.push(known);
        continue;
      }
      const target: Target = {
        id,
        url,
        probeUrl,
        isUp: initialState !== 'down',
        successes: 0,
        failures: 0,
        inFlight: undefined,
        last: undefined,
        suspect: undefined,
      };
      this.#targets.set(id, target);
      fresh.push(target);
    }
    if (this.#timer) for (const target of fresh) this.#probeInBackground(target);
  }

  /** Applies reloaded settings (SIGHUP); counters and states are kept. */
  updateSettings(settings: HealthSettings): void {
    const previous = this.#settings;
    this.#settings = validateHealthSettings(settings);
    if (settings.path !== previous.path) {
      for (const target of this.#targets.values()) target.probeUrl = toProbeUrl(target.url, settings.path);
    }
    if (this.#timer && settings.intervalMs !== previous.intervalMs) {
      clearInterval(this.#timer);
      this.#timer = this.#schedule();
    }
  }

  /** Probes every node now, then every `intervalMs`. */
  start(): void {
    if (this.#timer) return;
    this.#timer = this.#schedule();
    this.#runRound();
  }

  /** Stops the timer and aborts probes in flight; resolves when their sockets (and the agent's) are closed. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    const aborted: Promise<unknown>[] = [];
    for (const target of this.#targets.values()) {
      if (target.inFlight) aborted.push(target.inFlight.probe.done);
      this.#detachProbe(target);
    }
    await Promise.all(aborted);
    const agents = [this.#ownsAgent ? this.#agent : undefined, this.#httpsAgent];
    await Promise.all(agents.map((agent) => agent && destroyAgent(agent)));
  }

  /** Whether the node is up; false for a node the checker does not know. */
  isUp(nodeId: string): boolean {
    return this.#targets.get(nodeId)?.isUp ?? false;
  }

  /** The node's last counted probe result. */
  lastResult(nodeId: string): HealthCheckResult | undefined {
    return this.#targets.get(nodeId)?.last;
  }

  /**
   * Passive check: a proxied request found the node refusing, resetting or timing out.
   * `conclusive` evidence marks it down at once (emitting `node:down` if it was up); it then
   * needs `rise` consecutive active successes to come back. `suspect` evidence probes it at
   * once instead: down at once if that probe fails, unchanged if it passes. A probe in flight
   * started before the failure and is dropped. Unknown nodes are ignored.
   */
  reportFailure(nodeId: string, reason: string, evidence: FailureEvidence = 'conclusive'): void {
    const target = this.#targets.get(nodeId);
    if (!target) return;
    if (evidence === 'suspect') {
      // Down already, or a confirming probe on its way: nothing more to learn.
      if (!target.isUp || target.suspect !== undefined) return;
      this.#detachProbe(target);
      target.suspect = reason;
      this.#probeInBackground(target);
      return;
    }
    this.#detachProbe(target);
    target.successes = 0;
    if (target.isUp) this.#markDown(target, reason);
  }

  /**
   * Runs one probe round now, of one node or all, and resolves when its results are counted.
   * A node with a probe already in flight is not probed twice: that probe is awaited instead.
   */
  async checkNow(nodeId?: string): Promise<void> {
    if (nodeId !== undefined) {
      const target = this.#targets.get(nodeId);
      if (target) await this.#probe(target);
      return;
    }
    await Promise.all(Array.from(this.#targets.values(), (target) => this.#probe(target)));
  }

  #schedule(): NodeJS.Timeout {
    const timer = setInterval(() => this.#runRound(), this.#settings.intervalMs);
    timer.unref();
    return timer;
  }

  #runRound(): void {
    for (const target of this.#targets.values()) {
      if (!target.inFlight) this.#probeInBackground(target);
    }
  }

  #probeInBackground(target: Target): void {
    // Only a throwing event listener can reject: report it rather than crash on an unhandled rejection.
    this.#probe(target).catch((error: unknown) =>
      this.#logger?.error({ err: error, node: target.id }, 'health event listener failed'),
    );
  }

  #probe(target: Target): Promise<void> {
    if (target.inFlight) return target.inFlight.counted;
    const { probeUrl } = target;
    const agent = probeUrl.protocol === 'https:' ? this.#getHttpsAgent() : this.#agent;
    const probe = new HttpProbe(probeUrl, agent, this.#settings.timeoutMs);
    const inFlight = {
      probe,
      counted: probe.done.then((outcome) => {
        // Detached (aborted, node removed or moved, failure reported meanwhile): not counted.
        if (target.inFlight !== inFlight) return;
        target.inFlight = undefined;
        this.#count(target, { nodeId: target.id, ...outcome, at: Date.now() });
      }),
    };
    target.inFlight = inFlight;
    return inFlight.counted;
  }

  #detachProbe(target: Target): void {
    target.inFlight?.probe.abort();
    target.inFlight = undefined;
    // Its confirming probe is gone: a later suspect failure starts another.
    target.suspect = undefined;
  }

  #count(target: Target, result: HealthCheckResult): void {
    target.last = result;
    const suspect = target.suspect;
    target.suspect = undefined;
    let changed = false;
    if (result.ok) {
      target.failures = 0;
      target.successes += 1;
      changed = !target.isUp && target.successes >= this.#settings.rise;
      if (changed) target.isUp = true;
    } else {
      target.successes = 0;
      target.failures += 1;
      // A failed request, and the probe right after it fails too: down now, not after `fall` rounds.
      changed = target.isUp && (suspect !== undefined || target.failures >= this.#settings.fall);
      if (changed) target.isUp = false;
    }
    this.emit('check', result);
    if (!changed) return;
    if (target.isUp) {
      this.#markUp(target);
      return;
    }
    const error = result.error ?? 'check failed';
    this.#markDown(
      target,
      suspect === undefined ? error : `${suspect}; then the health check failed: ${error}`,
    );
  }

  #markDown(target: Target, reason: string): void {
    target.isUp = false;
    this.#logger?.warn({ node: target.id, reason }, `node ${target.id} down: ${reason}`);
    this.emit('node:down', target.id, reason);
  }

  #markUp(target: Target): void {
    this.#logger?.info({ node: target.id }, `node ${target.id} up`);
    this.emit('node:up', target.id);
  }

  #getHttpsAgent(): HttpsAgent {
    this.#httpsAgent ??= new HttpsAgent(PROBE_AGENT_OPTIONS);
    return this.#httpsAgent;
  }
}

/** `{url}{path}`, as written: `new URL(path, url)` would let a path like `//host/x` change the host. */
function toProbeUrl(url: string, path: string): URL {
  const probeUrl = new URL(`${url.replace(/\/+$/, '')}${path}`);
  if (probeUrl.protocol !== 'http:' && probeUrl.protocol !== 'https:') {
    throw new RangeError(`health target ${url} is not an http(s) URL`);
  }
  return probeUrl;
}

async function destroyAgent(agent: Agent): Promise<void> {
  const sockets: Socket[] = [];
  for (const pool of [agent.sockets, agent.freeSockets]) {
    for (const list of Object.values(pool)) if (list) sockets.push(...list);
  }
  agent.destroy();
  await Promise.all(sockets.map((socket) => (socket.closed ? undefined : once(socket, 'close'))));
}

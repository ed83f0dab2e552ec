import type { Agent } from 'node:http';
import { availableParallelism } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import {
  buildAdminServer,
  NodeMetrics,
  createTestSessions,
  EventLog,
  isLoopbackHost,
  NodeTraffic,
  ReplicaCounter,
  type AdminControl,
  type AdminState,
  type SweepReport,
  type TestSessionsReport,
} from './admin/index.js';
import { AffinityTable, SessionIdCodec } from './affinity/index.js';
import type { Config } from './config/index.js';
import { DistributedMode } from './distributed/index.js';
import { ConfigError } from './errors.js';
import { FailoverManager, SessionInstaller, type MoveReport } from './failover/index.js';
import { HealthChecker, healthSettingsFrom } from './health/index.js';
import type { Logger } from './log.js';
import { NodeRegistry, type ProxyNode } from './nodes/index.js';
import { createDataPlane, createUpstreamAgent } from './proxy/data-plane.js';
import type { ProxyServer } from './proxy/proxy-server.js';
import type { Router } from './proxy/router.js';
import { failureEvidence } from './proxy/upstream-errors.js';
import { WorkerPool } from './proxy/worker-pool.js';
import {
  buildReplicationServer,
  DeferredReplicaStore,
  MemoryReplicaStore,
  type ReplicaStore,
} from './replication/index.js';
import { loadSecret } from './secret-file.js';
import { SessionStore } from './session/index.js';

/**
 * One stickylb proxy: the data plane (ProxyServer + Router) and the control plane (node
 * registry, health checker, affinity table, replica store, failover manager, admin
 * listener) wired together. The CLI builds one of these; tests do too.
 */
export class StickyLb implements AdminControl {
  readonly registry: NodeRegistry;
  readonly affinity: AffinityTable;
  readonly router: Router;
  readonly proxy: ProxyServer;
  readonly health: HealthChecker;
  /** The replica store: `memory` in this process, or `redis` (connected by `listen`). */
  readonly replicas: ReplicaStore;
  /** Set with `replication.store: memory`: hosted for the nodes by the replication listener. */
  readonly #memoryReplicas: MemoryReplicaStore | undefined;
  /** Set with `replication.store: redis`: connected to Redis by `listen`. */
  readonly #redisReplicas: DeferredReplicaStore | undefined;
  /** Distributed mode (`redis` store): moves shared with the other proxies, Redis up or down. */
  #distributed: DistributedMode | undefined;
  readonly failover: FailoverManager;
  readonly events = new EventLog();
  /** Per-node request rate and latency, fed by the proxy's response hook (admin). */
  readonly traffic = new NodeTraffic();
  /** Each node's session-store metrics, polled every 2 s. */
  readonly nodeMetrics: NodeMetrics;
  readonly #replicaCounts: ReplicaCounter;
  /** Test-session batches run one after another. */
  #testSessions: Promise<unknown> = Promise.resolve();
  readonly agent: Agent;
  #config: Config;
  #admin: FastifyInstance | undefined;
  #replication: FastifyInstance | undefined;
  readonly #logger: Logger;
  readonly #clientIps: SessionStore<string> | undefined;
  readonly #replicationSecret: string;
  readonly #sessionSecret: string;
  /** Proxy worker processes; undefined when the data plane runs in this process (`proxy.workers: 1`). */
  readonly workers: WorkerPool | undefined;
  readonly #workerCount: number;
  #countsTimer: NodeJS.Timeout | undefined;
  proxyAddress: AddressInfo | undefined;
  adminAddress: AddressInfo | undefined;
  replicationAddress: AddressInfo | undefined;

  constructor(config: Config, logger: Logger) {
    StickyLb.assertAdminIsSafe(config);
    this.#config = config;
    this.#logger = logger;
    this.#sessionSecret = loadSecret(config.session);
    const codec = new SessionIdCodec(Buffer.from(this.#sessionSecret));
    this.#replicationSecret = loadSecret(config.replication);
    this.#workerCount = config.proxy.workers === 'auto' ? availableParallelism() : config.proxy.workers;
    if (this.#workerCount > 1 && config.proxy.clientIpAffinity) {
      throw new ConfigError('config', [
        'proxy.clientIpAffinity: needs proxy.workers: 1 (the client-IP table is not shared between workers)',
      ]);
    }
    this.agent = createUpstreamAgent();
    this.registry = new NodeRegistry(config.nodes, { routeOf: (id) => codec.routeOf(id), agent: this.agent });
    this.nodeMetrics = new NodeMetrics({
      agent: this.agent,
      secret: this.#replicationSecret,
      nodes: () => this.registry.all,
    });
    this.affinity = new AffinityTable({
      registry: this.registry,
      idleTimeoutMs: config.session.idleTimeout,
      maxSessions: config.session.maxSessions,
      sweepIntervalMs: config.session.sweepInterval,
      activeWindowMs: config.session.activeWindow,
    });
    this.#clientIps = config.proxy.clientIpAffinity
      ? new SessionStore<string>({
          idleTimeoutMs: config.session.idleTimeout,
          maxSessions: config.session.maxSessions,
          sweepIntervalMs: config.session.sweepInterval,
        })
      : undefined;
    // With workers, this process keeps a router only to pick failover targets; the workers
    // build their own data plane the same way (src/proxy/proxy-worker.ts).
    ({ router: this.router, proxy: this.proxy } = createDataPlane({
      config,
      codec,
      registry: this.registry,
      affinity: this.affinity,
      logger,
      clientIps: this.#clientIps,
      onNodeFailure: (node, error) => this.#reportNodeFailure(node, error),
      moveSession: (key, fromNodeId) => this.failover.moveSession(key, fromNodeId),
      mayReplay: (key) => this.mayReplay(key),
    }));
    this.workers =
      this.#workerCount > 1
        ? new WorkerPool({
            count: this.#workerCount,
            config,
            sessionSecret: this.#sessionSecret,
            logger: logger.child({ component: 'workers' }),
            control: {
              nodeSnapshots: () =>
                this.registry.all.map((node) => ({
                  id: node.id,
                  isHealthy: node.isHealthy,
                  isDraining: node.isDraining,
                  sessions: node.sessions,
                  incoming: node.incoming,
                })),
              movedEntries: () => this.affinity.movedEntries(),
              recordUsed: (key, nodeId, version) => this.recordUsed(key, nodeId, version),
              mayReplay: (key) => this.mayReplay(key),
              reportFailure: (nodeId, reason, evidence) =>
                this.health.reportFailure(nodeId, reason, evidence),
              moveSession: (key, fromNodeId) => this.failover.moveSession(key, fromNodeId),
              absorbTraffic: (workerId, snapshot) =>
                snapshot === undefined
                  ? this.traffic.retire(workerId)
                  : this.traffic.absorb(workerId, snapshot),
            },
          })
        : undefined;
    if (this.workers !== undefined) {
      const workers = this.workers;
      this.affinity.onMovedChange = (key, nodeId) => workers.queueMoved(key, nodeId);
      this.affinity.onMovedFlush = () => workers.flushMoved();
      this.registry.on('state', () => workers.broadcastNodes());
      this.registry.on('changed', () => workers.broadcastNodes());
    }

    this.health = new HealthChecker({
      ...healthSettingsFrom(config.health),
      logger: logger.child({ component: 'health' }),
    });
    this.health.setTargets(config.nodes);
    this.health.on('node:down', (nodeId, reason) => this.#onHealth(nodeId, false, reason));
    this.health.on('node:up', (nodeId) => this.#onHealth(nodeId, true, 'health checks pass'));

    if (config.replication.store === 'redis') {
      this.#redisReplicas = new DeferredReplicaStore();
      this.replicas = this.#redisReplicas;
    } else {
      this.#memoryReplicas = new MemoryReplicaStore({
        idleTimeoutMs: config.session.idleTimeout,
        // Every node's sessions: maxSessions bounds each node's store. (Nodes a reload adds
        // do not raise it: a store that fills refuses writes loudly, 503, and drops nothing.)
        maxSessions: config.session.maxSessions * config.nodes.length,
        sweepIntervalMs: config.session.sweepInterval,
      });
      this.replicas = this.#memoryReplicas;
    }
    this.failover = new FailoverManager({
      registry: this.registry,
      affinity: this.affinity,
      replicas: this.replicas,
      installer: new SessionInstaller({ agent: this.agent, secret: this.#replicationSecret }),
      pickNode: (excluding) => this.router.pickNode(excluding),
      onTargetFailure: (node, error) => this.#reportNodeFailure(node, error),
      logger: logger.child({ component: 'failover' }),
      onMoved: (moves) => this.#distributed?.shared.publish(moves),
      // Only another proxy can win a transfer from this one: with `memory` there is none to wait for.
      ...(config.replication.store === 'redis'
        ? {
            awaitPeerMove: (key: string, nodeId: string) =>
              this.#distributed?.shared.awaitMove(key, nodeId) ?? Promise.resolve(false),
          }
        : {}),
    });
    this.failover.on('move:start', (nodeId, reason, sessions) => {
      if (reason === 'request') return;
      this.events.push(
        `${reason === 'down' ? 'failover' : reason}:start`,
        `${reason}: moving ${sessions} sessions off ${nodeId}`,
        {
          node: nodeId,
          sessions,
        },
      );
    });
    this.failover.on('move:end', (report) => this.#onMoveEnd(report));

    // Admin: rate and latency per node (counters only on the request path), replicas per owner.
    this.proxy.onResponse = (node, statusCode, startedAtMs) =>
      this.traffic.record(node.id, statusCode, startedAtMs);
    this.#replicaCounts = new ReplicaCounter({
      // Redis keeps an index per owner (one ZCOUNT each), the memory store running counts.
      count: () => this.replicas.countsByOwner(),
    });
    this.failover.on('move:end', () => this.#replicaCounts.invalidate());
    this.registry.on('changed', () => this.traffic.retain(new Set(this.registry.all.map((node) => node.id))));
  }

  /** Binding the admin API off loopback without a token would hand the cluster to the network. */
  static assertAdminIsSafe(config: Config): void {
    if (!isLoopbackHost(config.admin.listen.host) && config.admin.token === undefined) {
      throw new ConfigError('config', [
        `admin.token: is required when admin.listen.host (${config.admin.listen.host}) is not a loopback address`,
      ]);
    }
  }

  get config(): Config {
    return this.#config;
  }

  /** Starts the replication, proxy and admin listeners (ports from the config; 0 picks a free one) and health checks. */
  async listen(): Promise<void> {
    const { proxy, admin, replication, redis, session } = this.#config;
    if (this.#redisReplicas !== undefined) {
      // Nodes write to Redis themselves: no replication listener.
      this.#distributed = await DistributedMode.connect({
        redis,
        idleTimeoutMs: session.idleTimeout,
        commandTimeoutMs: replication.timeout,
        affinity: this.affinity,
        registry: this.registry,
        logger: this.#logger,
        isMoving: (key) => this.failover.movingTo(key) !== undefined,
        moveAll: (nodeId) => this.failover.moveAll(nodeId, 'down'),
        onEvent: (type, message, detail) => this.events.push(type, message, detail),
      });
      this.#redisReplicas.attach(this.#distributed.store);
    }
    this.affinity.start();
    this.#memoryReplicas?.start();
    this.#clientIps?.start();
    if (this.#memoryReplicas !== undefined) {
      this.#replication = await buildReplicationServer({
        store: this.#memoryReplicas,
        secret: this.#replicationSecret,
        logger: this.#logger.child({ component: 'replication' }),
      });
      await this.#replication.listen({ port: replication.listen.port, host: replication.listen.host });
      this.replicationAddress = this.#replication.server.address() as AddressInfo;
    }
    if (this.workers === undefined) {
      this.proxyAddress = await this.proxy.listen(proxy.listen.port, proxy.listen.host);
    } else {
      const port = await this.workers.start();
      this.proxyAddress = { address: proxy.listen.host, family: 'IPv4', port };
      // Session counts (moving ones included) reach the workers' balancers at most 100 ms late
      // (state changes at once).
      let lastSignature = '';
      this.#countsTimer = setInterval(() => {
        const signature = this.registry.all.map((node) => `${node.sessions}+${node.incoming}`).join(',');
        if (signature !== lastSignature) this.workers?.broadcastNodes();
        lastSignature = signature;
      }, 100);
      this.#countsTimer.unref();
    }
    this.#admin = await buildAdminServer({ control: this, token: admin.token, logger: this.#logger });
    await this.#admin.listen({ port: admin.listen.port, host: admin.listen.host });
    this.adminAddress = this.#admin.server.address() as AddressInfo;
    this.health.start();
    this.nodeMetrics.start();
  }

  /** Graceful stop: listeners closed, in-flight requests finished (up to `graceMs`), timers stopped. */
  async close(graceMs = 10_000): Promise<void> {
    await this.health.stop();
    this.nodeMetrics.stop();
    this.#distributed?.stop();
    if (this.#countsTimer !== undefined) clearInterval(this.#countsTimer);
    await Promise.all([
      this.workers === undefined ? this.proxy.close(graceMs) : this.workers.close(graceMs),
      this.#admin?.close(),
    ]);
    // Last: nodes finishing in-flight requests still replicate their writes.
    await this.#replication?.close();
    await this.replicas.close();
    this.affinity.stop();
    this.#clientIps?.stop();
    this.registry.close();
    this.agent.destroy();
  }

  /**
   * Applies a reloaded config without dropping a connection: nodes added or removed,
   * weights, health settings, timeouts. Settings that need new sockets (listen addresses,
   * cookie names) are reported and kept until restart.
   */
  reload(next: Config): string[] {
    StickyLb.assertAdminIsSafe(next);
    const previous = this.#config;
    const { applied, notes: kept } = applicableReload(previous, next);
    const { added, removed, moved } = this.registry.reconcile(applied.nodes);
    const notes: string[] = [];
    if (added.length) notes.push(`nodes added: ${added.map((node) => node.id).join(', ')}`);
    if (removed.length) notes.push(`nodes removed: ${removed.map((node) => node.id).join(', ')}`);
    if (moved.length) notes.push(`nodes at a new URL: ${moved.map((node) => node.id).join(', ')}`);
    notes.push(...kept);
    this.health.updateSettings(healthSettingsFrom(applied.health));
    // A node at a new URL goes down here (health's `node:down`): its sessions fail over, state
    // and all, and it takes new ones once its health checks pass there.
    this.health.setTargets(applied.nodes);
    // Timeouts and limits of both request paths (in worker mode, each worker does the same).
    this.proxy.reconfigure(applied.proxy);
    // The workers route on their own copy of the nodes: without this they keep the start-up
    // list (no new node, removed ones still picked). Their replacements start from `applied`
    // too: with the restart-only settings of the running ones, not the file's.
    this.workers?.reload(applied);
    // The reconcile above broadcast node state before the workers knew the added nodes (they
    // skip unknown ids): send it again now that they do.
    this.workers?.broadcastNodes();
    this.#config = applied;
    this.events.push('config:reload', `config reloaded${notes.length ? `: ${notes.join('; ')}` : ''}`, {
      notes,
    });
    // Sessions of removed nodes move as if those nodes had failed.
    for (const node of removed) this.#moveAllOff(node.id);
    return notes;
  }

  state(): AdminState {
    const pooled = this.workers?.stats();
    return {
      nodes: this.registry.all.map((node) => ({
        id: node.id,
        url: node.url,
        state: node.state,
        sessions: node.sessions,
        incoming: node.incoming,
        weight: node.weight,
        healthy: node.isHealthy,
        draining: node.isDraining,
        inFlight: pooled === undefined ? node.inFlight : (pooled.nodes[node.id]?.[0] ?? 0),
        requests: pooled === undefined ? node.requests : (pooled.nodes[node.id]?.[1] ?? 0),
        lastCheck: this.health.lastResult(node.id),
        ...this.#nodeDetail(node.id),
        store: this.nodeMetrics.of(node.id),
      })),
      sessions: {
        // Distributed mode: node counts come from Redis (every proxy's sessions), this table holds only ours.
        total:
          this.#distributed === undefined
            ? this.affinity.size
            : this.registry.all.reduce((sum, node) => sum + Math.max(0, node.sessions), 0),
        untracked: this.affinity.untracked,
      },
      proxy: pooled?.counters ?? { ...this.proxy.counters, rejectedIds: this.router.counters.rejectedIds },
      workers:
        this.workers === undefined
          ? { count: 1, pids: [process.pid] }
          : { count: this.workers.size, pids: this.workers.pids, forks: this.workers.forks },
      failover: { ...this.failover.totals },
      replication: this.replicas.stats(),
      events: this.events.recent(50),
      ...(this.#distributed === undefined ? {} : { redis: this.#distributed.state() }),
      ...this.#stateDetail(),
    };
  }

  hasNode(nodeId: string): boolean {
    return this.registry.get(nodeId) !== undefined;
  }

  drain(nodeId: string): boolean {
    const changed = this.registry.setDraining(nodeId, true);
    if (changed) this.events.push('node:drain', `${nodeId} drained: no new sessions`, { node: nodeId });
    return changed;
  }

  undrain(nodeId: string): boolean {
    const changed = this.registry.setDraining(nodeId, false);
    if (changed) this.events.push('node:undrain', `${nodeId} takes new sessions again`, { node: nodeId });
    return changed;
  }

  /**
   * Whether a non-idempotent request of session `key` that died with its node may be replayed:
   * only if the replica store holds no newer version than the last answer the proxy saw (the
   * node never applied it — sync replication writes before the node answers). Nothing
   * replicated at all proves the same. Session state only: side effects an app makes outside
   * its session are the app's to make idempotent.
   */
  async mayReplay(key: string): Promise<boolean> {
    const replica = await this.replicas.read(key);
    return replica === undefined || replica.version <= this.affinity.versionOf(key);
  }

  /**
   * A data-plane worker's report that `nodeId` served session `key` (reports come in batches,
   * up to 20 ms late). One about a node that went down (or a reload removed) meanwhile would
   * pin there a session its failover did not list, until the session's next request: it moves
   * now, as the failover would have moved it.
   */
  recordUsed(key: string, nodeId: string, version: number): void {
    this.affinity.record(key, nodeId, false, version);
    if (this.registry.get(nodeId)?.isHealthy === true || this.affinity.nodeOf(key) !== nodeId) return;
    this.failover.moveSession(key, nodeId).catch((error: unknown) => {
      this.#logger.warn({ node: nodeId, err: error }, 'moving a session reported from a down node failed');
    });
  }

  /** Drains a node and moves every session off it, state and all: then it can be stopped with nothing lost. */
  async evacuate(nodeId: string): Promise<MoveReport> {
    this.drain(nodeId);
    return this.failover.moveAll(nodeId, 'evacuate');
  }

  /** Moves sessions until every node is within `balancing.rebalanceSpread` of its fair share. */
  rebalance(): Promise<MoveReport> {
    return this.failover.rebalance(this.#config.balancing.rebalanceSpread);
  }

  /** A request or a session move found the node failing: passive health evidence. */
  #reportNodeFailure(node: ProxyNode, error: Error): void {
    this.health.reportFailure(node.id, error.message, failureEvidence(error));
  }

  #onHealth(nodeId: string, isUp: boolean, reason: string): void {
    if (!this.registry.setHealthy(nodeId, isUp)) return;
    if (isUp) {
      this.events.push('node:up', `${nodeId} is up`, { node: nodeId });
      void this.failover.onNodeUp(nodeId);
    } else {
      this.events.push('node:down', `${nodeId} is down: ${reason}`, { node: nodeId, reason });
      // Move its sessions now, before their next requests arrive.
      this.#moveAllOff(nodeId);
    }
  }

  /**
   * Proactive failover, not awaited: a replica store that fails under it (Redis down, or
   * closed during shutdown) is logged, never an unhandled rejection that kills the proxy.
   * Sessions not moved now still move on demand with their next request.
   */
  #moveAllOff(nodeId: string): void {
    this.failover.moveAll(nodeId, 'down').catch((error: unknown) => {
      this.#logger.error({ node: nodeId, err: error }, 'failover of a down node failed');
      this.events.push('failover:error', `failover of ${nodeId} failed: ${(error as Error).message}`, {
        node: nodeId,
      });
    });
  }

  #onMoveEnd(report: MoveReport): void {
    const kind = report.reason === 'down' ? 'failover' : report.reason;
    if (report.reason === 'request') return;
    const total = report.moved + report.lost;
    const from = report.nodeId === '*' ? '' : ` from ${report.nodeId}`;
    // Sessions that could not move are said in the same line: a failover that failed must not read as done.
    const failed =
      report.failed > 0
        ? `; ${report.failed} could not move${report.storeError === undefined ? '' : ` (${report.storeError})`}`
        : '';
    this.events.push(
      `${kind}:end`,
      `${kind}: ${total} sessions moved${from} in ${report.durationMs} ms${failed}`,
      { ...report },
    );
  }

  refreshState(): Promise<void> {
    return this.#replicaCounts.ensureFresh();
  }

  sessionCounts(): Array<{ id: string; sessions: number }> {
    return this.registry.all.map((node) => ({ id: node.id, sessions: node.sessions }));
  }

  /**
   * Creates `count` real sessions through this proxy's own listener (`POST /api/counter`
   * without a cookie), 32 at a time. Batches run one after another.
   */
  createTestSessions(count: number): Promise<TestSessionsReport> {
    const run = this.#testSessions.then(async () => {
      const address = this.proxyAddress;
      if (address === undefined) throw new Error('the proxy is not listening');
      this.events.push('test-sessions:start', `creating ${count} test sessions`, { count });
      const report = await createTestSessions({ host: loopbackOf(address), port: address.port, count });
      this.events.push(
        'test-sessions:end',
        `${report.created} test sessions created in ${report.durationMs} ms${report.failed ? `, ${report.failed} failed` : ''}`,
        { ...report },
      );
      this.#replicaCounts.invalidate();
      return report;
    });
    this.#testSessions = run.catch(() => undefined);
    return run;
  }

  /** Sweeps expired sessions out of the affinity table (and the client-IP table) now. */
  async sweep(): Promise<SweepReport> {
    const started = performance.now();
    const [expired] = await Promise.all([this.affinity.store.sweep(), this.#clientIps?.sweep()]);
    const report = {
      affinity: {
        expired,
        durationMs: Math.round(performance.now() - started),
        sessions: this.affinity.size,
      },
    };
    this.events.push('sweep', `sweep: ${expired} expired sessions removed from the affinity table`, report);
    return report;
  }

  /** Admin detail of one node: replicas it owns, rate, latency, status classes. */
  #nodeDetail(
    nodeId: string,
  ): Pick<AdminState['nodes'][number], 'replicas' | 'requestsPerSec' | 'latencyMs' | 'responses'> {
    const counts = this.#replicaCounts.counts;
    return {
      replicas: counts === undefined ? null : (counts.get(nodeId) ?? 0),
      ...this.traffic.summary(nodeId),
    };
  }

  /** Admin detail of the whole proxy: affinity table metrics, event cursor. */
  #stateDetail(): Pick<AdminState, 'affinity' | 'lastEventId' | 'at'> {
    return { affinity: this.affinity.store.metrics(), lastEventId: this.events.lastId, at: Date.now() };
  }

  /** The node a session is pinned to now (tests, admin). */
  nodeOfSession(key: string): ProxyNode | undefined {
    return this.registry.get(this.affinity.nodeOf(key) ?? '');
  }
}

/** An address to reach a listener bound to `address` from this machine (a wildcard bind answers on loopback). */
function loopbackOf(address: AddressInfo): string {
  if (address.address === '0.0.0.0' || address.address === '') return '127.0.0.1';
  if (address.address === '::') return '::1';
  return address.address;
}

/** Proxy settings read once at start (sockets, parsers, the id codec): a reload keeps them. */
const RESTART_ONLY_PROXY_KEYS = [
  'listen',
  'workers',
  'maxHeaderBytes',
  'trustedProxies',
  'clientIpAffinity',
  'maxBodyBytes',
] as const;
const RESTART_ONLY_SECTIONS = ['session', 'admin', 'replication', 'redis', 'log'] as const;

/**
 * The config a reload applies: `next`, except the settings that need a restart, which keep
 * their running values (a worker started later must agree with the running ones: another
 * cookie name or policy there would lose its clients' sessions), and a note for each such
 * setting the file changed.
 */
export function applicableReload(previous: Config, next: Config): { applied: Config; notes: string[] } {
  const notes: string[] = [];
  const proxy = { ...next.proxy };
  for (const key of RESTART_ONLY_PROXY_KEYS) {
    if (JSON.stringify(previous.proxy[key]) === JSON.stringify(next.proxy[key])) continue;
    notes.push(`proxy.${key}: needs a restart`);
    Object.assign(proxy, { [key]: previous.proxy[key] });
  }
  const applied = { ...next, proxy, balancing: { ...next.balancing, policy: previous.balancing.policy } };
  for (const section of RESTART_ONLY_SECTIONS) {
    if (JSON.stringify(previous[section]) === JSON.stringify(next[section])) continue;
    notes.push(`${section}: needs a restart`);
    Object.assign(applied, { [section]: previous[section] });
  }
  if (previous.balancing.policy !== next.balancing.policy) notes.push('balancing.policy: needs a restart');
  return { applied, notes };
}

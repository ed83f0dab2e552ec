import { Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import {
  buildAdminServer,
  EventLog,
  isLoopbackHost,
  type AdminControl,
  type AdminState,
} from './admin/index.js';
import { AffinityTable, SessionCookie, SessionIdCodec } from './affinity/index.js';
import { createBalancingPolicy } from './balancing/index.js';
import type { Config } from './config/index.js';
import { ConfigError } from './errors.js';
import { FailoverManager, SessionInstaller, type MoveReport } from './failover/index.js';
import { HealthChecker, healthSettingsFrom } from './health/index.js';
import type { Logger } from './log.js';
import { NodeRegistry, type ProxyNode } from './nodes/index.js';
import { ProxyServer } from './proxy/proxy-server.js';
import { Router } from './proxy/router.js';
import { buildReplicationServer, MemoryReplicaStore } from './replication/index.js';
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
  readonly replicas: MemoryReplicaStore;
  readonly failover: FailoverManager;
  readonly events = new EventLog();
  readonly agent: Agent;
  #config: Config;
  #admin: FastifyInstance | undefined;
  #replication: FastifyInstance | undefined;
  readonly #logger: Logger;
  readonly #clientIps: SessionStore<string> | undefined;
  readonly #replicationSecret: string;
  proxyAddress: AddressInfo | undefined;
  adminAddress: AddressInfo | undefined;
  replicationAddress: AddressInfo | undefined;

  constructor(config: Config, logger: Logger) {
    StickyLb.assertAdminIsSafe(config);
    this.#config = config;
    this.#logger = logger;
    const codec = new SessionIdCodec(Buffer.from(loadSecret(config.session)));
    this.#replicationSecret = loadSecret(config.replication);
    // Keep-alive toward the nodes: without it every request pays a TCP handshake (0.14× HAProxy
    // measured here vs 0.50× with it). LIFO reuses the warmest socket; idle sockets close after
    // 60 s, before the nodes' 65 s keep-alive timeout can close one under us.
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: 512,
      maxFreeSockets: 256,
      scheduling: 'lifo',
      timeout: 60_000,
    });
    this.registry = new NodeRegistry(config.nodes, { routeOf: (id) => codec.routeOf(id), agent: this.agent });
    this.affinity = new AffinityTable({
      registry: this.registry,
      idleTimeoutMs: config.session.idleTimeout,
      maxSessions: config.session.maxSessions,
      sweepIntervalMs: config.session.sweepInterval,
      activeWindowMs: config.session.activeWindow,
    });
    const cookie = new SessionCookie({
      cookieName: config.session.cookieName,
      urlParam: config.session.urlParam,
      secure: config.session.cookieSecure,
    });
    this.#clientIps = config.proxy.clientIpAffinity
      ? new SessionStore<string>({
          idleTimeoutMs: config.session.idleTimeout,
          maxSessions: config.session.maxSessions,
          sweepIntervalMs: config.session.sweepInterval,
        })
      : undefined;
    this.router = new Router({
      codec,
      cookie,
      registry: this.registry,
      affinity: this.affinity,
      policy: createBalancingPolicy(config.balancing.policy),
      clientIps: this.#clientIps,
    });

    this.health = new HealthChecker({
      ...healthSettingsFrom(config.health),
      logger: logger.child({ component: 'health' }),
    });
    this.health.setTargets(config.nodes);
    this.health.on('node:down', (nodeId, reason) => this.#onHealth(nodeId, false, reason));
    this.health.on('node:up', (nodeId) => this.#onHealth(nodeId, true, 'health checks pass'));

    this.replicas = new MemoryReplicaStore({
      idleTimeoutMs: config.session.idleTimeout,
      maxSessions: config.session.maxSessions,
      sweepIntervalMs: config.session.sweepInterval,
    });
    this.failover = new FailoverManager({
      registry: this.registry,
      affinity: this.affinity,
      replicas: this.replicas,
      installer: new SessionInstaller({ agent: this.agent, secret: this.#replicationSecret }),
      pickNode: (excluding) => this.router.pickNode(excluding),
      onTargetFailure: (node, error) => this.health.reportFailure(node.id, error.message),
      logger: logger.child({ component: 'failover' }),
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

    this.proxy = new ProxyServer({
      config: config.proxy,
      router: this.router,
      cookie,
      affinity: this.affinity,
      agent: this.agent,
      logger: logger.child({ component: 'proxy' }),
      onNodeFailure: (node, error) => this.health.reportFailure(node.id, error.message),
      moveSession: (key, fromNodeId) => this.failover.moveSession(key, fromNodeId),
    });
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
    this.affinity.start();
    this.replicas.start();
    this.#clientIps?.start();
    const { proxy, admin, replication } = this.#config;
    this.#replication = await buildReplicationServer({
      store: this.replicas,
      secret: this.#replicationSecret,
      logger: this.#logger.child({ component: 'replication' }),
    });
    await this.#replication.listen({ port: replication.listen.port, host: replication.listen.host });
    this.replicationAddress = this.#replication.server.address() as AddressInfo;
    this.proxyAddress = await this.proxy.listen(proxy.listen.port, proxy.listen.host);
    this.#admin = await buildAdminServer({ control: this, token: admin.token, logger: this.#logger });
    await this.#admin.listen({ port: admin.listen.port, host: admin.listen.host });
    this.adminAddress = this.#admin.server.address() as AddressInfo;
    this.health.start();
  }

  /** Graceful stop: listeners closed, in-flight requests finished (up to `graceMs`), timers stopped. */
  async close(graceMs = 10_000): Promise<void> {
    await this.health.stop();
    await Promise.all([this.proxy.close(graceMs), this.#admin?.close(), this.#replication?.close()]);
    await this.replicas.close();
    this.affinity.stop();
    this.#clientIps?.stop();
    this.agent.destroy();
  }

  /**
   * Applies a reloaded config without dropping a connection: nodes added or removed,
   * weights, health settings, timeouts. Settings that need new sockets (listen addresses,
   * cookie names) are reported and kept until restart.
   */
  reload(next: Config): string[] {
    StickyLb.assertAdminIsSafe(next);
    const notes: string[] = [];
    const previous = this.#config;
    const { added, removed } = this.registry.reconcile(next.nodes);
    if (added.length) notes.push(`nodes added: ${added.map((node) => node.id).join(', ')}`);
    if (removed.length) notes.push(`nodes removed: ${removed.map((node) => node.id).join(', ')}`);
    this.health.updateSettings(healthSettingsFrom(next.health));
    this.health.setTargets(next.nodes);
    const server = this.proxy.server;
    server.headersTimeout = next.proxy.timeouts.headers;
    server.requestTimeout = next.proxy.timeouts.request;
    server.keepAliveTimeout = next.proxy.timeouts.idle;
    server.maxConnections = next.proxy.maxConnections;
    for (const key of [
      'listen',
      'maxHeaderBytes',
      'trustedProxies',
      'clientIpAffinity',
      'maxBodyBytes',
    ] as const) {
      if (JSON.stringify(previous.proxy[key]) !== JSON.stringify(next.proxy[key]))
        notes.push(`proxy.${key}: needs a restart`);
    }
    for (const section of ['session', 'admin', 'replication'] as const) {
      if (JSON.stringify(previous[section]) !== JSON.stringify(next[section]))
        notes.push(`${section}: needs a restart`);
    }
    if (previous.balancing.policy !== next.balancing.policy) notes.push('balancing.policy: needs a restart');
    this.#config = next;
    this.events.push('config:reload', `config reloaded${notes.length ? `: ${notes.join('; ')}` : ''}`, {
      notes,
    });
    // Sessions of removed nodes move as if those nodes had failed.
    for (const node of removed) void this.failover.moveAll(node.id, 'down');
    return notes;
  }

  state(): AdminState {
    return {
      nodes: this.registry.all.map((node) => ({
        id: node.id,
        url: node.url,
        state: node.state,
        sessions: node.sessions,
        weight: node.weight,
        healthy: node.isHealthy,
        draining: node.isDraining,
        inFlight: node.inFlight,
        requests: node.requests,
        lastCheck: this.health.lastResult(node.id),
      })),
      sessions: { total: this.affinity.size },
      proxy: { ...this.proxy.counters, rejectedIds: this.router.counters.rejectedIds },
      failover: { ...this.failover.totals },
      replication: this.replicas.stats(),
      events: this.events.recent(50),
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

  /** Drains a node and moves every session off it, state and all: then it can be stopped with nothing lost. */
  async evacuate(nodeId: string): Promise<MoveReport> {
    this.drain(nodeId);
    return this.failover.moveAll(nodeId, 'evacuate');
  }

  /** Moves sessions until every node is within `balancing.rebalanceSpread` of its fair share. */
  rebalance(): Promise<MoveReport> {
    return this.failover.rebalance(this.#config.balancing.rebalanceSpread);
  }

  #onHealth(nodeId: string, isUp: boolean, reason: string): void {
    if (!this.registry.setHealthy(nodeId, isUp)) return;
    if (isUp) {
      this.events.push('node:up', `${nodeId} is up`, { node: nodeId });
      void this.failover.onNodeUp(nodeId);
    } else {
      this.events.push('node:down', `${nodeId} is down: ${reason}`, { node: nodeId, reason });
      // Pooled sockets to a dead node would fail the next requests with an ambiguous reset
      // (not replayable for POST); a fresh connection is refused cleanly and replayed.
      this.#dropIdleSockets(nodeId);
      // Move its sessions now, before their next requests arrive.
      void this.failover.moveAll(nodeId, 'down');
    }
  }

  #dropIdleSockets(nodeId: string): void {
    const node = this.registry.get(nodeId);
    if (node === undefined) return;
    const { hostname, port } = new URL(node.url);
    const name = this.agent.getName({ host: hostname, port: Number(port) || 80 });
    for (const socket of this.agent.freeSockets[name] ?? []) socket.destroy();
  }

  #onMoveEnd(report: MoveReport): void {
    const kind = report.reason === 'down' ? 'failover' : report.reason;
    if (report.reason === 'request') return;
    const total = report.moved + report.lost;
    const from = report.nodeId === '*' ? '' : ` from ${report.nodeId}`;
    this.events.push(`${kind}:end`, `${kind}: ${total} sessions moved${from} in ${report.durationMs} ms`, {
      ...report,
    });
  }

  /** The node a session is pinned to now (tests, admin). */
  nodeOfSession(key: string): ProxyNode | undefined {
    return this.registry.get(this.affinity.nodeOf(key) ?? '');
  }
}

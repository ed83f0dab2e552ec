/**
 * A stickylb cluster made of real processes from the compiled CLI, on free loopback
 * ports: `stickylb proxy --config FILE` (proxy, admin, replica store) and one
 * `stickylb backend --id ID --config FILE` per node, as the integration tests start them.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { parseConfig, type ConfigInput } from '../src/config/index.js';
import { BenchProcess, CLI, freePort, makeTempDir, waitFor, waitForHttp } from './common.js';

export interface StickyClusterOptions {
  nodeCount?: number;
  /** `replication.mode` (default sync, the default of the config). */
  replicationMode?: 'sync' | 'async';
  /** Label in process names and diagnostics. */
  label?: string;
  /** `session.idleTimeout` (default: the config's default). */
  idleTimeout?: string;
  /** Set: `replication.store: redis` on this Redis (nodes write to it directly); unset: `memory`. */
  redisUrl?: string;
  /** Node flags of the proxy process (e.g. `--cpu-prof`; its workers inherit them). */
  proxyFlags?: string[];
}

/** `BENCH_PROXY_WORKERS` sets `proxy.workers` of every cluster (default: the config's default). */
function proxyWorkersFromEnv(): Record<string, unknown> {
  const value = process.env.BENCH_PROXY_WORKERS;
  if (value === undefined || value === '') return {};
  return { workers: value === 'auto' ? 'auto' : Number(value) };
}

/**
 * Whether this build's config has `proxy.workers` (the multi-process data plane): the
 * bench then also measures `workers: 1`, one process like each of the other proxies.
 */
export function hasProxyWorkers(): boolean {
  try {
    parseConfig({ proxy: { workers: 1 }, nodes: [{ id: 'a', url: 'http://127.0.0.1:1' }] });
    return true;
  } catch {
    return false;
  }
}

function parseConfigFile(file: string): ConfigInput & Record<string, unknown> {
  return parse(readFileSync(file, 'utf8')) as ConfigInput & Record<string, unknown>;
}

function writeConfigFile(config: unknown): string {
  const dir = makeTempDir('stickylb-bench-');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

/** The part of `GET /api/state` the benches read. */
export interface ClusterState {
  nodes: Array<{ id: string; state: string; sessions: number }>;
  sessions: { total: number };
  proxy?: Record<string, number>;
  failover?: Record<string, number>;
  events?: Array<{ type: string; at: number; message: string; durationMs?: number; moved?: number }>;
}

export class StickyCluster {
  readonly nodes: BenchProcess[] = [];

  private constructor(
    readonly proxy: BenchProcess,
    readonly proxyUrl: string,
    readonly adminUrl: string,
    readonly nodeIds: string[],
    readonly nodeUrls: string[],
    readonly configFile: string,
  ) {}

  /** Starts the proxy first (it hosts the replica store the nodes write to), then the nodes. */
  static async start(options: StickyClusterOptions = {}): Promise<StickyCluster> {
    const nodeCount = options.nodeCount ?? 3;
    const label = options.label ?? 'stickylb';
    const [proxyPort, adminPort, replicationPort, ...nodePorts] = await Promise.all(
      Array.from({ length: 3 + nodeCount }, () => freePort()),
    );
    const nodeIds = nodePorts.map((_, index) => `node-${index + 1}`);
    const nodeUrls = nodePorts.map((port) => `http://127.0.0.1:${port}`);
    // Every feature at its default (sync replication, health checks every 1 s, least-sessions);
    // logs at warn so no process spends the run writing lines nobody reads.
    const config: ConfigInput = {
      proxy: { listen: { host: '127.0.0.1', port: proxyPort }, ...proxyWorkersFromEnv() },
      admin: { listen: { host: '127.0.0.1', port: adminPort } },
      session: {
        secret: randomBytes(24).toString('base64url'),
        ...(options.idleTimeout !== undefined ? { idleTimeout: options.idleTimeout } : {}),
      },
      replication: {
        mode: options.replicationMode ?? 'sync',
        store: options.redisUrl === undefined ? 'memory' : 'redis',
        listen: { host: '127.0.0.1', port: replicationPort },
        secret: randomBytes(24).toString('base64url'),
      },
      ...(options.redisUrl === undefined ? {} : { redis: { url: options.redisUrl } }),
      log: { level: 'warn' },
      nodes: nodeUrls.map((url, index) => ({ id: nodeIds[index] as string, url })),
    };
    const configFile = writeConfigFile(config);
    const dir = dirname(configFile);

    const proxy = new BenchProcess(
      `${label} proxy`,
      process.execPath,
      [...(options.proxyFlags ?? []), CLI, 'proxy', '--config', configFile],
      { cwd: dir },
    );
    const cluster = new StickyCluster(
      proxy,
      `http://127.0.0.1:${proxyPort}`,
      `http://127.0.0.1:${adminPort}`,
      nodeIds,
      nodeUrls,
      configFile,
    );
    try {
      await waitForHttp(`${label} proxy`, `${cluster.adminUrl}/api/state`, proxy);
      for (const id of nodeIds) cluster.nodes.push(cluster.#spawnNode(id, dir, label));
      await Promise.all(
        nodeUrls.map((url, index) =>
          waitForHttp(`${label} ${nodeIds[index]}`, `${url}/health`, cluster.nodes[index]),
        ),
      );
      await waitFor(
        `${label}: every node up`,
        async () => (await cluster.state()).nodes.every((node) => node.state === 'up'),
        15_000,
        proxy,
      );
    } catch (error) {
      const output = [proxy, ...cluster.nodes]
        .map((child) => `--- ${child.name}\n${child.output}`)
        .join('\n');
      await cluster.close();
      throw new Error(`${label} cluster did not start:\n${output}`, { cause: error });
    }
    return cluster;
  }

  /**
   * Starts node `index` again after it was killed, as `stickylb backend --id ID` would (the
   * new process replaces the old in `nodes`); resolves once it answers /health.
   */
  async restartNode(index: number, label = 'stickylb'): Promise<BenchProcess> {
    const id = this.nodeIds[index] as string;
    const node = this.#spawnNode(id, dirname(this.configFile), label);
    this.nodes[index] = node;
    await waitForHttp(`${label} ${id}`, `${this.nodeUrls[index]}/health`, node);
    return node;
  }

  #spawnNode(id: string, dir: string, label: string): BenchProcess {
    return new BenchProcess(
      `${label} ${id}`,
      process.execPath,
      [CLI, 'backend', '--id', id, '--config', this.configFile],
      { cwd: dir },
    );
  }

  /**
   * Another `stickylb proxy` in front of the same nodes, with its own ports and `proxy`
   * settings. The nodes still replicate to this cluster's proxy (their config names it), so
   * the extra one only routes: its CPU holds no replica store work.
   */
  async startExtraProxy(
    label: string,
    proxy: Record<string, unknown>,
    /** Node flags of the proxy process (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
    nodeFlags: string[] = [],
    /** The CLI to run: another build's `dist/src/cli.js` for an old-vs-new comparison. */
    cli = CLI,
  ): Promise<{ process: BenchProcess; url: string }> {
    const [port, adminPort, replicationPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const base = parseConfigFile(this.configFile);
    const configFile = writeConfigFile({
      ...base,
      proxy: { ...base.proxy, ...proxy, listen: { host: '127.0.0.1', port } },
      admin: { listen: { host: '127.0.0.1', port: adminPort } },
      replication: { ...base.replication, listen: { host: '127.0.0.1', port: replicationPort } },
    });
    const child = new BenchProcess(
      label,
      process.execPath,
      [...nodeFlags, cli, 'proxy', '--config', configFile],
      { cwd: dirname(configFile) },
    );
    try {
      await waitForHttp(label, `http://127.0.0.1:${adminPort}/api/state`, child);
      await waitFor(
        `${label}: every node up`,
        async () => {
          const response = await fetch(`http://127.0.0.1:${adminPort}/api/state`);
          return ((await response.json()) as ClusterState).nodes.every((node) => node.state === 'up');
        },
        15_000,
        child,
      );
    } catch (error) {
      await child.stop();
      throw new Error(`${label} did not start:\n${child.output}`, { cause: error });
    }
    return { process: child, url: `http://127.0.0.1:${port}` };
  }

  async state(): Promise<ClusterState> {
    const response = await fetch(`${this.adminUrl}/api/state`, { signal: AbortSignal.timeout(5000) });
    return (await response.json()) as ClusterState;
  }

  /** Stops the proxy and every node (SIGTERM, SIGKILL after 5 s). */
  async close(): Promise<void> {
    await Promise.all([this.proxy.stop(), ...this.nodes.map((node) => node.stop())]);
  }
}

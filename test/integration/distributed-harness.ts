import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ConfigInput } from '../../src/config/index.js';
import { freePort, NodeProcess, spawnCli, TEST_WORKERS, waitFor, writeConfig } from './harness.js';

/** A `stickylb proxy` running as its own OS process, on ports fixed by its config file. */
export class ProxyProcess {
  readonly child: ChildProcess;
  output = '';
  constructor(
    readonly proxyUrl: string,
    readonly adminUrl: string,
    readonly configFile: string,
  ) {
    this.child = spawnCli(['proxy', '--config', configFile], (text) => (this.output += text));
  }

  /** `GET /api/state` of this proxy's admin listener. */
  async state(): Promise<any> {
    const response = await fetch(`${this.adminUrl}/api/state`);
    if (!response.ok) throw new Error(`GET /api/state: ${response.status}`);
    return response.json();
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.adminUrl}/metrics`)).text();
  }

  /** Resolves once the proxy's admin answers and its health checks see every node up. */
  async ready(): Promise<void> {
    await waitFor(async () => {
      const state = await this.state();
      return state.nodes.every((node: { state: string }) => node.state === 'up');
    }, 20_000);
  }

  /** SIGTERM (graceful stop), SIGKILL if it is still running 5 s later. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

/** Proxies and nodes of a distributed deployment: every one its own process, all on one Redis. */
export interface Distributed {
  proxies: ProxyProcess[];
  nodes: NodeProcess[];
  /** Stops every proxy and node process (not Redis: the caller started it). */
  close(): Promise<void>;
}

/**
 * `proxyCount` `stickylb proxy` processes and `nodeCount` demo nodes sharing `redisUrl`
 * (`replication.store: redis`), the session and replication secrets, and the node list: a
 * deployment of several machines, on one.
 */
export async function startDistributed(options: {
  redisUrl: string;
  proxyCount?: number;
  nodeCount?: number;
  config?: Partial<ConfigInput>;
}): Promise<Distributed> {
  const nodeUrls = await Promise.all(
    Array.from({ length: options.nodeCount ?? 3 }, async () => `http://127.0.0.1:${await freePort()}`),
  );
  // Shared by every process, as the README's example has them (no generated secret files).
  const secrets = {
    session: randomBytes(24).toString('base64url'),
    replication: randomBytes(24).toString('base64url'),
  };
  const configOf = (proxyPort: number, adminPort: number): ConfigInput => ({
    ...options.config,
    proxy: { workers: TEST_WORKERS, listen: { host: '127.0.0.1', port: proxyPort } },
    admin: { listen: { host: '127.0.0.1', port: adminPort } },
    session: { secret: secrets.session },
    replication: { store: 'redis', secret: secrets.replication },
    redis: { url: options.redisUrl },
    health: { interval: '500ms', timeout: '400ms' },
    log: { level: 'warn' },
    nodes: nodeUrls.map((url, index) => ({ id: `node-${index + 1}`, url })),
  });
  const proxies: ProxyProcess[] = [];
  const nodes: NodeProcess[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(proxies.map((proxy) => proxy.stop()));
    await Promise.all(nodes.map((node) => node.kill()));
  };
  try {
    // Nodes first, each port bound right after it was picked (on a shared machine a free port
    // does not stay free for long); they need no proxy, only Redis.
    const nodeConfig = writeConfig(configOf(0, 0));
    nodes.push(...nodeUrls.map((url, index) => new NodeProcess(`node-${index + 1}`, url, nodeConfig)));
    await Promise.all(nodes.map((node) => node.ready()));
    for (let i = 0; i < (options.proxyCount ?? 2); i++) {
      const [proxyPort, adminPort] = [await freePort(), await freePort()];
      const file = writeConfig(configOf(proxyPort, adminPort));
      proxies.push(new ProxyProcess(`http://127.0.0.1:${proxyPort}`, `http://127.0.0.1:${adminPort}`, file));
    }
    await Promise.all(proxies.map((proxy) => proxy.ready()));
  } catch (error) {
    await close();
    const output = [...proxies, ...nodes].map((child) => child.output).join('\n');
    throw new Error(`distributed deployment did not start:\n${output}`, { cause: error });
  }
  return { proxies, nodes, close };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createLogger, createSilentLogger } from '../../src/log.js';
import { StickyLb } from '../../src/stickylb.js';
import { freePort } from '../helpers/free-port.js';

/**
 * Proxy worker processes for the suite: `npm test` runs the integration tests once with one
 * worker (data plane in the control-plane process) and once with two (node:cluster + IPC).
 */
export const TEST_WORKERS = Number(process.env.STICKYLB_TEST_WORKERS ?? 1);

/**
 * `STICKYLB_TEST_LOG=debug` (or info, warn…): the proxy under test logs at that level (its
 * workers too) instead of staying silent, and each node's output is printed when its cluster
 * closes, to see what happened in a run that failed.
 */
const TEST_LOG = process.env.STICKYLB_TEST_LOG as NonNullable<ConfigInput['log']>['level'];

/** The compiled CLI (`npm test` builds before vitest runs). */
export const CLI = resolve('dist/src/cli.js');

export { freePort };

/** Writes a config to a fresh temp dir; returns its path. */
export function writeConfig(config: ConfigInput): string {
  const dir = mkdtempSync(join(tmpdir(), 'stickylb-test-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, stringify(config));
  return file;
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the compiled CLI as a child process; its stdout and stderr go to `onOutput`. */
export function spawnCli(args: readonly string[], onOutput: (text: string) => void): ChildProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STICKYLB_LOG: 'json', STICKYLB_DEMO_CRASH_ROUTE: '1' },
  });
  child.stdout?.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => onOutput(chunk.toString()));
  return child;
}

/** A demo node running as its own OS process, as `stickylb backend --id` starts it. */
export class NodeProcess {
  child: ChildProcess;
  output = '';
  constructor(
    readonly id: string,
    readonly url: string,
    readonly configFile: string,
  ) {
    this.child = this.#spawn();
  }

  #spawn(): ChildProcess {
    return spawnCli(
      ['backend', '--id', this.id, '--config', this.configFile],
      (text) => (this.output += text),
    );
  }

  get pid(): number {
    return this.child.pid as number;
  }

  async ready(): Promise<void> {
    // 20 s: a node's start-up takes several seconds when the 2-core box is shared and loaded.
    await waitFor(async () => (await fetch(`${this.url}/health`)).ok, 20_000);
  }

  /** kill -9: the node dies at once, mid-whatever. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill(signal);
    await exited;
  }

  /** Starts the node again, as `npx stickylb backend --id` would. */
  async restart(): Promise<void> {
    await this.kill();
    this.child = this.#spawn();
    await this.ready();
  }
}

export interface Cluster {
  lb: StickyLb;
  nodes: NodeProcess[];
  configFile: string;
  proxyUrl: string;
  adminUrl: string;
  /** Stops the proxy and every node process. */
  close(): Promise<void>;
}

/** `nodeCount` demo node processes behind an in-process proxy on free ports. */
export async function startCluster(
  options: { nodeCount?: number; config?: Partial<ConfigInput>; secretFile?: string } = {},
): Promise<Cluster> {
  const nodeCount = options.nodeCount ?? 3;
  const nodeUrls = await Promise.all(
    Array.from({ length: nodeCount }, async () => `http://127.0.0.1:${await freePort()}`),
  );
  const replicationPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'stickylb-cluster-'));
  const input: ConfigInput = {
    ...options.config,
    proxy: { workers: TEST_WORKERS, ...options.config?.proxy, listen: { host: '127.0.0.1', port: 0 } },
    admin: { listen: { host: '127.0.0.1', port: 0 } },
    session: { secretFile: options.secretFile ?? join(dir, 'secret'), ...options.config?.session },
    replication: {
      ...options.config?.replication,
      listen: { host: '127.0.0.1', port: replicationPort },
      secretFile: join(dir, 'replication-secret'),
    },
    // Fast enough to see a SIGSTOP within ~1 s; slack enough that a loaded 2-core CI box
    // does not time out a probe of a live node.
    health: { interval: '500ms', timeout: '400ms', ...options.config?.health },
    log: { level: TEST_LOG ?? 'error' },
    nodes: nodeUrls.map((url, index) => ({ id: `node-${index + 1}`, url })),
  };
  const configFile = writeConfig(input);
  // The proxy first: it hosts the replica store the nodes write to.
  const logger =
    TEST_LOG === undefined ? createSilentLogger() : createLogger({ name: 'stickylb', level: TEST_LOG });
  const lb = new StickyLb(parseConfig(input), logger);
  await lb.listen();
  const nodes = nodeUrls.map((url, index) => new NodeProcess(`node-${index + 1}`, url, configFile));
  try {
    await Promise.all(nodes.map((node) => node.ready()));
    // Nodes started after the proxy: wait until health checks see every one up.
    // As long as a node's own start: health checks pass `rise` times after it answers.
    await waitFor(() => lb.registry.all.every((node) => node.isHealthy), 20_000);
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()));
    await lb.close(100);
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`nodes did not start: ${nodes.map((node) => node.output).join('\n')}`, { cause: error });
  }
  return {
    lb,
    nodes,
    configFile,
    proxyUrl: `http://127.0.0.1:${lb.proxyAddress?.port}`,
    adminUrl: `http://127.0.0.1:${lb.adminAddress?.port}`,
    async close() {
      await lb.close(1000);
      await Promise.all(nodes.map((node) => node.kill()));
      if (TEST_LOG !== undefined) {
        for (const node of nodes) process.stderr.write(`--- ${node.id} output ---\n${node.output}\n`);
      }
      // Config, secrets: nothing of a run stays behind in the temp folder.
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A client that keeps its SESSIONID like a browser's cookie jar (or sends it by URL). */
export class Client {
  sessionId: string | undefined;
  constructor(
    readonly baseUrl: string,
    readonly mode: 'cookie' | 'url' = 'cookie',
  ) {}

  async request(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; json: any }> {
    const headers: Record<string, string> = {};
    let url = this.baseUrl + path;
    if (this.sessionId !== undefined) {
      if (this.mode === 'cookie') headers.cookie = `SESSIONID=${this.sessionId}`;
      else url += `${path.includes('?') ? '&' : '?'}sessionId=${this.sessionId}`;
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const setCookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
    if (setCookie !== undefined)
      this.sessionId = setCookie.slice('SESSIONID='.length, setCookie.indexOf(';'));
    const text = await response.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    // URL-mode clients learn their id from the body, as a cookieless client would.
    if (this.mode === 'url' && json && typeof json === 'object' && 'sessionId' in json) {
      this.sessionId = (json as { sessionId: string }).sessionId;
    }
    return { status: response.status, headers: response.headers, json };
  }
}

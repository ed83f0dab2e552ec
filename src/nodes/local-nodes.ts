import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config, NodeConfig } from '../config/index.js';
import type { Logger } from '../log.js';

/** Set for nodes `start` runs: they exit when their stdin (a pipe from `start`) closes. */
export const EXIT_WITH_PARENT_ENV = 'STICKYLB_EXIT_WITH_PARENT';

/** Whether a node's URL points at this machine, so `start` runs it as a child process. */
export function isLocalNode(node: NodeConfig): boolean {
  const host = new URL(node.url).hostname;
  return host === 'localhost' || host === '[::1]' || (isIP(host) === 4 && host.startsWith('127.'));
}

/**
 * The demo nodes `stickylb start` runs as child processes, one OS process each (so a
 * `kill -9` takes down exactly one node). A node that dies is not restarted: watching
 * its sessions fail over is the point; bring it back with `stickylb backend --id`.
 */
export class LocalNodes {
  readonly #children = new Map<string, ChildProcess>();
  /** The URL of every local node of the config last applied, running or not (see `reload`). */
  #urls = new Map<string, string>();
  #reloading: Promise<void> = Promise.resolve();
  /** The config file nodes started by a reload read (see `reload`); created on the first one. */
  #runningConfigFile: string | undefined;
  readonly #cliPath: string;
  readonly #configFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #logger: Logger;
  #isStopping = false;

  constructor(options: { cliPath: string; configFile: string; env?: NodeJS.ProcessEnv; logger: Logger }) {
    this.#cliPath = options.cliPath;
    this.#configFile = options.configFile;
    this.#env = options.env ?? process.env;
    this.#logger = options.logger;
  }

  /** Pids of running children, by node id. */
  get pids(): Record<string, number | undefined> {
    return Object.fromEntries([...this.#children].map(([id, child]) => [id, child.pid]));
  }

  /** Starts every local node of the list that is not running yet, and waits until each answers /health. */
  start(nodes: readonly NodeConfig[], healthPath: string): Promise<void> {
    return this.#start(nodes, healthPath, this.#configFile);
  }

  async #start(nodes: readonly NodeConfig[], healthPath: string, configFile: string): Promise<void> {
    const started = nodes.filter((node) => isLocalNode(node) && !this.#children.has(node.id));
    for (const node of started) this.#urls.set(node.id, node.url);
    // A process already on a node's port would answer its health checks and take its traffic.
    await Promise.all(started.map((node) => assertPortFree(node)));
    const children = started.map((node) => this.#spawn(node, configFile));
    await Promise.all(
      started.map(async (node, index) => {
        const child = children[index] as ChildProcess;
        // A node that exits while starting (its port taken, say) must stop `start` loudly: the
        // proxy would otherwise send this node's sessions to whatever answers on that port.
        const exited = new Promise<never>((_, reject) =>
          child.once('exit', (code, signal) =>
            reject(
              new Error(
                `node ${node.id} exited while starting (${signal ?? `code ${code}`}); is ${node.url} already in use?`,
              ),
            ),
          ),
        );
        await Promise.race([waitForHealth(new URL(healthPath, node.url).href, 15_000), exited]);
        exited.catch(() => undefined);
      }),
    );
  }

  /**
   * Config reload, given the config the proxy now runs: stops the nodes no longer listed,
   * restarts those whose URL changed (the proxy now sends their traffic there) and starts the
   * new ones. A node that died stays down as before (`stickylb backend --id` brings it back,
   * maybe already has). Never throws: a node that cannot start (its port taken) is logged and
   * the rest go on, the proxy keeps running.
   *
   * The nodes it starts read `running`, not the edited file: a setting there that waits for a
   * restart (`replication.listen`, `session.*`) would make them disagree with the proxy and
   * the other nodes (replicate to a port nothing listens on, say).
   */
  reload(running: Config): Promise<void> {
    // One at a time: two SIGHUPs close together must not both start (or restart) a node.
    this.#reloading = this.#reloading
      .then(() => this.#reload(running))
      .catch((error: unknown) => this.#logger.error({ err: error }, 'applying the reloaded nodes failed'));
    return this.#reloading;
  }

  async #reload(running: Config): Promise<void> {
    const previous = this.#urls;
    const local = running.nodes.filter(isLocalNode);
    this.#urls = new Map(local.map((node) => [node.id, node.url]));
    const gone = [...previous.keys()].filter((id) => this.#urls.get(id) !== previous.get(id));
    await Promise.all(gone.map((id) => this.#stop(id)));
    const fresh = local.filter((node) => previous.get(node.id) !== node.url);
    if (fresh.length === 0) return;
    const configFile = this.#writeRunningConfig(running);
    await Promise.all(
      fresh.map(async (node) => {
        try {
          await this.#start([node], running.health.path, configFile);
        } catch (error) {
          this.#logger.error(
            { node: node.id },
            `could not start node ${node.id}: ${(error as Error).message}`,
          );
        }
      }),
    );
  }

  /** SIGTERM to every child; SIGKILL to any still alive after `graceMs`. */
  async stopAll(graceMs = 5000): Promise<void> {
    this.#isStopping = true;
    await Promise.all([...this.#children.keys()].map((id) => this.#stop(id, graceMs)));
    this.#removeRunningConfig();
  }

  /**
   * Writes the running config where the nodes a reload starts read it: JSON (which YAML
   * reads), durations in ms, in a folder of its own only this user can read (it may hold a
   * `redis.url` password). Rewritten by each reload; removed when `start` stops or exits.
   */
  #writeRunningConfig(running: Config): string {
    if (this.#runningConfigFile === undefined) {
      this.#runningConfigFile = join(mkdtempSync(join(tmpdir(), 'stickylb-running-')), 'config.yaml');
      process.once('exit', () => this.#removeRunningConfig());
    }
    writeFileSync(this.#runningConfigFile, `${JSON.stringify(running, null, 2)}\n`, { mode: 0o600 });
    return this.#runningConfigFile;
  }

  #removeRunningConfig(): void {
    if (this.#runningConfigFile === undefined) return;
    rmSync(join(this.#runningConfigFile, '..'), { recursive: true, force: true });
    this.#runningConfigFile = undefined;
  }

  #spawn(node: NodeConfig, configFile: string): ChildProcess {
    const child = spawn(
      process.execPath,
      [this.#cliPath, 'backend', '--id', node.id, '--config', configFile],
      // stdin is a pipe the child watches: it closes when this process dies, however it dies
      // (even kill -9), so no node outlives the `start` that owns it.
      // Detached: a process group of its own, so a terminal's Ctrl-C (SIGINT to the whole
      // foreground group) reaches `start` alone, which stops the proxy gracefully and only
      // then its nodes, instead of every node dying under requests still in flight.
      {
        stdio: ['pipe', 'inherit', 'inherit'],
        env: { ...this.#env, [EXIT_WITH_PARENT_ENV]: '1' },
        detached: true,
      },
    );
    this.#children.set(node.id, child);
    this.#logger.info({ node: node.id, pid: child.pid }, `started node ${node.id} (pid ${child.pid})`);
    child.once('exit', (code, signal) => {
      if (this.#children.get(node.id) === child) this.#children.delete(node.id);
      if (!this.#isStopping) {
        this.#logger.warn(
          { node: node.id, code, signal },
          `node ${node.id} exited (${signal ?? `code ${code}`}); not restarted`,
        );
      }
    });
    return child;
  }

  async #stop(id: string, graceMs = 5000): Promise<void> {
    const child = this.#children.get(id);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
    this.#children.delete(id);
  }
}

/** Fails when something already listens on a node's address (a stale node, another program). */
async function assertPortFree(node: NodeConfig): Promise<void> {
  const url = new URL(node.url);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port) || 80;
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `node ${node.id}: ${host}:${port} is already in use (a node left running? stop it, or change nodes[].url)`
            : `node ${node.id}: cannot listen on ${host}:${port}: ${error.message}`,
        ),
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** Polls a URL until it answers 200 or `timeoutMs` passes (then resolves anyway: health checks take over). */
async function waitForHealth(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

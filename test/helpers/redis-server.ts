import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** A real redis-server started for a test: no persistence, loopback only. */
export interface RedisServer {
  /** `redis://127.0.0.1:PORT` */
  readonly url: string;
  readonly port: number;
  /** Kills the server (SIGKILL: an outage, not a clean shutdown) and waits for it to exit. */
  stop(): Promise<void>;
  /**
   * Stops it, then starts an empty one on the same port (a Redis restart that lost its data),
   * or with its data when `keepData` (saved to disk just before the kill: an outage, no loss);
   * `whileDown` runs between the two (an outage to observe).
   */
  restart(options?: { whileDown?: () => Promise<void>; keepData?: boolean }): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 5;

/**
 * The redis-server binary: `$STICKYLB_REDIS_SERVER`, else the first on PATH (or in the
 * sbin folders Debian installs it to); undefined when there is none.
 */
export function findRedisServer(): string | undefined {
  return findBinary('redis-server', process.env.STICKYLB_REDIS_SERVER);
}

/** The redis-cli binary (joins a Cluster): `$STICKYLB_REDIS_CLI`, else the first on PATH. */
export function findRedisCli(): string | undefined {
  return findBinary('redis-cli', process.env.STICKYLB_REDIS_CLI);
}

function findBinary(name: string, override: string | undefined): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/sbin', '/usr/local/bin'];
  const candidates =
    override !== undefined && override !== '' ? [override] : dirs.map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return undefined;
}

let warned = false;

/**
 * Whether Redis tests can run. When they cannot, says so once on stderr, so a skipped Redis
 * suite is visible in the test output (the only skip allowed: `.ci/run` installs redis-server).
 */
export function redisServerAvailable(): boolean {
  const found = findRedisServer() !== undefined;
  if (!found && !warned) {
    warned = true;
    // eslint-disable-next-line no-console
    console.warn('redis-server not found (apt-get install redis-server): SKIPPING the Redis tests');
  }
  return found;
}

let warnedCli = false;

/**
 * Whether Redis Cluster tests can run: redis-server and redis-cli (which joins the nodes)
 * are both there. When they are not, says so once on stderr, like `redisServerAvailable`.
 */
export function redisClusterAvailable(): boolean {
  if (!redisServerAvailable()) return false;
  const found = findRedisCli() !== undefined;
  if (!found && !warnedCli) {
    warnedCli = true;
    // eslint-disable-next-line no-console
    console.warn('redis-cli not found (apt-get install redis-tools): SKIPPING the Redis Cluster tests');
  }
  return found;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once the server answers PING with PONG; false if it does not within the time. */
async function answersPing(port: number, deadline: number, child: ChildProcess): Promise<boolean> {
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    const pong = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      let reply = '';
      socket.setTimeout(500, () => socket.destroy());
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (chunk) => {
        reply += chunk.toString();
        if (reply.includes('\r\n')) socket.end();
      });
      socket.on('close', () => resolve(reply.startsWith('+PONG')));
      socket.on('error', () => undefined);
    });
    if (pong) return true;
    await sleep(20);
  }
  return false;
}

/** Spawns redis-server on `port`; resolves once it answers PING, rejects if it does not. */
async function spawnOn(
  binary: string,
  port: number,
  dir: string,
  args: readonly string[],
): Promise<ChildProcess> {
  const child = spawn(
    binary,
    // No RDB snapshots, no AOF: a restart is empty, as an outage of a cache-only Redis is.
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const spawned = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  if (spawned !== undefined) throw spawned;
  if (await answersPing(port, Date.now() + START_TIMEOUT_MS, child)) return child;
  await kill(child);
  throw new Error(`redis-server on port ${port} did not start:\n${output}`);
}

/** SIGKILL and wait for the exit (at once if it already exited). */
function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * Starts a real redis-server on a free loopback port, without persistence (`args` are added
 * to its command line, e.g. `['--replicaof', '127.0.0.1', '6379']`). Stop it in `afterAll`;
 * a process exit kills it too, so an aborted run leaves no server behind.
 */
export async function startRedisServer(options: { args?: readonly string[] } = {}): Promise<RedisServer> {
  const args = options.args ?? [];
  const binary = findRedisServer();
  if (binary === undefined) throw new Error('redis-server not found');
  const dir = mkdtempSync(join(tmpdir(), 'stickylb-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; child === undefined; attempt++) {
    port = await freePort();
    try {
      child = await spawnOn(binary, port, dir, args);
    } catch (error) {
      // Another process may have taken the port between freePort and the bind.
      if (attempt >= START_ATTEMPTS) throw error;
    }
  }
  let current: ChildProcess | undefined = child;
  const onExit = (): void => {
    current?.kill('SIGKILL');
  };
  process.once('exit', onExit);

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      const running = current;
      current = undefined;
      process.off('exit', onExit);
      if (running !== undefined) await kill(running);
      rmSync(dir, { recursive: true, force: true });
    },
    async restart(options) {
      if (options?.keepData === true) {
        const client = new Redis(port, '127.0.0.1', { lazyConnect: true });
        await client.connect();
        await client.save();
        client.disconnect();
      } else rmSync(join(dir, 'dump.rdb'), { force: true });
      if (current !== undefined) await kill(current);
      current = undefined;
      await options?.whileDown?.();
      mkdirSync(dir, { recursive: true });
      // The same port: clients reconnect to where they were. Retried while the port is released.
      for (let attempt = 1; current === undefined; attempt++) {
        try {
          current = await spawnOn(binary, port, dir, args);
        } catch (error) {
          if (attempt >= START_ATTEMPTS) throw error;
          await sleep(100);
        }
      }
      process.off('exit', onExit);
      process.once('exit', onExit);
    },
  };
}

/** A real Redis Cluster started for a test: three masters, no replicas, no persistence. */
export interface RedisCluster {
  /** `127.0.0.1:PORT` of each master, as `redis.cluster.nodes` lists them. */
  readonly nodes: readonly string[];
  readonly servers: readonly RedisServer[];
  /** Kills every master and removes their folders. */
  stop(): Promise<void>;
}

const CLUSTER_MASTERS = 3;

/**
 * Starts three `redis-server --cluster-enabled yes` masters on free loopback ports, joins them
 * with `redis-cli --cluster create` (the 16384 slots split three ways) and resolves once every
 * master says `cluster_state:ok`. Stop it in `afterAll`; on a failed start it stops what it started.
 */
export async function startRedisCluster(): Promise<RedisCluster> {
  const cli = findRedisCli();
  if (cli === undefined) throw new Error('redis-cli not found');
  const servers: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  };
  try {
    for (let i = 0; i < CLUSTER_MASTERS; i++) servers.push(await startClusterNode());
    const nodes = servers.map((server) => `127.0.0.1:${server.port}`);
    await run(cli, ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    await Promise.all(servers.map((server) => untilClusterOk(server.port)));
    return { nodes, servers: [...servers], stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * One empty cluster-enabled master. Its bus port is a free port of its own (`--cluster-port`),
 * not the default port + 10000, which may be taken or above 65535.
 */
async function startClusterNode(): Promise<RedisServer> {
  for (let attempt = 1; ; attempt++) {
    const busPort = await freePort();
    try {
      // nodes.conf lands in the server's own temporary folder (its --dir), removed by stop().
      return await startRedisServer({
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-port',
          String(busPort),
        ],
      });
    } catch (error) {
      if (attempt >= START_ATTEMPTS) throw error;
    }
  }
}

/** Runs a command to its end; rejects with its output if it fails or takes over the start timeout. */
function run(binary: string, args: readonly string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: START_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error === null) resolve();
      else reject(new Error(`${binary} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
    });
  });
}

/** Resolves once the node on `port` says `cluster_state:ok` (it knows every slot's master). */
async function untilClusterOk(port: number): Promise<void> {
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true });
  try {
    await client.connect();
    const deadline = Date.now() + START_TIMEOUT_MS;
    let info = '';
    while (Date.now() < deadline) {
      info = String(await client.call('CLUSTER', 'INFO'));
      if (info.includes('cluster_state:ok')) return;
      await sleep(50);
    }
    throw new Error(`redis-server on port ${port} is not in a ready cluster:\n${info}`);
  } finally {
    client.disconnect();
  }
}

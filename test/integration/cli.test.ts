import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { CLI, Client, freePort, waitFor, writeConfig } from './harness.js';

const running: ChildProcess[] = [];

afterEach(async () => {
  await Promise.all(
    running.splice(0).map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM first: `start` then stops its nodes too; SIGKILL only if it hangs.
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
});

function run(args: string[]): { child: ChildProcess; output: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STICKYLB_LOG: 'json' },
  });
  running.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exit };
}

async function clusterConfig(nodeCount: number) {
  const [proxyPort, adminPort, replicationPort, ...nodePorts] = await Promise.all(
    Array.from({ length: nodeCount + 3 }, () => freePort()),
  );
  const file = writeConfig({
    proxy: { listen: { host: '127.0.0.1', port: proxyPort } },
    admin: { listen: { host: '127.0.0.1', port: adminPort } },
    replication: { listen: { host: '127.0.0.1', port: replicationPort } },
    log: { level: 'info' },
    nodes: nodePorts.map((port, index) => ({ id: `node-${index + 1}`, url: `http://127.0.0.1:${port}` })),
  });
  // Keep the secret next to the config, not in the repo's working directory.
  const config = parse(readFileSync(file, 'utf8'));
  config.session = { secretFile: join(dirname(file), 'secret') };
  config.replication.secretFile = join(dirname(file), 'replication-secret');
  writeFileSync(file, stringify(config));
  return {
    file,
    proxyUrl: `http://127.0.0.1:${proxyPort}`,
    adminUrl: `http://127.0.0.1:${adminPort}`,
    nodePorts,
  };
}

describe('stickylb CLI', () => {
  it('start brings up the nodes as processes and the proxy; SIGTERM stops all of them', async () => {
    const { file, proxyUrl, nodePorts } = await clusterConfig(2);
    const proc = run(['start', '--config', file]);
    await waitFor(async () => (await fetch(`${proxyUrl}/health`)).ok, 20_000);
    const client = new Client(proxyUrl);
    const first = await client.request('POST', '/api/counter');
    const second = await client.request('POST', '/api/counter');
    expect(second.json).toMatchObject({ node: first.json.node, count: 2 });

    proc.child.kill('SIGTERM');
    expect(await proc.exit).toBe(0);
    for (const port of nodePorts) {
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    }
  });

  it('leaves no node running when start itself is killed with -9', async () => {
    const { file, proxyUrl, nodePorts } = await clusterConfig(2);
    const proc = run(['start', '--config', file]);
    await waitFor(async () => (await fetch(`${proxyUrl}/health`)).ok, 20_000);
    proc.child.kill('SIGKILL');
    await proc.exit;
    for (const port of nodePorts) {
      await waitFor(async () => {
        try {
          await fetch(`http://127.0.0.1:${port}/health`);
          return false;
        } catch {
          return true;
        }
      });
    }
  });

  it('refuses to start when a node’s port is already taken', async () => {
    const { file, nodePorts } = await clusterConfig(1);
    const squatter = createServer().listen(nodePorts[0], '127.0.0.1');
    await once(squatter, 'listening');
    try {
      const proc = run(['start', '--config', file]);
      expect(await proc.exit).toBe(1);
      expect(proc.output()).toContain('is already in use');
    } finally {
      squatter.close();
    }
  });

  it('refuses an invalid config with one line per problem naming the key', async () => {
    const file = writeConfig({
      health: { rise: 0 },
      nodes: [{ id: 'a', url: 'http://127.0.0.1:1' }],
      bogus: true,
    } as never);
    const proc = run(['proxy', '--config', file]);
    expect(await proc.exit).toBe(1);
    expect(proc.output()).toContain('health.rise: must be ≥ 1');
    expect(proc.output()).toContain('bogus: unknown key');
  });

  it('refuses to bind admin off loopback without a token', async () => {
    const file = writeConfig({
      admin: { listen: { host: '0.0.0.0', port: 0 } },
      nodes: [{ id: 'a', url: 'http://127.0.0.1:1' }],
    });
    const proc = run(['proxy', '--config', file]);
    expect(await proc.exit).toBe(1);
    expect(proc.output()).toContain('admin.token: is required');
  });

  it('backend --id of a node not in the config fails with a clear message', async () => {
    const { file } = await clusterConfig(1);
    const proc = run(['backend', '--id', 'node-9', '--config', file]);
    expect(await proc.exit).toBe(1);
    expect(proc.output()).toContain('node-9');
  });

  it('SIGHUP adds a node and changes weights without dropping the proxy; the new node runs the running config; a bad file is refused', async () => {
    const { file, proxyUrl, adminUrl } = await clusterConfig(1);
    const proc = run(['start', '--config', file]);
    await waitFor(async () => (await fetch(`${proxyUrl}/health`)).ok, 20_000);
    await waitFor(async () => (await fetch(`${adminUrl}/api/state`)).ok, 20_000);
    const client = new Client(proxyUrl);
    await client.request('POST', '/api/counter');

    const config = parse(readFileSync(file, 'utf8'));
    config.nodes[0].weight = 3;
    config.nodes.push({ id: 'node-2', url: `http://127.0.0.1:${await freePort()}` });
    // Needs a restart: the proxy keeps its replica store where it is, and so must node-2, or
    // its writes would go where nothing listens.
    config.replication.listen.port = await freePort();
    writeFileSync(file, stringify(config));
    proc.child.kill('SIGHUP');
    const state = await waitFor(async () => {
      const body = (await (await fetch(`${adminUrl}/api/state`)).json()) as {
        nodes: Array<{ id: string; weight: number }>;
      };
      return body.nodes.length === 2 ? body : undefined;
    }, 20_000);
    expect(state.nodes.map((node) => [node.id, node.weight])).toEqual([
      ['node-1', 3],
      ['node-2', 1],
    ]);
    await waitFor(async () => (await fetch(`${config.nodes[1].url}/health`)).ok, 20_000);
    expect((await client.request('POST', '/api/counter')).json.count).toBe(2);
    // Least sessions, weighted: node-1 holds 1 of its 3, so a new session goes to node-2 once
    // its health checks pass.
    await waitFor(async () => {
      const body = (await (await fetch(`${adminUrl}/api/state`)).json()) as {
        nodes: Array<{ id: string; state: string }>;
      };
      return body.nodes.find((node) => node.id === 'node-2')?.state === 'up';
    }, 20_000);
    const onNode2 = new Client(proxyUrl);
    for (const count of [1, 2]) {
      const { status, json } = await onNode2.request('POST', '/api/counter');
      expect({ status, ...json }).toMatchObject({ status: 200, node: 'node-2', count });
    }

    writeFileSync(file, 'nodes: []\n');
    proc.child.kill('SIGHUP');
    await waitFor(() => proc.output().includes('config reload refused'));
    const after = (await (await fetch(`${adminUrl}/api/state`)).json()) as { nodes: unknown[] };
    expect(after.nodes).toHaveLength(2);
    expect((await client.request('POST', '/api/counter')).json.count).toBe(3);
  });
});

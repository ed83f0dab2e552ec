import { once } from 'node:events';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig, type NodeConfig } from '../../src/config/index.js';
import { createSilentLogger } from '../../src/log.js';
import { LocalNodes } from '../../src/nodes/local-nodes.js';
import { CLI, freePort, waitFor, writeConfig } from './harness.js';

const HEALTH = '/health';

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}${HEALTH}`, { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

let cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

describe('LocalNodes.reload (SIGHUP with `stickylb start`)', () => {
  it('restarts a node whose URL changed, starts a new one, leaves a dead one down, and never throws when a port is taken', async () => {
    const urls = await Promise.all([1, 2, 3, 4].map(async () => `http://127.0.0.1:${await freePort()}`));
    const [url1, url2, url3, movedUrl1] = urls as [string, string, string, string];
    const before: NodeConfig[] = [
      { id: 'node-1', url: url1 },
      { id: 'node-2', url: url2 },
    ] as NodeConfig[];
    const after: NodeConfig[] = [
      { id: 'node-1', url: movedUrl1 },
      { id: 'node-2', url: url2 },
      { id: 'node-3', url: url3 },
      // Added by the reload, but its port is taken: logged, the others still start.
      { id: 'node-4', url: '' },
    ] as NodeConfig[];
    const taken: Server = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    cleanup.push(() => new Promise((resolve) => taken.close(resolve)));
    const takenPort = (taken.address() as { port: number }).port;
    (after[3] as { url: string }).url = `http://127.0.0.1:${takenPort}`;
    const file = writeConfig({ nodes: before });
    const nodes = new LocalNodes({ cliPath: CLI, configFile: file, logger: createSilentLogger() });
    cleanup.push(() => nodes.stopAll(1000));
    await nodes.start(before, HEALTH);
    expect(await answers(url2)).toBe(true);

    // node-2 dies; the reload must not bring it back (`start` never restarts a node).
    const pid2 = nodes.pids['node-2'];
    process.kill(pid2 as number, 'SIGKILL');
    await waitFor(async () => !(await answers(url2)));

    // The config the proxy now runs (the nodes it starts read it, not the file): node-1
    // moved, node-3 and node-4 new.
    await expect(nodes.reload(parseConfig({ nodes: after }))).resolves.toBeUndefined();
    expect(await answers(movedUrl1)).toBe(true);
    expect(await answers(url1)).toBe(false);
    expect(await answers(url3)).toBe(true);
    expect(await answers(url2)).toBe(false);
    expect(Object.keys(nodes.pids).sort()).toEqual(['node-1', 'node-3']);
  });

  it("Ctrl-C (SIGINT to the terminal's process group) reaches `start` alone: it stops the proxy, then its nodes", async () => {
    const [proxyPort, adminPort, replicationPort, nodePort] = await Promise.all(
      [1, 2, 3, 4].map(() => freePort()),
    );
    const file = writeConfig({ nodes: [] });
    writeFileSync(
      file,
      stringify({
        proxy: { listen: { host: '127.0.0.1', port: proxyPort } },
        admin: { listen: { host: '127.0.0.1', port: adminPort } },
        replication: {
          listen: { host: '127.0.0.1', port: replicationPort },
          secretFile: join(dirname(file), 'r'),
        },
        session: { secretFile: join(dirname(file), 's') },
        log: { level: 'info' },
        nodes: [{ id: 'node-1', url: `http://127.0.0.1:${nodePort}` }],
      }),
    );
    // Its own group, as a shell gives a foreground job.
    const child = spawn(process.execPath, [CLI, 'start', '--config', file], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STICKYLB_LOG: 'json' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    cleanup.push(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    });
    await waitFor(() => answers(`http://127.0.0.1:${proxyPort}`), 20_000);
    await waitFor(() => output.includes('stickylb proxy on'), 20_000);

    process.kill(-(child.pid as number), 'SIGINT');
    expect(await exited).toBe(0);
    // The node was stopped by `start` (SIGTERM, after the proxy), not hit by the same SIGINT.
    expect(output).toMatch(/"signal":"SIGTERM"[^\n]*node shutting down/);
    expect(output).not.toMatch(/"signal":"SIGINT"[^\n]*node shutting down/);
    // In that order: the proxy first.
    expect(output.indexOf('SIGINT: finishing in-flight requests')).toBeGreaterThanOrEqual(0);
    expect(output.indexOf('SIGINT: finishing in-flight requests')).toBeLessThan(
      output.indexOf('node shutting down'),
    );
    expect(output).not.toContain('not restarted');
    expect(await answers(`http://127.0.0.1:${nodePort}`)).toBe(false);
  });
});

import { join, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminServer } from '../../src/admin/index.js';
import { createSilentLogger } from '../../src/log.js';
import { FakeControl } from '../admin/fake-control.js';
import { Client, startCluster, waitFor, type Cluster } from '../integration/harness.js';
import { launchChromium, RESULTS_DIR } from './chromium.js';

/** Changes reach the page within about a second (SSE snapshot); this leaves room for a slow CI machine. */
const UI_TIMEOUT_MS = 15_000;
/**
 * Health checks that tolerate a machine busy with a browser and other test files (the
 * harness default of a 150 ms timeout can mark a loaded node down), yet see a kill in ~1 s.
 */
const HEALTH = { interval: '500ms', timeout: '400ms' };

let browser: Browser;
let cluster: Cluster | undefined;
let page: Page | undefined;
let pageErrors: string[] = [];
/** An admin listener over a FakeControl (no cluster): its event log is driven by the test. */
let admin: FastifyInstance | undefined;

beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await page?.close();
  page = undefined;
  await cluster?.close();
  cluster = undefined;
  await admin?.close();
  admin = undefined;
  expect(pageErrors).toEqual([]);
  pageErrors = [];
});

async function adminState(c: Cluster): Promise<any> {
  return (await fetch(`${c.adminUrl}/api/state`)).json();
}

/** Creates sessions the way the dashboard's buttons do: `POST /api/test-sessions`. */
async function seed(c: Cluster, count: number): Promise<void> {
  const response = await fetch(`${c.adminUrl}/api/test-sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ count }),
  });
  expect(await response.json()).toMatchObject({ created: count });
}

/**
 * Starts an admin listener over `control` on `port` (0: a free one). Snapshots once a minute:
 * within a test, events reach the page only as live SSE events, not through the catch-up a
 * newer snapshot's `lastEventId` starts.
 */
async function startAdmin(control: FakeControl, port = 0): Promise<string> {
  admin = await buildAdminServer({ control, logger: createSilentLogger(), snapshotIntervalMs: 60_000 });
  await admin.listen({ port, host: '127.0.0.1' });
  return `http://127.0.0.1:${(admin.server.address() as { port: number }).port}`;
}

async function openDashboard(
  c: Pick<Cluster, 'adminUrl'>,
  viewport = { width: 1366, height: 768 },
): Promise<Page> {
  page = await browser.newPage({ viewport });
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${c.adminUrl}/`);
  await page.waitForSelector('#connection.pill-live', { timeout: UI_TIMEOUT_MS });
  await page.waitForSelector('#nodes tbody tr[data-node]', { timeout: UI_TIMEOUT_MS });
  return page;
}

async function cell(p: Page, nodeId: string, field: string): Promise<string> {
  return (
    (await p.locator(`#nodes tr[data-node="${nodeId}"] [data-field="${field}"]`).textContent()) ?? ''
  ).trim();
}

const count = (text: string): number => Number(text.replace(/,/g, ''));

/** Names the step a wait belongs to when it fails (every wait fails with the same words). */
async function step<T>(label: string, waiting: Promise<T>): Promise<T> {
  try {
    return await waiting;
  } catch (error) {
    throw new Error(`${label}: ${(error as Error).message}`, { cause: error });
  }
}

/** Waits until every node's row shows the session count of the admin API. */
async function waitForCounts(p: Page, c: Cluster): Promise<any> {
  return waitFor(async () => {
    const state = await adminState(c);
    for (const node of state.nodes) {
      if (count(await cell(p, node.id, 'sessions')) !== node.sessions) return undefined;
    }
    return state;
  }, UI_TIMEOUT_MS);
}

describe('dashboard', () => {
  it('lists every node with its state and session count', async () => {
    cluster = await startCluster({ nodeCount: 3, config: { health: HEALTH } });
    await seed(cluster, 300);
    const p = await openDashboard(cluster);
    const state = await waitForCounts(p, cluster);
    expect(state.sessions.total).toBe(300);
    for (const node of state.nodes) {
      expect(await cell(p, node.id, 'state')).toBe('up');
      expect(node.sessions).toBeGreaterThan(0);
      // The distribution chart has a bar per node.
      expect(await p.locator(`#distribution g[data-node="${node.id}"]`).count()).toBe(1);
    }
    await waitFor(async () => (await p.locator('#total-sessions').textContent()) === '300', UI_TIMEOUT_MS);
    await p.screenshot({ path: join(RESULTS_DIR, 'dashboard.png') });
  });

  it('shows a node killed with -9 down with its sessions moved, live, without a reload', async () => {
    cluster = await startCluster({ nodeCount: 3, config: { health: HEALTH } });
    await seed(cluster, 300);
    const p = await openDashboard(cluster);
    const before = await waitForCounts(p, cluster);
    const victim = [...before.nodes].sort((a: any, b: any) => b.sessions - a.sessions)[0].id as string;
    await p.evaluate(() => {
      (globalThis as any).stickylbTestMarker = 'same page';
    });

    await cluster.nodes.find((node) => node.id === victim)?.kill('SIGKILL');

    await waitFor(
      async () => (await cell(p, victim, 'state')) === 'down' && (await cell(p, victim, 'sessions')) === '0',
      UI_TIMEOUT_MS,
    );
    const entry = p.locator('#events li[data-type="failover:end"]').first();
    await entry.waitFor({ timeout: UI_TIMEOUT_MS });
    expect(await entry.textContent()).toMatch(
      new RegExp(`failover: \\d+ sessions moved from ${victim} in \\d+ ms`),
    );
    // Every session is on a surviving node, and the page says so.
    const after = await waitForCounts(p, cluster);
    expect(after.sessions.total).toBe(300);
    expect(await p.evaluate(() => (globalThis as any).stickylbTestMarker)).toBe('same page');
    await p.screenshot({ path: join(RESULTS_DIR, 'dashboard-failover.png') });
  });

  it('shows sessions a move is installing on a node as +N beside its count, until they land', async () => {
    // A stopped node stays up for 30 failed checks (15 s): long enough to watch the install
    // to it wait, which ends at the installer's 5 s timeout at the latest.
    cluster = await startCluster({ nodeCount: 3, config: { health: { ...HEALTH, fall: 30 } } });
    const c = cluster;
    await seed(c, 60);
    const p = await step('dashboard open', openDashboard(c));
    const before = await step('counts before', waitForCounts(p, c));
    const source = 'node-1';
    const moving = before.nodes.find((node: any) => node.id === source).sessions as number;
    expect(moving).toBeGreaterThan(0);
    // node-2 drained: node-3 is the only target, whatever the balancing policy would pick (a
    // CI run once sent every session to node-2, and the page had no +N to show).
    expect((await fetch(`${c.adminUrl}/api/nodes/node-2/drain`, { method: 'POST' })).status).toBe(200);
    const stopped = c.nodes.find((node) => node.id === 'node-3');
    stopped?.child.kill('SIGSTOP');
    try {
      // Evacuate sends node-1's sessions to node-3, where the install now waits.
      const evacuated = fetch(`${c.adminUrl}/api/nodes/${source}/evacuate`, { method: 'POST' });
      const held = await step(
        'node-3 incoming > 0 in /api/state',
        waitFor(async () => {
          const node = (await adminState(c)).nodes.find((n: any) => n.id === 'node-3');
          return node.incoming > 0 ? node : undefined;
        }, UI_TIMEOUT_MS),
      );
      // Within the installer's 5 s timeout, after which node-3 is probed and marked down.
      const shown = await step(
        'the page shows +N for node-3',
        waitFor(async () => {
          const text = await cell(p, 'node-3', 'sessions');
          return text.includes('+') ? text : undefined;
        }, 4000),
      );
      expect(shown).toBe(`${held.sessions} +${held.incoming}`);
      stopped?.child.kill('SIGCONT');
      const answer = await (await evacuated).json();
      expect(answer).toMatchObject({ report: { moved: moving, lost: 0, failed: 0 } });
    } finally {
      stopped?.child.kill('SIGCONT');
    }
    // Landed: no +N left anywhere, and every count is the admin API's.
    const after = await step(
      'every count landed, on the page as in the API',
      waitFor(async () => {
        const state = await adminState(c);
        if (state.nodes.some((node: any) => node.incoming !== 0)) return undefined;
        for (const node of state.nodes) {
          if ((await cell(p, node.id, 'sessions')) !== String(node.sessions)) return undefined;
        }
        return state;
      }, UI_TIMEOUT_MS),
    );
    expect(after.nodes.find((node: any) => node.id === source).sessions).toBe(0);
    expect(after.sessions.total).toBe(60);
  });

  it('drains a node from the page: new sessions stop going to it', async () => {
    cluster = await startCluster({ nodeCount: 3, config: { health: HEALTH } });
    await seed(cluster, 60);
    const p = await openDashboard(cluster);
    const before = await waitForCounts(p, cluster);
    const drained = 'node-2';
    const heldBefore = before.nodes.find((node: any) => node.id === drained).sessions as number;

    await p.click(`#nodes button[data-node="${drained}"][data-action="drain"]`);

    await waitFor(async () => (await cell(p, drained, 'state')) === 'draining', UI_TIMEOUT_MS);
    await p
      .locator(`#nodes button[data-node="${drained}"][data-action="undrain"]`)
      .waitFor({ timeout: UI_TIMEOUT_MS });
    await p.locator('#events li[data-type="node:drain"]').first().waitFor({ timeout: UI_TIMEOUT_MS });
    const nodesOfNewSessions = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const { status, json } = await new Client(cluster!.proxyUrl).request('POST', '/api/counter');
        expect(status).toBe(200);
        return json.node as string;
      }),
    );
    expect(nodesOfNewSessions).not.toContain(drained);
    const after = await waitForCounts(p, cluster);
    expect(after.nodes.find((node: any) => node.id === drained).sessions).toBe(heldBefore);
    expect(after.sessions.total).toBe(90);
  });

  it('shows live events of every type the proxy logs, rebalance:start and failover:error too', async () => {
    const control = new FakeControl();
    const p = await openDashboard({ adminUrl: await startAdmin(control) });
    control.events.push('rebalance:start', 'rebalance: moving 4 sessions off *', { node: '*' });
    control.events.push('failover:error', 'failover of node-2 failed: replica store down', {
      node: 'node-2',
    });
    for (const type of ['rebalance:start', 'failover:error']) {
      await step(type, p.locator(`#events li[data-type="${type}"]`).waitFor({ timeout: UI_TIMEOUT_MS }));
    }
  });

  it('shows the events of a restarted proxy, whose ids start again at 1', async () => {
    const before = new FakeControl();
    const adminUrl = await startAdmin(before);
    const port = Number(new URL(adminUrl).port);
    const p = await openDashboard({ adminUrl });
    for (let i = 1; i <= 3; i++) before.events.push('node:drain', `before restart ${i}`);
    await p.locator('#events li[data-id="3"]').waitFor({ timeout: UI_TIMEOUT_MS });

    // The proxy restarts on the same port: a new event log, ids from 1 again.
    await admin?.close();
    const after = new FakeControl();
    after.events.push('node:undrain', 'after restart, while the page reconnects');
    await startAdmin(after, port);
    await p.waitForSelector('#connection.pill-live', { timeout: UI_TIMEOUT_MS });
    after.events.push('node:down', 'after restart, live');

    // Both new events show (the page's old ids 1 to 3 hid them), and the old run's are gone.
    await step(
      'the new run on the page',
      waitFor(async () => {
        const messages = await p.locator('#events li .msg').allTextContents();
        return messages.join('|') === 'after restart, live|after restart, while the page reconnects';
      }, UI_TIMEOUT_MS),
    );
  });

  // `STICKYLB_DOCS_SCREENSHOT=1 npx vitest run test/browser` refreshes the README's picture.
  it.runIf(process.env.STICKYLB_DOCS_SCREENSHOT === '1')(
    'renders docs/dashboard.png after a failover',
    async () => {
      // Health checks patient enough that the load below marks no node down by itself.
      cluster = await startCluster({
        nodeCount: 3,
        config: { health: { interval: '1s', timeout: '800ms' } },
      });
      const c = cluster;
      const p = await openDashboard(c);
      // Some steady traffic, so rate and latency columns have something to show.
      let isRunning = true;
      const clients = Array.from({ length: 8 }, () => new Client(c.proxyUrl));
      const load = Promise.all(
        clients.map(async (client) => {
          while (isRunning) await client.request('POST', '/api/counter').catch(() => undefined);
        }),
      );
      await seed(c, 4000);
      await new Promise((r) => setTimeout(r, 8000));
      await seed(c, 6000);
      await new Promise((r) => setTimeout(r, 8000));
      await c.nodes.find((node) => node.id === 'node-2')?.kill('SIGKILL');
      await p.locator('#events li[data-type="failover:end"]').first().waitFor({ timeout: UI_TIMEOUT_MS });
      await new Promise((r) => setTimeout(r, 6000));
      isRunning = false;
      await load;
      await p.screenshot({ path: resolve('docs/dashboard.png') });
      await p.setViewportSize({ width: 1920, height: 1080 });
      await new Promise((r) => setTimeout(r, 1500));
      await p.screenshot({ path: join(RESULTS_DIR, 'dashboard-1920.png') });
    },
    120_000,
  );
});

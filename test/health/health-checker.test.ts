import { Agent } from 'node:http';
import { setImmediate } from 'node:timers/promises';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/index.js';
import {
  HealthChecker,
  healthSettingsFrom,
  type HealthCheckResult,
  type HealthSettings,
  type HealthTarget,
} from '../../src/health/index.js';
import { refusedUrl, startFakeNode, type FakeNode } from './fake-node.js';

const INTERVAL_MS = 1000;
/** Long, so only a test that advances fake timers ever sees a probe time out. */
const TIMEOUT_MS = 5000;
const SETTINGS: HealthSettings = {
  intervalMs: INTERVAL_MS,
  timeoutMs: TIMEOUT_MS,
  rise: 2,
  fall: 2,
  path: '/health',
};

const nodes: FakeNode[] = [];
const checkers: HealthChecker[] = [];
const agents: Agent[] = [];

async function fakeNode(status = 200): Promise<FakeNode> {
  const node = await startFakeNode(status);
  nodes.push(node);
  return node;
}

function checker(settings: Partial<HealthSettings> = {}, agent?: Agent): HealthChecker {
  const created = new HealthChecker({ ...SETTINGS, ...settings, ...(agent && { agent }) });
  checkers.push(created);
  return created;
}

function probeAgent(): Agent {
  const agent = new Agent({ keepAlive: true });
  agents.push(agent);
  return agent;
}

/** Probes the agent has sent and not finished: read synchronously, so no waiting is involved. */
function probesInFlight(agent: Agent): number {
  return Object.values(agent.sockets).reduce((count, list) => count + (list?.length ?? 0), 0);
}

/** Records state changes as `down` / `up` words, and every check result. */
function record(subject: HealthChecker): {
  changes: string[];
  reasons: string[];
  checks: HealthCheckResult[];
} {
  const recorded = { changes: [] as string[], reasons: [] as string[], checks: [] as HealthCheckResult[] };
  subject.on('node:down', (nodeId, reason) => {
    recorded.changes.push(`${nodeId} down`);
    recorded.reasons.push(reason);
  });
  subject.on('node:up', (nodeId) => recorded.changes.push(`${nodeId} up`));
  subject.on('check', (result) => recorded.checks.push(result));
  return recorded;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(checkers.splice(0).map((each) => each.stop()));
  for (const agent of agents.splice(0)) agent.destroy();
  await Promise.all(nodes.splice(0).map((node) => node.close()));
});

describe('HealthChecker', () => {
  describe('state transitions', () => {
    it.each([
      { rise: 2, fall: 2, from: 'up', steps: 'ok fail ok fail', changes: '' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail fail', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail fail fail fail', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail fail ok', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail fail ok ok', changes: 'down up' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail fail ok fail ok ok', changes: 'down up' },
      { rise: 2, fall: 2, from: 'up', steps: 'ok ok ok', changes: '' },
      { rise: 1, fall: 1, from: 'up', steps: 'fail ok fail ok', changes: 'down up down up' },
      { rise: 3, fall: 1, from: 'up', steps: 'fail ok ok ok', changes: 'down up' },
      { rise: 1, fall: 3, from: 'up', steps: 'fail fail ok fail fail fail', changes: 'down' },
      { rise: 2, fall: 2, from: 'down', steps: 'ok', changes: '' },
      { rise: 2, fall: 2, from: 'down', steps: 'ok ok', changes: 'up' },
      { rise: 2, fall: 2, from: 'down', steps: 'ok fail ok ok', changes: 'up' },
      { rise: 2, fall: 2, from: 'down', steps: 'fail fail', changes: '' },
      // `report` is a passive failure (reportFailure): down at once, then `rise` successes to return.
      { rise: 2, fall: 3, from: 'up', steps: 'report', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'report report fail', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'report ok', changes: 'down' },
      { rise: 2, fall: 2, from: 'up', steps: 'report ok ok', changes: 'down up' },
      { rise: 2, fall: 2, from: 'up', steps: 'ok report ok ok', changes: 'down up' },
      { rise: 2, fall: 2, from: 'up', steps: 'fail report ok ok', changes: 'down up' },
      { rise: 2, fall: 2, from: 'down', steps: 'ok report ok', changes: '' },
      { rise: 2, fall: 2, from: 'down', steps: 'ok report ok ok', changes: 'up' },
    ] as const)(
      'rise $rise fall $fall from $from: $steps → [$changes]',
      async ({ rise, fall, from, steps, changes }) => {
        const node = await fakeNode();
        const subject = checker({ rise, fall });
        subject.setTargets([{ id: 'n', url: node.url, initialState: from }]);
        const recorded = record(subject);
        let probes = 0;
        for (const step of steps.split(' ')) {
          if (step === 'report') {
            subject.reportFailure('n', 'proxied request refused');
            continue;
          }
          node.status = step === 'ok' ? 200 : 500;
          await subject.checkNow();
          probes += 1;
        }
        const expected = changes === '' ? [] : changes.split(' ');
        expect(recorded.changes).toEqual(expected.map((change) => `n ${change}`));
        expect(recorded.checks).toHaveLength(probes);
        expect(subject.isUp('n')).toBe((expected.at(-1) ?? from) === 'up');
      },
    );

    it('gives the last failure as the reason a node went down', async () => {
      const node = await fakeNode(503);
      const subject = checker({ fall: 1 });
      subject.setTargets([{ id: 'n', url: node.url }]);
      const recorded = record(subject);
      await subject.checkNow();
      expect(recorded.reasons).toEqual(['HTTP 503']);
    });
  });

  describe('logging', () => {
    it('logs state changes only: down at warn, up at info, nothing per probe', async () => {
      const node = await fakeNode(500);
      const lines: { level: number; node: string; msg: string }[] = [];
      const logger = pino({ level: 'trace' }, { write: (line: string) => lines.push(JSON.parse(line)) });
      const subject = new HealthChecker({ ...SETTINGS, rise: 1, fall: 1, logger });
      checkers.push(subject);
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      await subject.checkNow();
      node.status = 200;
      await subject.checkNow();
      await subject.checkNow();
      expect(lines.map(({ level, node, msg }) => ({ level, node, msg }))).toEqual([
        { level: 40, node: 'n', msg: 'node n down: HTTP 500' },
        { level: 30, node: 'n', msg: 'node n up' },
      ]);
    });
  });

  describe('probes', () => {
    it('GETs {url}{path} and records the result', async () => {
      const node = await fakeNode();
      const subject = checker({ path: '/status?deep=1' });
      subject.setTargets([{ id: 'n', url: `${node.url}/` }]);
      await subject.checkNow('n');
      expect(node.paths).toEqual(['/status?deep=1']);
      expect(node.userAgents).toEqual(['stickylb-health']);
      expect(subject.lastResult('n')).toEqual({
        nodeId: 'n',
        ok: true,
        status: 200,
        latencyMs: expect.any(Number),
        at: expect.any(Number),
      });
    });

    it.each([200, 204, 299])('counts HTTP %i as a success', async (status) => {
      const node = await fakeNode(status);
      const subject = checker();
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      expect(subject.lastResult('n')).toMatchObject({ ok: true, status });
    });

    it.each([
      { status: 500, error: 'HTTP 500' },
      { status: 503, error: 'HTTP 503' },
      { status: 404, error: 'HTTP 404' },
      { status: 302, error: 'HTTP 302' },
    ])('counts HTTP $status as a failure', async ({ status, error }) => {
      const node = await fakeNode(status);
      const subject = checker();
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      expect(subject.lastResult('n')).toMatchObject({ ok: false, status, error });
    });

    it('counts a refused connection as a failure', async () => {
      const subject = checker({ fall: 1 });
      subject.setTargets([{ id: 'n', url: await refusedUrl() }]);
      const recorded = record(subject);
      await subject.checkNow();
      expect(subject.lastResult('n')).toMatchObject({
        ok: false,
        error: expect.stringContaining('ECONNREFUSED'),
      });
      expect(subject.lastResult('n')?.status).toBeUndefined();
      expect(recorded.changes).toEqual(['n down']);
    });

    it('counts a connection reset before the answer as a failure', async () => {
      const node = await fakeNode();
      node.mode = 'reset';
      const subject = checker({ fall: 1 });
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      expect(subject.lastResult('n')).toMatchObject({
        ok: false,
        error: expect.stringContaining('ECONNRESET'),
      });
      expect(subject.isUp('n')).toBe(false);
    });

    it('counts a node that does not answer within timeoutMs as a failure', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
      const node = await fakeNode();
      node.mode = 'hold';
      const subject = checker({ fall: 1 });
      subject.setTargets([{ id: 'n', url: node.url }]);
      const round = subject.checkNow();
      await node.nextRequest();
      vi.advanceTimersByTime(TIMEOUT_MS);
      await round;
      expect(subject.lastResult('n')).toMatchObject({ ok: false, error: `timeout after ${TIMEOUT_MS} ms` });
      expect(subject.isUp('n')).toBe(false);
    });

    it('retries once when a kept-alive socket turns out closed by the node', async () => {
      const node = await fakeNode();
      const agent = probeAgent();
      const subject = checker({ fall: 1 }, agent);
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      // The node drops its idle keep-alive connection; our pooled socket has not noticed yet.
      node.server.closeIdleConnections();
      await subject.checkNow();
      expect(node.paths).toHaveLength(2);
      expect(subject.lastResult('n')).toMatchObject({ ok: true });
      expect(subject.isUp('n')).toBe(true);
    });

    it('joins a probe in flight instead of sending a second one', async () => {
      const node = await fakeNode();
      node.mode = 'hold';
      const subject = checker();
      subject.setTargets([{ id: 'n', url: node.url }]);
      const recorded = record(subject);
      const first = subject.checkNow();
      await node.nextRequest();
      const second = subject.checkNow('n');
      node.release();
      await Promise.all([first, second]);
      expect(node.paths).toHaveLength(1);
      expect(recorded.checks).toHaveLength(1);
    });
  });

  describe('reportFailure', () => {
    it('marks an up node down at once and emits node:down once', () => {
      const subject = checker();
      subject.setTargets([{ id: 'n', url: 'http://127.0.0.1:1' }]);
      const recorded = record(subject);
      subject.reportFailure('n', 'ECONNREFUSED on a proxied request');
      subject.reportFailure('n', 'ECONNRESET on a proxied request');
      expect(subject.isUp('n')).toBe(false);
      expect(recorded.changes).toEqual(['n down']);
      expect(recorded.reasons).toEqual(['ECONNREFUSED on a proxied request']);
      expect(recorded.checks).toEqual([]);
    });

    it('probes a node made suspect (a reset) at once and keeps it up when the probe passes', async () => {
      const node = await fakeNode();
      const subject = checker();
      subject.setTargets([{ id: 'n', url: node.url }]);
      const recorded = record(subject);
      subject.reportFailure('n', 'ECONNRESET on a proxied request', 'suspect');
      // Another one while the confirming probe is out: no second probe.
      subject.reportFailure('n', 'ECONNRESET on a proxied request', 'suspect');
      await vi.waitFor(() => expect(recorded.checks).toHaveLength(1));
      expect(recorded.checks[0]?.ok).toBe(true);
      expect(node.paths).toHaveLength(1);
      expect(subject.isUp('n')).toBe(true);
      expect(recorded.changes).toEqual([]);
    });

    it('marks a suspect node down at once when the probe fails too, without waiting for `fall` rounds', async () => {
      const subject = checker({ fall: 3 });
      subject.setTargets([{ id: 'n', url: await refusedUrl() }]);
      const recorded = record(subject);
      subject.reportFailure('n', 'ECONNRESET on a proxied request', 'suspect');
      await vi.waitFor(() => expect(recorded.changes).toEqual(['n down']));
      expect(recorded.reasons[0]).toMatch(/^ECONNRESET on a proxied request; then the health check failed: /);
      expect(subject.isUp('n')).toBe(false);
    });

    it('ignores a node it does not know', () => {
      const subject = checker();
      const recorded = record(subject);
      subject.reportFailure('ghost', 'refused');
      expect(recorded.changes).toEqual([]);
      expect(subject.isUp('ghost')).toBe(false);
    });

    it('drops the result of a probe that was in flight when the failure came', async () => {
      const node = await fakeNode();
      node.mode = 'hold';
      const subject = checker({ rise: 1 });
      subject.setTargets([{ id: 'n', url: node.url }]);
      const recorded = record(subject);
      const round = subject.checkNow();
      await node.nextRequest();
      subject.reportFailure('n', 'reset');
      node.release();
      await round;
      expect(recorded.checks).toEqual([]);
      expect(subject.isUp('n')).toBe(false);
      node.mode = 'answer';
      await subject.checkNow();
      expect(recorded.changes).toEqual(['n down', 'n up']);
    });
  });

  describe('setTargets', () => {
    it('starts new nodes up, or down when told, without emitting anything', () => {
      const subject = checker();
      const recorded = record(subject);
      subject.setTargets([
        { id: 'a', url: 'http://127.0.0.1:1' },
        { id: 'b', url: 'http://127.0.0.1:2', initialState: 'down' },
      ]);
      expect([subject.isUp('a'), subject.isUp('b')]).toEqual([true, false]);
      expect(subject.lastResult('a')).toBeUndefined();
      expect(recorded.changes).toEqual([]);
    });

    it('keeps the state of a node it already knows', async () => {
      const node = await fakeNode(500);
      const subject = checker({ fall: 1 });
      subject.setTargets([{ id: 'a', url: node.url }]);
      await subject.checkNow();
      subject.setTargets([
        { id: 'a', url: node.url, initialState: 'up' },
        { id: 'b', url: node.url },
      ]);
      expect([subject.isUp('a'), subject.isUp('b')]).toEqual([false, true]);
    });

    it('stops checking a removed node, and emits nothing more for it', async () => {
      const [a, b] = [await fakeNode(500), await fakeNode(500)];
      a.mode = 'hold';
      const subject = checker({ fall: 1 });
      subject.setTargets([
        { id: 'a', url: a.url },
        { id: 'b', url: b.url },
      ]);
      const recorded = record(subject);
      const round = subject.checkNow();
      await a.nextRequest();
      subject.setTargets([{ id: 'b', url: b.url }]);
      a.release();
      await round;
      await subject.checkNow();
      expect(recorded.changes).toEqual(['b down']);
      expect(recorded.checks.map((check) => check.nodeId)).toEqual(['b', 'b']);
      expect(a.paths).toHaveLength(1);
      expect(subject.isUp('a')).toBe(false);
      expect(subject.lastResult('a')).toBeUndefined();
    });

    it('counts afresh for a node whose URL changed', async () => {
      const [before, after] = [await fakeNode(500), await fakeNode(200)];
      const subject = checker({ rise: 2, fall: 1 });
      subject.setTargets([{ id: 'n', url: before.url }]);
      await subject.checkNow();
      before.status = 200;
      await subject.checkNow(); // one success of two at the old address
      subject.setTargets([{ id: 'n', url: after.url }]);
      await subject.checkNow();
      expect(subject.isUp('n')).toBe(false);
      await subject.checkNow();
      expect(subject.isUp('n')).toBe(true);
      expect(after.paths).toHaveLength(2);
    });

    it('throws on a duplicate id', () => {
      const target: HealthTarget = { id: 'n', url: 'http://127.0.0.1:1' };
      expect(() => checker().setTargets([target, target])).toThrow(RangeError);
    });
  });

  describe('scheduling', () => {
    const timers: Parameters<typeof vi.useFakeTimers>[0] = {
      toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'],
    };

    it('probes every node at start(), then once per intervalMs', async () => {
      vi.useFakeTimers(timers);
      const [a, b] = [await fakeNode(), await fakeNode()];
      const agent = probeAgent();
      const subject = checker({}, agent);
      subject.setTargets([
        { id: 'a', url: a.url },
        { id: 'b', url: b.url },
      ]);
      subject.start();
      expect(probesInFlight(agent)).toBe(2);
      await subject.checkNow();
      vi.advanceTimersByTime(INTERVAL_MS - 1);
      expect(probesInFlight(agent)).toBe(0);
      vi.advanceTimersByTime(1);
      expect(probesInFlight(agent)).toBe(2);
      await subject.checkNow();
      expect([a.paths.length, b.paths.length]).toEqual([2, 2]);
    });

    it('skips a node whose probe is still in flight when the interval fires', async () => {
      vi.useFakeTimers(timers);
      const node = await fakeNode();
      node.mode = 'hold';
      const agent = probeAgent();
      const subject = checker({ timeoutMs: 10 * INTERVAL_MS }, agent);
      subject.setTargets([{ id: 'n', url: node.url }]);
      const recorded = record(subject);
      subject.start();
      vi.advanceTimersByTime(3 * INTERVAL_MS);
      expect(probesInFlight(agent)).toBe(1);
      await node.nextRequest();
      node.release();
      await subject.checkNow('n');
      expect(recorded.checks).toHaveLength(1);
      expect(node.paths).toHaveLength(1);
    });

    it('probes a node added while running at once', async () => {
      vi.useFakeTimers(timers);
      const [a, b] = [await fakeNode(), await fakeNode()];
      const subject = checker();
      subject.setTargets([{ id: 'a', url: a.url }]);
      subject.start();
      await subject.checkNow();
      const added = b.nextRequest();
      subject.setTargets([
        { id: 'a', url: a.url },
        { id: 'b', url: b.url },
      ]);
      await added;
      await subject.checkNow('b');
      expect(subject.lastResult('b')).toMatchObject({ ok: true });
      expect(a.paths).toHaveLength(1);
    });

    it('applies a new intervalMs from updateSettings', async () => {
      vi.useFakeTimers(timers);
      const node = await fakeNode();
      const agent = probeAgent();
      const subject = checker({}, agent);
      subject.setTargets([{ id: 'n', url: node.url }]);
      subject.start();
      await subject.checkNow();
      subject.updateSettings({ ...SETTINGS, intervalMs: 5 * INTERVAL_MS });
      vi.advanceTimersByTime(INTERVAL_MS);
      expect(probesInFlight(agent)).toBe(0);
      vi.advanceTimersByTime(4 * INTERVAL_MS);
      expect(probesInFlight(agent)).toBe(1);
      await subject.checkNow();
    });

    it('applies new rise, fall and path from updateSettings', async () => {
      const node = await fakeNode(500);
      const subject = checker({ fall: 3 });
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      subject.updateSettings({ ...SETTINGS, fall: 2, path: '/ready' });
      await subject.checkNow();
      expect(subject.isUp('n')).toBe(false);
      expect(node.paths).toEqual(['/health', '/ready']);
    });
  });

  describe('stop', () => {
    it('aborts probes in flight and leaves no open handle', async () => {
      const before = await openHandles();
      const [healthy, silent] = [await fakeNode(), await fakeNode()];
      silent.mode = 'hold';
      // The checker's own agent, which stop() must destroy.
      const subject = new HealthChecker({ ...SETTINGS, intervalMs: 60_000 });
      checkers.push(subject);
      subject.setTargets([
        { id: 'healthy', url: healthy.url },
        { id: 'silent', url: silent.url },
      ]);
      await subject.checkNow('healthy'); // leaves a kept-alive socket in the pool
      const recorded = record(subject);
      const arrived = silent.nextRequest();
      subject.start();
      await arrived;
      await subject.stop();
      expect(recorded.checks.map((check) => check.nodeId)).not.toContain('silent');
      // Both the aborted probe's socket and the pooled keep-alive one are closed from our side.
      await vi.waitFor(() => expect([healthy.openConnections, silent.openConnections]).toEqual([0, 0]), {
        timeout: 2000,
      });
      await Promise.all([healthy.close(), silent.close()]);
      nodes.splice(0);
      const after = await openHandles();
      expect(after.sockets).toBe(before.sockets);
      // vitest's own timers come and go, so only check that none was added.
      expect(after.timers).toBeLessThanOrEqual(before.timers);
    });

    it('can start again after stop', async () => {
      const node = await fakeNode();
      const subject = checker();
      subject.setTargets([{ id: 'n', url: node.url }]);
      await subject.checkNow();
      await subject.stop();
      await subject.checkNow();
      expect(node.paths).toHaveLength(2);
    });
  });

  describe('settings', () => {
    it('reads the validated config', () => {
      const config = parseConfig({
        health: { interval: '2s', timeout: '300ms', rise: 3, fall: 4, path: '/up' },
        nodes: [{ id: 'node-1', url: 'http://127.0.0.1:9001' }],
      });
      expect(healthSettingsFrom(config.health)).toEqual({
        intervalMs: 2000,
        timeoutMs: 300,
        rise: 3,
        fall: 4,
        path: '/up',
      });
    });

    it.each([
      { intervalMs: 0 },
      { intervalMs: 2 ** 31 },
      { timeoutMs: Number.NaN },
      { rise: 0 },
      { fall: 1.5 },
      { path: 'health' },
    ])('rejects %o', (bad) => {
      expect(() => new HealthChecker({ ...SETTINGS, ...bad })).toThrow(RangeError);
    });
  });
});

/**
 * TCP sockets and servers, and timers, open in this process. A closed handle is released in the
 * close phase of the event loop, which comes after the check phase: two immediates pass it.
 */
async function openHandles(): Promise<{ sockets: number; timers: number }> {
  await setImmediate();
  await setImmediate();
  const kinds = process.getActiveResourcesInfo();
  return {
    sockets: kinds.filter((kind) => kind.startsWith('TCP')).length,
    timers: kinds.filter((kind) => kind === 'Timeout').length,
  };
}

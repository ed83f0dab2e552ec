import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildAdminServer } from '../../src/admin/index.js';
import { createSilentLogger } from '../../src/log.js';
import { waitFor } from '../integration/harness.js';
import { FakeControl } from './fake-control.js';
import { SseClient } from './sse-client.js';

let control: FakeControl;
let app: FastifyInstance;
let base: string;
const streams: SseClient[] = [];

beforeEach(async () => {
  control = new FakeControl();
  app = await buildAdminServer({
    control,
    logger: createSilentLogger(),
    snapshotIntervalMs: 100,
    heartbeatMs: 100,
    historyIntervalMs: 50,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await app.close();
});

async function openStream(headers: Record<string, string> = {}, path = '/api/events'): Promise<SseClient> {
  const stream = await SseClient.open(`${base}${path}`, headers);
  streams.push(stream);
  return stream;
}

describe('GET /api/events', () => {
  it('sends a state snapshot at once, then one each interval', async () => {
    const stream = await openStream();
    expect(stream.response.headers['cache-control']).toContain('no-cache');
    expect(stream.frames[0]?.retry).toBeDefined();
    await waitFor(() => stream.frames.filter((frame) => frame.event === 'state').length >= 3);
    const state = JSON.parse((await stream.waitFor((frame) => frame.event === 'state')).data as string);
    expect(state.nodes.map((node: { id: string }) => node.id)).toEqual(['node-1', 'node-2']);
    expect(state.sessions.total).toBe(5);
    expect(state.totals).toMatchObject({ replicas: 5, requests: 14 });
    // Events travel as their own SSE events, not inside every snapshot.
    expect(state.events).toBeUndefined();
  });

  it('streams every logged event as `id` / `event: <type>` / JSON `data`', async () => {
    const stream = await openStream();
    await stream.waitFor((frame) => frame.event === 'state');
    control.events.push('failover:end', 'failover: 41 sessions moved from node-2 in 18 ms', { moved: 41 });
    const frame = await stream.waitFor((candidate) => candidate.event === 'failover:end');
    // The SSE id names the run too: ids restart at 1 when the proxy restarts.
    expect(frame.id).toBe(`${control.events.bootId}-1`);
    expect(JSON.parse(frame.data as string)).toMatchObject({
      id: 1,
      type: 'failover:end',
      message: 'failover: 41 sessions moved from node-2 in 18 ms',
      moved: 41,
    });
  });

  it('replays the events after Last-Event-ID from the ring buffer', async () => {
    for (let i = 1; i <= 5; i++) control.events.push('node:drain', `event ${i}`);
    const boot = control.events.bootId;
    const stream = await openStream({ 'last-event-id': `${boot}-3` });
    await stream.waitFor((frame) => frame.event === 'state');
    const replayed = stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.id);
    expect(replayed).toEqual([`${boot}-4`, `${boot}-5`]);
  });

  it('replays the events after a bare ?lastEventId= number (a script without the run id)', async () => {
    for (let i = 1; i <= 5; i++) control.events.push('node:drain', `event ${i}`);
    const stream = await openStream({}, '/api/events?lastEventId=4');
    await stream.waitFor((frame) => frame.event === 'state');
    const replayed = stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.id);
    expect(replayed).toEqual([`${control.events.bootId}-5`]);
  });

  it('replays every buffered event to a Last-Event-ID of another run (the proxy restarted)', async () => {
    // Ids restart at 1: "40" from before the restart must not hide the new run's events 1 to 3.
    for (let i = 1; i <= 3; i++) control.events.push('node:drain', `event ${i}`);
    const stream = await openStream({ 'last-event-id': '0123456789ab-40' });
    await stream.waitFor((frame) => frame.event === 'state');
    const replayed = stream.frames.filter((frame) => frame.id !== undefined).map((frame) => frame.id);
    const boot = control.events.bootId;
    expect(replayed).toEqual([`${boot}-1`, `${boot}-2`, `${boot}-3`]);
  });

  it('names the run in every state (snapshot and /api/state), the same as in the SSE ids', async () => {
    const stream = await openStream();
    const snapshot = JSON.parse((await stream.waitFor((frame) => frame.event === 'state')).data as string);
    const state = (await (await fetch(`${base}/api/state`)).json()) as { bootId: string };
    expect(control.events.bootId).toMatch(/^[0-9a-f]{8}$/);
    expect(snapshot.bootId).toBe(control.events.bootId);
    expect(state.bootId).toBe(control.events.bootId);
    expect(new FakeControl().events.bootId).not.toBe(control.events.bootId);
  });

  it('replays nothing to a new client and ignores a malformed Last-Event-ID', async () => {
    control.events.push('node:drain', 'before');
    for (const headers of [{}, { 'last-event-id': 'abc' }, { 'last-event-id': '-1' }] as Array<
      Record<string, string>
    >) {
      const stream = await openStream(headers);
      await stream.waitFor((frame) => frame.event === 'state');
      expect(stream.frames.some((frame) => frame.event === 'node:drain')).toBe(false);
    }
  });

  it('sends heartbeat comments', async () => {
    const stream = await openStream();
    await stream.waitFor((frame) => frame.comment === 'heartbeat');
  });

  it('stops listening when the client disconnects', async () => {
    const stream = await openStream();
    await stream.waitFor((frame) => frame.event === 'state');
    expect(control.events.listenerCount('event')).toBe(1);
    stream.close();
    await waitFor(() => control.events.listenerCount('event') === 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('stickylb_admin_sse_clients 0');
  });

  it('ends open streams when the listener closes', async () => {
    const stream = await openStream();
    await stream.waitFor((frame) => frame.event === 'state');
    await app.close();
    await stream.closed();
    expect(control.events.listenerCount('event')).toBe(0);
  });
});

describe('GET /metrics', () => {
  it('answers Prometheus text read from the existing counters', async () => {
    control.traffic.record('node-1', 200, performance.now() - 3);
    control.traffic.record('node-1', 503, performance.now() - 40);
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    for (const line of [
      'stickylb_node_sessions{node="node-1"} 3',
      'stickylb_node_sessions{node="node-2"} 2',
      'stickylb_node_up{node="node-1"} 1',
      'stickylb_node_state{node="node-1",state="up"} 1',
      'stickylb_node_state{node="node-1",state="down"} 0',
      'stickylb_requests_total{node="node-1",status_class="2xx"} 1',
      'stickylb_requests_total{node="node-1",status_class="5xx"} 1',
      'stickylb_request_duration_seconds_bucket{node="node-1",le="+Inf"} 2',
      'stickylb_request_duration_seconds_count{node="node-1"} 2',
      'stickylb_failovers_total 1',
      'stickylb_moved_sessions_total{outcome="moved"} 41',
      'stickylb_replication_writes_total 9',
      'stickylb_replication_rejected_total{reason="stale"} 1',
      'stickylb_replication_rejected_total{reason="not_owner"} 2',
      'stickylb_affinity_sweeps_total 12',
      'stickylb_affinity_sweep_longest_pause_seconds 0.0015',
      'stickylb_affinity_expired_total 6',
      'stickylb_proxy_errors_total{code="SLB_NO_HEALTHY_NODE"} 3',
      'stickylb_proxy_errors_total{code="SLB_UPSTREAM_TIMEOUT"} 2',
      'stickylb_sessions 5',
    ]) {
      expect(text).toContain(line);
    }
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds \d/m);
    // Off-heap Buffers on their own (the soak tells V8's heap sizing from a Buffer leak with it).
    expect(text).toMatch(/^stickylb_array_buffers_bytes [1-9]\d*$/m);
    expect(text).toContain('# TYPE stickylb_request_duration_seconds histogram');
  });

  it('follows the counters between scrapes', async () => {
    await fetch(`${base}/metrics`);
    const node = control.nodes[0] as { sessions: number };
    node.sessions = 1234;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await (await fetch(`${base}/metrics`)).text()).toContain(
      'stickylb_node_sessions{node="node-1"} 1234',
    );
  });
});

describe('GET /metrics, distributed mode', () => {
  it('has stickylb_redis_up only with the redis store, 1 while Redis answers and 0 while it does not', async () => {
    const scrape = async (): Promise<string> => {
      // Past the metrics' 250 ms state snapshot.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return (await fetch(`${base}/metrics`)).text();
    };
    expect(await scrape()).not.toMatch(/^stickylb_redis_up[ {]/m); // HELP and TYPE only, no sample
    control.redis = { state: 'up', url: 'redis://10.0.0.5:6379' };
    expect(await scrape()).toContain('stickylb_redis_up{url="redis://10.0.0.5:6379"} 1');
    control.redis = { state: 'down', url: 'redis://10.0.0.5:6379' };
    expect(await scrape()).toContain('stickylb_redis_up{url="redis://10.0.0.5:6379"} 0');
  });
});

describe('JSON API', () => {
  it('GET /api/state adds totals and keeps the contract fields', async () => {
    const state = (await (await fetch(`${base}/api/state`)).json()) as any;
    expect(state.nodes[0]).toMatchObject({ id: 'node-1', url: expect.any(String), state: 'up', sessions: 3 });
    expect(state.sessions.total).toBe(5);
    expect(state.totals).toEqual({ replicas: 5, inFlight: 0, requests: 14, requestsPerSec: 0 });
  });

  it('GET /api/history answers sessions per node over time', async () => {
    await waitFor(async () => {
      const history = (await (await fetch(`${base}/api/history`)).json()) as any;
      return history.samples.length >= 2 ? history : undefined;
    }).then((history: any) => {
      expect(history.samples[0].nodes).toEqual({ 'node-1': 3, 'node-2': 2 });
    });
  });

  it.each([{}, { count: 0 }, { count: 1.5 }, { count: '10' }, { count: 100_001 }])(
    'POST /api/test-sessions refuses %j',
    async (body) => {
      const response = await fetch(`${base}/api/test-sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.status).toBe(400);
      expect(((await response.json()) as any).error).toBe('SLB_BAD_REQUEST');
      expect(control.createTestSessions).not.toHaveBeenCalled();
    },
  );

  it('POST /api/test-sessions creates the sessions asked for', async () => {
    const response = await fetch(`${base}/api/test-sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count: 1000 }),
    });
    expect(await response.json()).toMatchObject({ requested: 1000, created: 1000 });
    expect(control.createTestSessions).toHaveBeenCalledWith(1000);
  });

  it('answers unknown nodes and routes with JSON 404s', async () => {
    const node = await fetch(`${base}/api/nodes/nope/drain`, { method: 'POST' });
    expect(node.status).toBe(404);
    expect(((await node.json()) as any).error).toBe('SLB_NOT_FOUND');
    const asset = await fetch(`${base}/assets/../package.json`);
    expect(asset.status).toBe(404);
  });
});

import { describe, expect, it } from 'vitest';
import { EventLog, NodeTraffic } from '../../src/admin/index.js';
import { LATENCY_BOUNDS_MS, percentile } from '../../src/admin/node-traffic.js';

/** A NodeTraffic on a hand-driven clock that starts on a second boundary. */
function trafficAt(startMs = 1_000_000): { traffic: NodeTraffic; clock: { now: number } } {
  const clock = { now: startMs };
  return { traffic: new NodeTraffic(() => clock.now, 0), clock };
}

describe('NodeTraffic', () => {
  it('counts answered requests by status class', () => {
    const { traffic, clock } = trafficAt();
    for (const status of [200, 201, 304, 404, 502, 503, 101]) traffic.record('node-1', status, clock.now - 1);
    expect(traffic.summary('node-1').responses).toEqual({ '1xx': 1, '2xx': 2, '3xx': 1, '4xx': 1, '5xx': 2 });
  });

  it('answers zeros for a node without requests', () => {
    const { traffic } = trafficAt();
    expect(traffic.summary('node-9')).toEqual({
      requestsPerSec: 0,
      latencyMs: null,
      responses: { '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0 },
    });
  });

  it('rates requests over the sliding ten-second window', () => {
    const { traffic, clock } = trafficAt();
    // 50 requests per second for 20 seconds.
    for (let second = 0; second < 20; second++) {
      for (let i = 0; i < 50; i++) {
        clock.now += 20;
        traffic.record('node-1', 200, clock.now - 2);
      }
    }
    expect(traffic.summary('node-1').requestsPerSec).toBeCloseTo(50, -1);
    // Quiet for longer than the window: the rate falls to zero, the totals stay.
    clock.now += 12_000;
    expect(traffic.summary('node-1').requestsPerSec).toBe(0);
    expect(traffic.summary('node-1').latencyMs).toBeNull();
    expect(traffic.summary('node-1').responses['2xx']).toBe(1000);
  });

  it.each([
    // [latencies recorded, expected p50 range, expected p99 range]
    [Array(100).fill(4), [3, 5], [3, 5]],
    [
      [...Array(98).fill(1), 900, 900],
      [0.5, 1],
      [750, 1000],
    ],
    [
      [...Array(50).fill(2), ...Array(50).fill(40)],
      [1, 3],
      [30, 50],
    ],
  ] as Array<[number[], [number, number], [number, number]]>)(
    'places percentiles inside the right buckets (%#)',
    (latencies, p50, p99) => {
      const { traffic, clock } = trafficAt();
      for (const ms of latencies) traffic.record('node-1', 200, clock.now - ms);
      const latency = traffic.summary('node-1').latencyMs;
      expect(latency?.p50).toBeGreaterThanOrEqual(p50[0]);
      expect(latency?.p50).toBeLessThanOrEqual(p50[1]);
      expect(latency?.p99).toBeGreaterThanOrEqual(p99[0]);
      expect(latency?.p99).toBeLessThanOrEqual(p99[1]);
    },
  );

  it('keeps a cumulative histogram for Prometheus', () => {
    const { traffic, clock } = trafficAt();
    traffic.record('node-1', 200, clock.now - 0.1);
    traffic.record('node-1', 200, clock.now - 60_000);
    const histogram = traffic.histogram('node-1');
    expect(histogram.count).toBe(2);
    expect(histogram.counts[0]).toBe(1);
    expect(histogram.counts[LATENCY_BOUNDS_MS.length - 1]).toBe(1);
    expect(histogram.sumMs).toBeCloseTo(60_000.1);
  });
});

describe('NodeTraffic across processes', () => {
  it('adds up the snapshots of proxy workers', () => {
    const clock = { now: 5_000_000 };
    const workers = [new NodeTraffic(() => clock.now, 0), new NodeTraffic(() => clock.now, 0)];
    const control = new NodeTraffic(() => clock.now, 0);
    for (let i = 0; i < 100; i++) {
      clock.now += 10;
      workers[i % 2]?.record('node-1', i < 90 ? 200 : 500, clock.now - 5);
    }
    workers.forEach((worker, index) =>
      control.absorb(`worker-${index}`, JSON.parse(JSON.stringify(worker.snapshot()))),
    );
    const summary = control.summary('node-1');
    expect(summary.responses).toMatchObject({ '2xx': 90, '5xx': 10 });
    expect(summary.latencyMs?.p50).toBeGreaterThanOrEqual(3);
    expect(summary.latencyMs?.p50).toBeLessThanOrEqual(5);
    expect(control.histogram('node-1').count).toBe(100);
    // A newer snapshot of a worker replaces its older one.
    control.absorb('worker-0', {});
    expect(control.histogram('node-1').count).toBe(50);
  });

  it('keeps the totals of a retired worker, not its window', () => {
    const clock = { now: 5_000_000 };
    const worker = new NodeTraffic(() => clock.now, 0);
    const control = new NodeTraffic(() => clock.now, 0);
    for (let i = 0; i < 10; i++) worker.record('node-1', i < 8 ? 200 : 503, clock.now - 2);
    control.absorb('worker-1', JSON.parse(JSON.stringify(worker.snapshot())));
    const before = control.histogram('node-1');
    control.retire('worker-1');
    // Counters for Prometheus: a drop would read as a reset.
    expect(control.histogram('node-1')).toEqual(before);
    expect(control.summary('node-1').responses).toMatchObject({ '2xx': 8, '5xx': 2 });
    // The rate and percentiles are of live traffic.
    expect(control.summary('node-1').latencyMs).toBeNull();
    // Retiring twice (or an unknown source) counts nothing again.
    control.retire('worker-1');
    expect(control.histogram('node-1').count).toBe(10);
  });
});

describe('percentile', () => {
  it('answers the lower bound of the open last bucket', () => {
    const counts = new Array<number>(LATENCY_BOUNDS_MS.length).fill(0);
    counts[LATENCY_BOUNDS_MS.length - 1] = 10;
    expect(percentile(counts, 10, 0.5)).toBe(LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 2]);
  });
});

describe('EventLog', () => {
  it('replays the events after an id, oldest first, from what the ring still holds', () => {
    const log = new EventLog(3);
    for (let i = 1; i <= 5; i++) log.push('node:drain', `event ${i}`);
    expect(log.lastId).toBe(5);
    expect(log.since(0).map((event) => event.id)).toEqual([3, 4, 5]);
    expect(log.since(3).map((event) => event.id)).toEqual([4, 5]);
    expect(log.since(5)).toEqual([]);
    expect(log.since(99)).toEqual([]);
  });
});

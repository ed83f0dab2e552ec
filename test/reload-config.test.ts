import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/index.js';
import { applicableReload } from '../src/stickylb.js';

const base = {
  nodes: [{ id: 'node-1', url: 'http://127.0.0.1:9001' }],
  proxy: { listen: { host: '127.0.0.1', port: 8080 } },
};
const previous = parseConfig(base);

describe('applicableReload: what a SIGHUP applies and what waits for a restart', () => {
  it('applies nodes, weights, timeouts, health and rebalance settings', () => {
    const next = parseConfig({
      ...base,
      nodes: [...base.nodes, { id: 'node-2', url: 'http://127.0.0.1:9002', weight: 3 }],
      proxy: { ...base.proxy, timeouts: { upstream: '7s' } },
      health: { interval: '5s' },
      balancing: { rebalanceSpread: 7 },
    });
    const { applied, notes } = applicableReload(previous, next);
    expect(notes).toEqual([]);
    expect(applied.nodes).toEqual(next.nodes);
    expect(applied.proxy.timeouts.upstream).toBe(7000);
    expect(applied.health.interval).toBe(5000);
    expect(applied.balancing.rebalanceSpread).toBe(7);
  });

  it.each([
    [
      'proxy.listen',
      { proxy: { listen: { host: '127.0.0.1', port: 9090 } } },
      (c: typeof previous) => c.proxy.listen,
    ],
    ['proxy.workers', { proxy: { ...base.proxy, workers: 3 } }, (c: typeof previous) => c.proxy.workers],
    ['log', { log: { level: 'debug' } }, (c: typeof previous) => c.log],
    [
      'proxy.maxBodyBytes',
      { proxy: { ...base.proxy, maxBodyBytes: 1024 } },
      (c: typeof previous) => c.proxy.maxBodyBytes,
    ],
    ['session', { session: { cookieName: 'OTHER' } }, (c: typeof previous) => c.session],
    ['admin', { admin: { listen: { host: '127.0.0.1', port: 9999 } } }, (c: typeof previous) => c.admin],
    ['replication', { replication: { mode: 'async' } }, (c: typeof previous) => c.replication],
    ['redis', { redis: { url: 'redis://10.0.0.5:6379' } }, (c: typeof previous) => c.redis],
    [
      'balancing.policy',
      { balancing: { policy: 'round-robin' } },
      (c: typeof previous) => c.balancing.policy,
    ],
  ])(
    'keeps the running %s (a worker started later must agree with the others) and says so',
    (key, change, read) => {
      const next = parseConfig({ ...base, ...change });
      expect(read(next)).not.toEqual(read(previous));
      const { applied, notes } = applicableReload(previous, next);
      expect(read(applied)).toEqual(read(previous));
      expect(notes).toEqual([`${key}: needs a restart`]);
    },
  );
});

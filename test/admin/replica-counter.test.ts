import { afterEach, describe, expect, it, vi } from 'vitest';
import { ReplicaCounter } from '../../src/admin/index.js';

describe('ReplicaCounter', () => {
  it('counts once, then reuses the count while it is fresh', async () => {
    const count = vi.fn(async () => new Map([['node-1', 3]]));
    const counter = new ReplicaCounter({ count });
    // No count yet: unknown, not zero.
    expect(counter.counts).toBeUndefined();
    await counter.ensureFresh();
    expect(counter.counts?.get('node-1')).toBe(3);
    for (let i = 0; i < 10; i++) void counter.counts;
    await counter.ensureFresh();
    expect(count).toHaveBeenCalledTimes(1);
  });

  it('counts again at once when sessions moved, even during a count', async () => {
    let replicas = 1;
    const count = vi.fn(async () => new Map([['node-1', replicas]]));
    const counter = new ReplicaCounter({ count });
    const first = counter.refresh();
    replicas = 2;
    counter.invalidate();
    await first;
    await counter.ensureFresh();
    expect(counter.counts?.get('node-1')).toBe(2);
  });

  it('keeps the last count when counting fails', async () => {
    let isClosed = false;
    const counter = new ReplicaCounter({
      count: async () => {
        if (isClosed) throw new Error('replica store is closed');
        return new Map([['node-1', 5]]);
      },
    });
    await counter.ensureFresh();
    isClosed = true;
    counter.invalidate();
    await counter.ensureFresh();
    expect(counter.counts?.get('node-1')).toBe(5);
  });

  describe('when counting fails', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('counts again 2 s after a slow failure, not 50 times its length later', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
      let isReachable = false;
      const counter = new ReplicaCounter({
        count: async () => {
          // A store that is away answers after a 5 s timeout.
          if (!isReachable) {
            await new Promise((resolve) => setTimeout(resolve, 5000));
            throw new Error('replica store unreachable');
          }
          return new Map([['node-1', 7]]);
        },
      });
      const first = counter.refresh();
      await vi.advanceTimersByTimeAsync(5000);
      await first;
      expect(counter.counts).toBeUndefined();
      isReachable = true;
      await vi.advanceTimersByTimeAsync(2000);
      await counter.ensureFresh();
      expect(counter.counts?.get('node-1')).toBe(7);
    });
  });
});

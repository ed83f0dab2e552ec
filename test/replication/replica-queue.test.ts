import { describe, expect, it, vi } from 'vitest';
import {
  MAX_RECORDS_BYTES,
  ReplicaQueue,
  batchWrites,
  serialiseWrite,
  type PendingWrite,
} from '../../src/replication/replica-queue.js';

const write = (key: string, version: number, data: unknown = { version }): PendingWrite =>
  serialiseWrite(key, version, data as never, 1_700_000_000_000);
const waiter = () => ({ resolve: vi.fn(), reject: vi.fn() });

describe('ReplicaQueue', () => {
  it.each([
    { case: 'a newer write replaces an older one', first: 1, second: 2, sent: 2 },
    { case: 'an older write does not replace a newer one', first: 2, second: 1, sent: 2 },
  ])('$case, and both callers wait for what is sent', ({ first, second, sent }) => {
    const queue = new ReplicaQueue();
    const [a, b] = [waiter(), waiter()];
    queue.addWrite(write('k', first), a);
    queue.addWrite(write('k', second), b);
    const { writes } = queue.take();
    expect(writes).toHaveLength(1);
    expect(writes[0]?.version).toBe(sent);
    expect(JSON.parse(writes[0]?.json ?? '')).toMatchObject({ version: sent, data: { version: sent } });
    expect(writes[0]?.waiters).toEqual([a, b]);
  });

  it('drops a queued write when the key is removed, resolving its callers', () => {
    const queue = new ReplicaQueue();
    const dropped = waiter();
    queue.addWrite(write('k', 3), dropped);
    queue.addRemove('k');
    expect(dropped.resolve).toHaveBeenCalledOnce();
    const round = queue.take();
    expect(round.writes).toEqual([]);
    expect([...round.removes.keys()]).toEqual(['k']);
    expect(queue.size).toBe(0);
  });

  it('keeps a write queued after a removal of the same key (re-created session)', () => {
    const queue = new ReplicaQueue();
    queue.addRemove('k');
    queue.addWrite(write('k', 1));
    const round = queue.take();
    expect([...round.removes.keys()]).toEqual(['k']);
    expect(round.writes.map((queued) => queued.version)).toEqual([1]);
  });

  it.each([
    { case: 'nothing new is queued', after: () => {}, restored: true },
    {
      case: 'the key was written again',
      after: (q: ReplicaQueue) => q.addWrite(write('k', 2)),
      restored: false,
    },
    { case: 'the key was removed', after: (q: ReplicaQueue) => q.addRemove('k'), restored: false },
  ])('restores a failed write only when $case', ({ after, restored }) => {
    const queue = new ReplicaQueue();
    queue.addWrite(write('k', 1), waiter());
    const [failed] = queue.take().writes;
    after(queue);
    queue.restoreWrite(failed as PendingWrite);
    const versions = queue.take().writes.map((queued) => queued.version);
    if (restored) expect(versions).toEqual([1]);
    else expect(versions).not.toContain(1);
  });
});

describe('serialiseWrite', () => {
  it.each([
    { case: 'a key with a dot', key: 'a.b', version: 1, at: 0 },
    { case: 'version 0', key: 'k', version: 0, at: 0 },
    { case: 'a fractional version', key: 'k', version: 1.5, at: 0 },
    { case: 'a negative access time', key: 'k', version: 1, at: -1 },
  ])('refuses $case', ({ key, version, at }) => {
    expect(() => serialiseWrite(key, version, {}, at)).toThrow(RangeError);
  });

  it('refuses a session larger than a request may carry', () => {
    const data = { blob: 'x'.repeat(MAX_RECORDS_BYTES) };
    expect(() => serialiseWrite('k', 1, data, 0)).toThrow(
      expect.objectContaining({ code: 'SLB_REPLICA_UNAVAILABLE' }),
    );
  });
});

describe('batchWrites', () => {
  it('splits by record count', () => {
    const writes = Array.from({ length: 7 }, (_, i) => write(`k${i}`, 1));
    expect([...batchWrites(writes, 3)].map((batch) => batch.length)).toEqual([3, 3, 1]);
  });

  it('splits by bytes so no request exceeds the body limit', () => {
    const big = 'x'.repeat(Math.floor(MAX_RECORDS_BYTES / 2.5));
    const writes = Array.from({ length: 5 }, (_, i) => write(`k${i}`, 1, { big }));
    const batches = [...batchWrites(writes)];
    expect(batches.map((batch) => batch.length)).toEqual([2, 2, 1]);
    for (const batch of batches) {
      expect(batch.reduce((sum, queued) => sum + queued.bytes + 1, 0)).toBeLessThanOrEqual(MAX_RECORDS_BYTES);
    }
  });
});

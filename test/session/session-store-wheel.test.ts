import { describe, expect, it } from 'vitest';
import { SessionStore, type SessionStoreOptions } from '../../src/session/index.js';
import { accessQuantumMs } from '../../src/session/access-wheel.js';

/**
 * The store's lazy access order (a timing wheel, src/session/access-wheel.ts) on an injected
 * clock: touches do not move entries, walks refile them. Idle timeouts here make the wheel's
 * quantum W wider than 1 ms, so bucket boundaries matter.
 */
const IDLE_MS = 40_960;
const W = accessQuantumMs(IDLE_MS);
const ACTIVE_MS = 1_000;
const T0 = 1_000_000 * W;

function createStore(options: Partial<SessionStoreOptions> = {}): {
  store: SessionStore<number>;
  clock: { t: number };
} {
  const clock = { t: T0 };
  const store = new SessionStore<number>({
    idleTimeoutMs: IDLE_MS,
    activeWindowMs: ACTIVE_MS,
    now: () => clock.t,
    ...options,
  });
  return { store, clock };
}

const ids = (store: SessionStore<number>): string[] => [...store.entries()].map((entry) => entry.id);

describe('SessionStore access wheel', () => {
  it('has a quantum wider than 1 ms at this idle timeout (the cases below depend on it)', () => {
    expect(W).toBe(10);
  });

  it.each([
    ['swept', async (store: SessionStore<number>) => store.sweep()],
    ['listed', async (store: SessionStore<number>) => ids(store)],
  ])('keeps a session touched long after it was linked when %s', async (_name, walk) => {
    const { store, clock } = createStore();
    store.create('old', 0);
    store.create('touched', 0);
    clock.t += IDLE_MS - 1;
    store.touch('touched');
    clock.t += IDLE_MS - 1;
    await walk(store);
    await store.sweep();
    // 'old' expired long ago; 'touched' is IDLE_MS - 1 idle: live, though its bucket is long past.
    expect(ids(store)).toEqual(['touched']);
    expect(store.size).toBe(1);
    clock.t += 1;
    expect(await store.sweep()).toBe(1);
    expect(store.size).toBe(0);
  });

  it('does not evict a session touched long after it was linked while an untouched one is idle', () => {
    const { store, clock } = createStore({ maxSessions: 2 });
    store.create('touched', 0);
    clock.t = T0 + 5 * W;
    store.create('untouched', 0);
    clock.t = T0 + IDLE_MS / 2;
    store.touch('touched');
    // Both idle now, neither expired: 'untouched' was used longer ago, though linked later.
    clock.t += ACTIVE_MS;
    store.create('new', 0);
    expect(ids(store)).toEqual(['touched', 'new']);
    expect(store.metrics().evictedTotal).toBe(1);
  });

  it.each([
    // Offsets (ms) from T0 (a bucket's start) of the sessions' access times, and which are expired
    // when the sweep runs at T0 + IDLE_MS + 5: those at or before T0 + 5.
    [[0, 1, 4], ['a', 'b', 'c'], []],
    [
      [0, 5, 6, 9],
      ['a', 'b'],
      ['c', 'd'],
    ],
    [[6, 9], [], ['a', 'b']],
    [[5], ['a'], []],
    // Buckets wholly expired before it are emptied first.
    [[-2 * W, -W + 3, 0, 6], ['a', 'b', 'c'], ['d']],
  ])(
    'expires exactly the expired sessions of the bucket straddling the limit (offsets %j)',
    async (offsets, expired, live) => {
      const { store, clock } = createStore();
      offsets.forEach((offset, i) => {
        clock.t = T0 + offset;
        store.create(String.fromCharCode(97 + i), i);
      });
      clock.t = T0 + IDLE_MS + 5;
      const seen: string[] = [];
      store.on('expired', (entry) => seen.push(entry.id));
      expect(await store.sweep()).toBe(expired.length);
      expect(seen).toEqual(expired);
      expect(ids(store)).toEqual(live);
      // A second sweep finds nothing more, and no session left is idle for IDLE_MS.
      expect(await store.sweep()).toBe(0);
    },
  );

  it.each([
    // Creation order, then ids touched (each a few quanta later), then the expected victim.
    [['a', 'b', 'c'], [], 'a'],
    [['a', 'b', 'c'], ['a'], 'b'],
    [['a', 'b', 'c'], ['a', 'b'], 'c'],
    [['a', 'b', 'c'], ['b', 'a', 'c'], 'b'],
  ])('evicts the least recently used across buckets (created %j, touched %j)', (created, touched, victim) => {
    const { store, clock } = createStore({ maxSessions: created.length });
    for (const id of created) {
      store.create(id, 0);
      clock.t += 3 * W;
    }
    for (const id of touched) {
      store.touch(id);
      clock.t += 3 * W;
    }
    clock.t += ACTIVE_MS;
    const evicted: string[] = [];
    store.on('evicted', (entry) => evicted.push(entry.id));
    store.create('new', 0);
    expect(evicted).toEqual([victim]);
  });

  // Buckets older than one turn of the ring share slots with the newest ones: a walk that starts
  // a turn back from now must still see them first (a sweep had not run for over 2 quanta).
  it('evicts nothing live while an expired session sits in a bucket a turn of the ring back', async () => {
    const { store, clock } = createStore({ maxSessions: 2 });
    store.create('a', 0);
    clock.t = T0 + 1_000;
    store.create('b', 0);
    clock.t = T0 + IDLE_MS + 30;
    store.create('c', 0);
    // 'a' expired 30 ms ago and makes the room; 'b' (idle, live) stays.
    expect(store.has('b')).toBe(true);
    expect(store.size).toBe(2);
    await store.sweep();
    expect(ids(store)).toEqual(['b', 'c']);
  });

  it('lists a session filed a turn of the ring back by its real access time', () => {
    const { store, clock } = createStore();
    store.create('x', 0);
    clock.t = T0 + 20_000;
    store.touch('x');
    clock.t = T0 + 30_000;
    store.create('y', 0);
    clock.t = T0 + IDLE_MS + 40;
    expect(ids(store)).toEqual(['x', 'y']);
  });

  it('evicts the least recently used when the oldest bucket is a turn of the ring back', () => {
    const { store, clock } = createStore({ maxSessions: 2, activeWindowMs: 10 });
    store.create('x', 0);
    clock.t = T0 + 20_000;
    store.touch('x');
    clock.t = T0 + 30_000;
    store.create('y', 0);
    clock.t = T0 + IDLE_MS + 40;
    store.create('z', 0);
    expect(store.has('x')).toBe(false);
    expect(store.has('y')).toBe(true);
  });

  it('refuses with SessionLimitError when the least recently used, touched in a later bucket, is active', () => {
    const { store, clock } = createStore({ maxSessions: 2 });
    store.create('a', 0);
    store.create('b', 0);
    clock.t += ACTIVE_MS + W;
    store.touch('a');
    store.touch('b');
    expect(() => store.create('c', 0)).toThrow(expect.objectContaining({ code: 'SLB_SESSION_LIMIT' }));
    expect(store.size).toBe(2);
  });

  it.each([
    [0, 3],
    [ACTIVE_MS - 1, 3],
    [ACTIVE_MS, 1],
    [ACTIVE_MS + 2 * W - 1, 1],
    [ACTIVE_MS + 2 * W, 0],
  ])('counts active sessions as time moves (%i ms after the first: %i active)', (laterMs, active) => {
    const { store, clock } = createStore();
    store.create('a', 0);
    store.create('b', 0);
    clock.t += 2 * W;
    store.create('c', 0);
    clock.t = T0 + Math.max(laterMs, 2 * W);
    expect(store.metrics()).toMatchObject({ total: 3, active, idle: 3 - active });
  });

  it('moves a touched session back into the active count, and out when deleted', () => {
    const { store, clock } = createStore();
    store.create('a', 0);
    store.create('b', 0);
    clock.t += ACTIVE_MS;
    expect(store.metrics().active).toBe(0);
    store.get('a');
    store.update('b', () => 1);
    expect(store.metrics().active).toBe(2);
    store.delete('a');
    expect(store.metrics()).toMatchObject({ total: 1, active: 1 });
  });

  it.each([
    [['a', 'b', 'c', 'd'], [], ['a', 'b', 'c', 'd']],
    [['a', 'b', 'c', 'd'], ['a'], ['b', 'c', 'd', 'a']],
    [
      ['a', 'b', 'c', 'd'],
      ['c', 'a'],
      ['b', 'd', 'c', 'a'],
    ],
    [
      ['a', 'b', 'c', 'd'],
      ['d', 'b', 'a', 'c'],
      ['d', 'b', 'a', 'c'],
    ],
  ])(
    'lists entries least recently used first after touches (created %j, touched %j)',
    (created, touched, order) => {
      const { store, clock } = createStore();
      for (const id of created) {
        store.create(id, 0);
        clock.t += W;
      }
      for (const id of touched) {
        store.touch(id);
        clock.t += W;
      }
      expect(ids(store)).toEqual(order);
      // Listing refiled the touched entries: the order holds on the next walk too.
      expect(ids(store)).toEqual(order);
    },
  );

  it('stays exact while the ring wraps around many times (random operations against a model)', async () => {
    const { store, clock } = createStore({ maxSessions: 50 });
    const model = new Map<string, number>();
    let state = 7;
    const random = (n: number): number => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state % n;
    };
    const live = (): string[] => [...model].filter(([, at]) => clock.t - at < IDLE_MS).map(([id]) => id);
    // ~60 idle timeouts: the ring of ~4 100 quanta wraps ~60 times.
    for (let step = 0; step < 6000; step++) {
      const id = `s-${random(80)}`;
      const op = random(10);
      if (op < 3) {
        if (model.has(id) && clock.t - model.get(id)! >= IDLE_MS) model.delete(id);
        try {
          store.create(id, step);
          model.set(id, clock.t);
        } catch (error) {
          expect((error as { code?: string }).code).toBe('SLB_SESSION_LIMIT');
        }
        for (const gone of [...model.keys()].filter((key) => !store.has(key))) model.delete(gone);
      } else if (op < 6) {
        if (store.get(id) !== undefined) model.set(id, clock.t);
        else model.delete(id);
      } else if (op < 7) {
        store.delete(id);
        model.delete(id);
      } else if (op < 8) {
        await store.sweep();
      } else {
        clock.t += random(IDLE_MS / 10);
      }
      if (step % 50 === 0) {
        const expected = live();
        const listed = [...store.entries()];
        expect(listed.map((entry) => entry.id).sort()).toEqual([...expected].sort());
        const quanta = listed.map((entry) => Math.floor(entry.lastAccessAt / W));
        expect(quanta).toEqual([...quanta].sort((a, b) => a - b));
        const active = expected.filter((key) => clock.t - model.get(key)! < ACTIVE_MS).length;
        expect(store.metrics().active).toBe(active);
        await store.sweep();
        expect(store.size).toBe(expected.length);
      }
    }
    expect(clock.t - T0).toBeGreaterThan(20 * IDLE_MS);
  });

  it('keeps sessions after the clock steps back, and expires them once it has caught up', async () => {
    const { store, clock } = createStore();
    store.create('before', 0);
    clock.t -= 3 * IDLE_MS;
    store.create('after-step', 0);
    expect(await store.sweep()).toBe(0);
    expect(ids(store).sort()).toEqual(['after-step', 'before']);
    // A touch never moves a session's time back.
    store.touch('before');
    expect(store.peek('before')!.lastAccessAt).toBe(T0);
    clock.t = T0 + IDLE_MS - 1;
    expect(await store.sweep()).toBe(1);
    expect(ids(store)).toEqual(['before']);
    clock.t = T0 + IDLE_MS;
    expect(await store.sweep()).toBe(1);
    expect(store.size).toBe(0);
  });

  it('files a put copy with an older time in that time’s bucket', async () => {
    const { store, clock } = createStore();
    store.create('a', 0);
    clock.t += 10 * W;
    store.create('c', 0);
    store.put('b', 0, 1, T0 + 5 * W);
    expect(ids(store)).toEqual(['a', 'b', 'c']);
    clock.t = T0 + 5 * W + IDLE_MS;
    expect(await store.sweep()).toBe(2);
    expect(ids(store)).toEqual(['c']);
  });
});

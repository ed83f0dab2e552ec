import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionStore, type SessionEntry, type SessionStoreOptions } from '../../src/session/index.js';
import { StoreEntry } from '../../src/session/store-entry.js';
import type { WriteQueue } from '../../src/session/write-queue.js';

const IDLE_MS = 10_000;
const ACTIVE_MS = 1_000;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Moves the fake clock on by `ms`, then lets the event loop turn. The store's default clock
 * reads the time once per turn (turn-clock.ts), so, as in production, time moves for it
 * between turns, never within one.
 */
async function advance(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms);
  await nextTurn();
}

// setImmediate stays real: the sweep yields through it between slices, and the store's clock
// refreshes through it once per turn.
beforeEach(async () => {
  vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
  await nextTurn();
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.useRealTimers();
});

function createStore<V = { count: number }>(options: Partial<SessionStoreOptions> = {}): SessionStore<V> {
  return new SessionStore<V>({ idleTimeoutMs: IDLE_MS, activeWindowMs: ACTIVE_MS, ...options });
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = (): void => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const ids = (store: SessionStore<unknown>): string[] => [...store.entries()].map((entry) => entry.id);

describe('SessionStore', () => {
  describe('create, get, touch, delete', () => {
    it('creates a session at version 1 stamped with the current time', () => {
      const store = createStore();
      const entry = store.create('a', { count: 0 });
      expect(entry).toMatchObject({ id: 'a', value: { count: 0 }, version: 1 });
      expect(entry.lastAccessAt).toBe(Date.now());
      expect(store.size).toBe(1);
    });

    it('returns the live entry from get and refreshes its access time', async () => {
      const store = createStore();
      const created = store.create('a', { count: 0 });
      await advance(500);
      const entry = store.get('a');
      expect(entry).toBe(created);
      expect(entry?.lastAccessAt).toBe(Date.now());
    });

    it('returns undefined from get for an unknown id', () => {
      expect(createStore().get('nope')).toBeUndefined();
    });

    it('returns the existing entry, touched and unchanged, when creating a live id again', async () => {
      const store = createStore();
      const first = store.create('a', { count: 1 });
      await advance(500);
      const second = store.create('a', { count: 99 });
      expect(second).toBe(first);
      expect(second).toMatchObject({ value: { count: 1 }, version: 1, lastAccessAt: Date.now() });
    });

    it('replaces an expired entry when creating its id again', async () => {
      const store = createStore();
      const expired = vi.fn();
      store.on('expired', expired);
      store.create('a', { count: 1 });
      await advance(IDLE_MS);
      const entry = store.create('a', { count: 2 });
      expect(entry).toMatchObject({ value: { count: 2 }, version: 1 });
      expect(expired).toHaveBeenCalledTimes(1);
    });

    it.each([
      ['a', true],
      ['unknown', false],
    ])('touch(%s) returns %s', (id, result) => {
      const store = createStore();
      store.create('a', { count: 0 });
      expect(store.touch(id)).toBe(result);
    });

    it('emits touched with the entry on get when someone listens', () => {
      const store = createStore();
      const touched = vi.fn();
      store.on('touched', touched);
      const entry = store.create('a', { count: 0 });
      store.get('a');
      expect(touched).toHaveBeenCalledWith(entry);
    });

    it('emits to a listener added after every listener was removed', () => {
      const store = createStore();
      store.on('expired', () => {});
      store.removeAllListeners();
      const touched = vi.fn();
      store.once('touched', touched);
      store.create('a', { count: 0 });
      store.get('a');
      store.get('a');
      expect(touched).toHaveBeenCalledTimes(1);
    });

    it('deletes a session and emits deleted', () => {
      const store = createStore();
      const deleted = vi.fn();
      store.on('deleted', deleted);
      const entry = store.create('a', { count: 0 });
      expect(store.delete('a')).toBe(true);
      expect(store.has('a')).toBe(false);
      expect(store.size).toBe(0);
      expect(deleted).toHaveBeenCalledWith(entry);
    });

    it('returns false when deleting an unknown id', () => {
      expect(createStore().delete('nope')).toBe(false);
    });

    it('does not touch on peek', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      store.create('b', { count: 0 });
      await advance(500);
      expect(store.peek('a')?.lastAccessAt).toBe(Date.now() - 500);
      expect(ids(store)).toEqual(['a', 'b']);
    });

    it('serialises an entry as its fields, without list links', () => {
      const store = createStore();
      store.create('a', { count: 0 });
      const entry = store.create('b', { count: 1 });
      expect(JSON.parse(JSON.stringify(entry))).toEqual({
        id: 'b',
        value: { count: 1 },
        version: 1,
        lastAccessAt: Date.now(),
      });
    });
  });

  describe('expiry', () => {
    it.each([
      ['get', (store: SessionStore<unknown>) => store.get('a'), undefined],
      ['peek', (store: SessionStore<unknown>) => store.peek('a'), undefined],
      ['has', (store: SessionStore<unknown>) => store.has('a'), false],
      ['touch', (store: SessionStore<unknown>) => store.touch('a'), false],
      ['delete', (store: SessionStore<unknown>) => store.delete('a'), false],
    ])('expires an idle session passively on %s and emits expired', async (_name, read, result) => {
      const store = createStore<unknown>();
      const expired = vi.fn();
      store.on('expired', expired);
      const entry = store.create('a', {});
      await advance(IDLE_MS);
      expect(read(store)).toBe(result);
      expect(expired).toHaveBeenCalledWith(entry);
      expect(store.size).toBe(0);
    });

    it.each([
      [IDLE_MS - 1, true],
      [IDLE_MS, false],
    ])('after %i ms idle the session is live: %s', async (idleMs, isLive) => {
      const store = createStore();
      store.create('a', { count: 0 });
      await advance(idleMs);
      expect(store.has('a')).toBe(isLive);
    });

    it('sweeps exactly the expired sessions and emits expired for each', async () => {
      const store = createStore();
      const expired: string[] = [];
      store.on('expired', (entry) => expired.push(entry.id));
      store.create('old-1', { count: 0 });
      store.create('old-2', { count: 0 });
      await advance(IDLE_MS / 2);
      store.create('new-1', { count: 0 });
      await advance(IDLE_MS / 2);
      expect(await store.sweep()).toBe(2);
      expect(expired).toEqual(['old-1', 'old-2']);
      expect(ids(store)).toEqual(['new-1']);
      expect(store.size).toBe(1);
    });

    it('visits only the expired sessions when sweeping (stops at the first live one)', async () => {
      // Live sessions stay active, so the sweep has no active boundary to move past them either.
      const store = createStore<number>({ activeWindowMs: IDLE_MS });
      for (let i = 0; i < 10; i++) store.create(`old-${i}`, i);
      await advance(IDLE_MS / 2);
      for (let i = 0; i < 10_000; i++) store.create(`live-${i}`, i);
      await advance(IDLE_MS / 2);
      const reads = vi.spyOn(StoreEntry.prototype, 'lastAccessAt', 'get');
      expect(await store.sweep()).toBe(10);
      // A couple of reads per expired entry + the live one it stops at: nowhere near 10 000.
      expect(reads.mock.calls.length).toBeLessThan(50);
      expect(store.size).toBe(10_000);
    });

    it('yields to the event loop between sweep slices', async () => {
      const store = createStore<number>({ sweepSliceMs: 0 });
      for (let i = 0; i < 1000; i++) store.create(`s-${i}`, i);
      await advance(IDLE_MS);
      let sizeSeenBetweenSlices = -1;
      setImmediate(() => (sizeSeenBetweenSlices = store.size));
      expect(await store.sweep()).toBe(1000);
      expect(sizeSeenBetweenSlices).toBeGreaterThan(0);
      expect(sizeSeenBetweenSlices).toBeLessThan(1000);
    });

    it('yields between slices while moving the active boundary past many sessions sharing a millisecond', async () => {
      const store = createStore<number>({ sweepSliceMs: 0 });
      for (let ms = 0; ms < 10; ms++) {
        for (let i = 0; i < 100; i++) store.create(`s-${ms}-${i}`, i);
        await advance(1);
      }
      await advance(ACTIVE_MS);
      let yields = 0;
      let sweeping = true;
      const count = (): void => {
        yields++;
        if (sweeping) setImmediate(count);
      };
      setImmediate(count);
      expect(await store.sweep()).toBe(0);
      sweeping = false;
      // A clock check is due every 64 sessions and taken at the next change of access time.
      expect(yields).toBeGreaterThanOrEqual(5);
      expect(store.metrics()).toMatchObject({ total: 1000, active: 0 });
    });

    it('keeps a touched old session and sweeps the untouched one', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      store.create('b', { count: 0 });
      await advance(IDLE_MS - 1);
      store.touch('a');
      await advance(1);
      expect(await store.sweep()).toBe(1);
      expect(ids(store)).toEqual(['a']);
    });

    it('joins a sweep already in progress', async () => {
      const store = createStore<number>({ sweepSliceMs: 0 });
      for (let i = 0; i < 500; i++) store.create(`s-${i}`, i);
      await advance(IDLE_MS);
      const first = store.sweep();
      expect(store.sweep()).toBe(first);
      expect(await first).toBe(500);
    });

    it('lists live entries least recently used first, skipping expired ones', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      await advance(1);
      store.create('b', { count: 0 });
      store.create('c', { count: 0 });
      store.touch('b');
      expect(ids(store)).toEqual(['a', 'c', 'b']);
      await advance(IDLE_MS - 1);
      expect(ids(store)).toEqual(['c', 'b']);
    });

    it.each([
      { order: 'least recently used first', newestFirst: false, expected: ['e', 'c'] },
      { order: 'most recently used first', newestFirst: true, expected: ['c', 'e'] },
    ])(
      'lists the ids of live entries a test accepts, $order, skipping expired ones',
      async ({ newestFirst, expected }) => {
        const store = createStore<{ node: string }>();
        store.create('a', { node: 'n1' });
        await advance(1);
        for (const [id, node] of [
          ['b', 'n2'],
          ['c', 'n1'],
          ['d', 'n2'],
          ['e', 'n1'],
        ] as const)
          store.create(id, { node });
        store.touch('c');
        // 'a' expires; the rest are live.
        await advance(IDLE_MS - 1);
        expect(store.idsWhere((entry) => entry.value.node === 'n1', newestFirst)).toEqual(expected);
        expect(store.idsWhere(() => true, newestFirst)).toEqual(
          newestFirst ? ['c', 'e', 'd', 'b'] : ['b', 'd', 'e', 'c'],
        );
        expect(store.idsWhere(() => false, newestFirst)).toEqual([]);
      },
    );

    it('visits each entry once when the loop touches the entry it is given', () => {
      const store = createStore();
      for (const id of ['a', 'b', 'c']) store.create(id, { count: 0 });
      const seen: string[] = [];
      for (const entry of store.entries()) {
        seen.push(entry.id);
        store.touch(entry.id);
      }
      expect(seen).toEqual(['a', 'b', 'c']);
    });
  });

  describe('versioned writes', () => {
    it('bumps the version on update and emits updated', () => {
      const store = createStore();
      const updated = vi.fn();
      store.on('updated', updated);
      store.create('a', { count: 0 });
      const entry = store.update('a', (value) => {
        value.count++;
      });
      expect(entry).toMatchObject({ value: { count: 1 }, version: 2 });
      expect(updated).toHaveBeenCalledWith(entry);
    });

    it('stores the value returned by the update function', () => {
      const store = createStore();
      store.create('a', { count: 0 });
      expect(store.update('a', (value) => ({ count: value.count + 5 })).value).toEqual({ count: 5 });
    });

    it('keeps the version when the update function throws', () => {
      const store = createStore();
      store.create('a', { count: 0 });
      expect(() =>
        store.update('a', () => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(store.peek('a')?.version).toBe(1);
    });

    it.each(['update', 'updateAsync', 'replace'] as const)(
      'refuses %s of an unknown session',
      async (method) => {
        const store = createStore();
        const attempt = async (): Promise<unknown> => {
          if (method === 'update') return store.update('nope', () => undefined);
          if (method === 'updateAsync') return store.updateAsync('nope', async () => undefined);
          return store.replace('nope', { count: 1 }, 1);
        };
        await expect(attempt()).rejects.toMatchObject({ code: 'SLB_SESSION_NOT_FOUND' });
      },
    );

    it('serialises interleaved async updates so neither increment is lost', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      const gates = [deferred(), deferred()];
      const increment = (gate: Promise<void>) => async (value: { count: number }) => {
        const read = value.count;
        await gate;
        return { count: read + 1 };
      };
      const first = store.updateAsync('a', increment(gates[0]!.promise));
      const second = store.updateAsync('a', increment(gates[1]!.promise));
      gates[1]!.resolve();
      gates[0]!.resolve();
      await Promise.all([first, second]);
      expect(store.peek('a')).toMatchObject({ value: { count: 2 }, version: 3 });
    });

    it('runs the next async update after a failed one', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      const failed = store.updateAsync('a', async () => {
        throw new Error('boom');
      });
      const next = store.updateAsync('a', async (value) => ({ count: value.count + 1 }));
      await expect(failed).rejects.toThrow('boom');
      await expect(next).resolves.toMatchObject({ value: { count: 1 }, version: 2 });
    });

    it('forgets the per-session write chain once it runs dry', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      await store.updateAsync('a', async () => undefined);
      await new Promise((resolve) => setImmediate(resolve));
      expect((store as unknown as { asyncWrites: WriteQueue }).asyncWrites.size).toBe(0);
    });

    it('refuses an async update whose session was written synchronously meanwhile', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      const gate = deferred();
      const slow = store.updateAsync('a', async (value) => {
        await gate.promise;
        return { count: value.count + 1 };
      });
      store.replace('a', { count: 10 }, 1);
      gate.resolve();
      await expect(slow).rejects.toMatchObject({ code: 'SLB_VERSION_CONFLICT' });
      expect(store.peek('a')).toMatchObject({ value: { count: 10 }, version: 2 });
    });

    it.each([
      ['current', 3, true],
      ['stale', 2, false],
      ['future', 4, false],
    ])('replace with the %s version (%i) applies: %s', (_name, expectedVersion, applies) => {
      const store = createStore();
      store.create('a', { count: 0 });
      store.update('a', () => ({ count: 1 }));
      store.update('a', () => ({ count: 2 }));
      const attempt = (): SessionEntry<{ count: number }> =>
        store.replace('a', { count: 42 }, expectedVersion);
      if (applies) {
        expect(attempt()).toMatchObject({ value: { count: 42 }, version: 4 });
      } else {
        expect(attempt).toThrow(expect.objectContaining({ code: 'SLB_VERSION_CONFLICT' }));
        expect(store.peek('a')).toMatchObject({ value: { count: 2 }, version: 3 });
      }
    });

    it.each([
      [2, false],
      [3, false],
      [4, true],
    ])('put of version %i over stored version 3 applies: %s', (version, applies) => {
      const store = createStore();
      const updated = vi.fn();
      store.put('a', { count: 3 }, 3);
      store.on('updated', updated);
      const attempt = (): SessionEntry<{ count: number }> => store.put('a', { count: version }, version);
      if (applies) {
        expect(attempt()).toMatchObject({ value: { count: 4 }, version: 4 });
        expect(updated).toHaveBeenCalledTimes(1);
      } else {
        expect(attempt).toThrow(expect.objectContaining({ code: 'SLB_VERSION_CONFLICT' }));
        expect(store.peek('a')).toMatchObject({ value: { count: 3 }, version: 3 });
        expect(updated).not.toHaveBeenCalled();
      }
    });

    it('creates a session from put with the given version and emits created', () => {
      const store = createStore();
      const created = vi.fn();
      store.on('created', created);
      const entry = store.put('a', { count: 7 }, 7);
      expect(entry).toMatchObject({ id: 'a', value: { count: 7 }, version: 7 });
      expect(created).toHaveBeenCalledWith(entry);
    });

    it('keeps the idle time of a put copy in step with its lastAccessAt', async () => {
      const store = createStore();
      store.create('new', { count: 0 });
      store.put('copy', { count: 0 }, 5, Date.now() - (IDLE_MS - 100));
      await advance(100);
      expect(await store.sweep()).toBe(1);
      expect(ids(store)).toEqual(['new']);
    });

    it('places a put copy in access order among existing sessions', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      await advance(100);
      store.create('c', { count: 0 });
      await advance(100);
      store.put('b', { count: 0 }, 1, Date.now() - 150);
      expect(ids(store)).toEqual(['a', 'b', 'c']);
    });
  });

  describe('maxSessions', () => {
    it('evicts the least recently used idle session to make room and emits evicted', async () => {
      const store = createStore({ maxSessions: 2 });
      const evicted = vi.fn();
      store.on('evicted', evicted);
      const oldest = store.create('a', { count: 0 });
      store.create('b', { count: 0 });
      await advance(ACTIVE_MS);
      store.touch('b');
      store.create('c', { count: 0 });
      expect(evicted).toHaveBeenCalledWith(oldest);
      expect(ids(store)).toEqual(['b', 'c']);
      expect(store.metrics().evictedTotal).toBe(1);
    });

    it('refuses a new session with SessionLimitError when every session is active', () => {
      const store = createStore({ maxSessions: 2 });
      store.create('a', { count: 0 });
      store.create('b', { count: 0 });
      expect(() => store.create('c', { count: 0 })).toThrow(
        expect.objectContaining({ code: 'SLB_SESSION_LIMIT' }),
      );
      expect(ids(store)).toEqual(['a', 'b']);
    });

    it('expires rather than evicts an expired least recently used session', async () => {
      const store = createStore({ maxSessions: 1 });
      store.create('a', { count: 0 });
      await advance(IDLE_MS);
      store.create('b', { count: 0 });
      expect(store.metrics()).toMatchObject({ expiredTotal: 1, evictedTotal: 0 });
    });
  });

  describe('states and metrics', () => {
    it.each([
      [0, 'active'],
      [ACTIVE_MS - 1, 'active'],
      [ACTIVE_MS, 'idle'],
      [IDLE_MS - 1, 'idle'],
      [IDLE_MS, 'expired'],
    ])('after %i ms the state is %s', async (elapsedMs, state) => {
      const store = createStore();
      const entry = store.create('a', { count: 0 });
      await advance(elapsedMs);
      expect(store.stateOf(entry)).toBe(state);
    });

    it('counts active and idle sessions as time passes', async () => {
      const store = createStore();
      store.create('a', { count: 0 });
      store.create('b', { count: 0 });
      await advance(ACTIVE_MS);
      store.create('c', { count: 0 });
      expect(store.metrics()).toMatchObject({ total: 3, active: 1, idle: 2 });
      store.touch('a');
      expect(store.metrics()).toMatchObject({ total: 3, active: 2, idle: 1 });
      await advance(ACTIVE_MS);
      expect(store.metrics()).toMatchObject({ total: 3, active: 0, idle: 3 });
    });

    it.each([1, 2, 3])(
      'keeps the active count equal to a full recount under random operations (seed %i)',
      async (seed) => {
        const store = createStore<number>({ activeWindowMs: 300, maxSessions: 40 });
        let state = seed;
        const random = (n: number): number => {
          state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
          return state % n;
        };
        for (let step = 0; step < 2000; step++) {
          const id = `s-${random(60)}`;
          const op = random(7);
          try {
            if (op === 0) store.create(id, step);
            else if (op === 1) store.get(id);
            else if (op === 2) store.delete(id);
            else if (op === 3) store.put(id, step, step + 1, Date.now() - random(2000));
            else if (op === 4) store.update(id, () => step);
            else if (op === 5) await advance(random(400));
            else await store.sweep();
          } catch (error) {
            expect((error as { code?: string }).code).toMatch(
              /^SLB_(SESSION_NOT_FOUND|SESSION_LIMIT|VERSION_CONFLICT)$/,
            );
          }
          const live = [...store.entries()];
          const active = live.filter((entry) => store.stateOf(entry) === 'active').length;
          expect(store.metrics().active).toBe(active);
          const times = live.map((entry) => entry.lastAccessAt);
          expect(times).toEqual([...times].sort((a, b) => a - b));
        }
      },
    );

    it('reports sweep, expiry and size metrics', async () => {
      const store = createStore<{ values: { count: number }; children: object }>();
      for (let i = 0; i < 4; i++) store.create(`s-${i}`, { values: { count: i }, children: {} });
      await advance(IDLE_MS);
      store.create('live', { values: { count: 0 }, children: {} });
      await store.sweep();
      // Rates cover the last closed window of at least one second.
      await advance(1000);
      const metrics = store.metrics();
      expect(metrics).toMatchObject({ total: 1, active: 0, idle: 1, expiredTotal: 4, sweepRuns: 1 });
      expect(metrics.expiredPerSec).toBe(4);
      expect(metrics.evictedPerSec).toBe(0);
      expect(metrics.longestSweepSliceMs).toBeGreaterThanOrEqual(0);
      expect(metrics.lastSweepMs).toBeGreaterThanOrEqual(0);
      expect(metrics.bytesPerSession).toBeGreaterThan(100);
    });
  });

  describe('clock', () => {
    it('reads the time once per turn by default: it moves between turns, not within one', async () => {
      const store = createStore();
      const entry = store.create('a', { count: 0 });
      vi.advanceTimersByTime(IDLE_MS);
      // Same turn: the store still sees the time of its first read in this turn.
      expect(store.stateOf(entry)).toBe('active');
      await nextTurn();
      expect(store.stateOf(entry)).toBe('expired');
      expect(store.get('a')).toBeUndefined();
    });

    it('keeps a copy stamped later in the same turn exact, and clamps only past the wall clock', () => {
      const store = createStore();
      store.create('a', { count: 0 }); // the turn's clock reading
      vi.advanceTimersByTime(5);
      const stamped = Date.now(); // another process's write, 5 ms after that reading
      expect(store.put('b', { count: 1 }, 1, stamped).lastAccessAt).toBe(stamped);
      expect(store.put('c', { count: 1 }, 1, stamped + 60_000).lastAccessAt).toBe(stamped);
    });

    it('reads an injected clock on every operation', () => {
      let now = 1_000;
      const store = createStore({ now: () => now });
      const entry = store.create('a', { count: 0 });
      expect(entry.lastAccessAt).toBe(1_000);
      now += IDLE_MS - 1;
      expect(store.get('a')?.lastAccessAt).toBe(now);
      now += IDLE_MS;
      expect(store.get('a')).toBeUndefined();
    });
  });

  describe('timer', () => {
    it('starts no timer in the constructor', () => {
      createStore();
      expect(vi.getTimerCount()).toBe(0);
    });

    it('sweeps on every interval once started, with a single timer', async () => {
      const store = createStore({ sweepIntervalMs: 1000 });
      store.start();
      store.start();
      expect(vi.getTimerCount()).toBe(1);
      store.create('a', { count: 0 });
      await vi.advanceTimersByTimeAsync(IDLE_MS);
      expect(store.size).toBe(0);
      expect(store.metrics().expiredTotal).toBe(1);
      store.stop();
    });

    it('clears its timer on stop', async () => {
      const store = createStore({ sweepIntervalMs: 1000 });
      store.start();
      store.stop();
      expect(vi.getTimerCount()).toBe(0);
      store.create('a', { count: 0 });
      await vi.advanceTimersByTimeAsync(IDLE_MS + 1000);
      expect(store.size).toBe(1);
    });
  });

  it.each([
    [{ idleTimeoutMs: 0 }],
    [{ idleTimeoutMs: Number.NaN }],
    [{ idleTimeoutMs: 1000, maxSessions: 0 }],
    [{ idleTimeoutMs: 1000, sweepIntervalMs: Infinity }],
    [{ idleTimeoutMs: 1000, sweepSliceMs: -1 }],
  ])('rejects invalid options %j', (options) => {
    expect(() => new SessionStore(options)).toThrow(RangeError);
  });
});

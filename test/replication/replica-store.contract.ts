import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ReplicaStore, ReplicaWrite, WriteOutcome } from '../../src/replication/index.js';

/** What a contract run needs from an implementation: a fresh, empty, started store. */
export type CreateReplicaStore = (options: {
  idleTimeoutMs: number;
}) => Promise<{ store: ReplicaStore; cleanup(): Promise<void> }>;

/** Long enough that nothing expires during a test that is not about expiry. */
const LONG_IDLE_MS = 60_000;
/** Short idle timeout for the expiry tests (real time: Redis expires on its own clock). */
const SHORT_IDLE_MS = 300;
const TOUCH_EVERY_MS = 75;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function record(key: string, version: number, data: ReplicaWrite['data'] = { v: version }): ReplicaWrite {
  return { key, version, data, lastAccessAt: Date.now() };
}

/**
 * The one suite every ReplicaStore implementation runs (STYLE: interchangeable parts share
 * one contract suite). `create` gets the idle timeout each test needs.
 */
export function replicaStoreContract(name: string, create: CreateReplicaStore): void {
  describe(`ReplicaStore contract: ${name}`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    afterEach(async () => {
      while (cleanups.length > 0) await cleanups.pop()?.();
    });

    async function storeWith(idleTimeoutMs = LONG_IDLE_MS): Promise<ReplicaStore> {
      const { store, cleanup } = await create({ idleTimeoutMs });
      cleanups.push(cleanup);
      return store;
    }

    it('reads back what was written, owned by the writer', async () => {
      const store = await storeWith();
      const written = record('k1', 3, { cart: ['a', 'b'], nested: { n: 1, x: null, t: true } });
      expect(await store.write('node-1', [written])).toEqual(['ok']);
      const read = await store.read('k1');
      expect(read).toMatchObject({ key: 'k1', version: 3, owner: 'node-1', data: written.data });
      expect(read?.lastAccessAt).toBeGreaterThanOrEqual(written.lastAccessAt);
      expect(read?.lastAccessAt).toBeLessThanOrEqual(Date.now());
    });

    it.each([
      { name: 'a fractional version', bad: { version: 1.5 } },
      { name: 'a NaN version', bad: { version: Number.NaN } },
      { name: 'version 0', bad: { version: 0 } },
      { name: 'a fractional lastAccessAt', bad: { lastAccessAt: 1.5 } },
      { name: 'a negative lastAccessAt', bad: { lastAccessAt: -1 } },
    ])('refuses a batch holding $name before applying any of it', async ({ bad }) => {
      const store = await storeWith();
      await expect(store.write('node-1', [record('k1', 1), { ...record('k2', 1), ...bad }])).rejects.toThrow(
        RangeError,
      );
      expect(await store.read('k1')).toBeUndefined();
    });

    it('returns undefined for a key never written', async () => {
      const store = await storeWith();
      expect(await store.read('missing')).toBeUndefined();
    });

    it.each<{ stored: number; written: number; outcome: WriteOutcome; version: number }>([
      { stored: 3, written: 2, outcome: 'stale', version: 3 },
      { stored: 3, written: 3, outcome: 'stale', version: 3 },
      { stored: 3, written: 4, outcome: 'ok', version: 4 },
      { stored: 3, written: 100, outcome: 'ok', version: 100 },
    ])(
      'answers $outcome to version $written over stored version $stored',
      async ({ stored, written, outcome, version }) => {
        const store = await storeWith();
        await store.write('node-1', [record('k1', stored, { from: stored })]);
        expect(await store.write('node-1', [record('k1', written, { from: written })])).toEqual([outcome]);
        expect(await store.read('k1')).toMatchObject({ version, data: { from: version } });
      },
    );

    it('refuses a write by another node to a key it does not own (fencing)', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 1, { by: 1 })]);
      expect(await store.write('node-2', [record('k1', 2, { by: 2 })])).toEqual(['not-owner']);
      expect(await store.read('k1')).toMatchObject({ owner: 'node-1', version: 1, data: { by: 1 } });
    });

    it('fences the old owner after a transfer, whatever version it sends', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 5)]);
      await store.transfer('k1', 'node-1', 'node-2');
      expect(await store.write('node-1', [record('k1', 6)])).toEqual(['not-owner']);
      expect(await store.write('node-1', [record('k1', 5)])).toEqual(['not-owner']);
      expect(await store.write('node-2', [record('k1', 6)])).toEqual(['ok']);
      expect(await store.read('k1')).toMatchObject({ owner: 'node-2', version: 6 });
    });

    it('answers one outcome per record, in order, within a batch', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('mine', 2)]);
      await store.write('node-2', [record('theirs', 1)]);
      const outcomes = await store.write('node-1', [
        record('fresh', 1),
        record('mine', 1),
        record('theirs', 9),
        record('mine', 3),
      ]);
      expect(outcomes).toEqual(['ok', 'stale', 'not-owner', 'ok']);
    });

    it('lets a removed session start again at version 1', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 7)]);
      await store.remove('node-1', ['k1']);
      expect(await store.write('node-1', [record('k1', 1)])).toEqual(['ok']);
      expect(await store.read('k1')).toMatchObject({ version: 1 });
    });

    it('transfers a key to exactly one of two concurrent callers', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 4, { keep: true })]);
      const results = await Promise.all([
        store.transfer('k1', 'node-1', 'node-2'),
        store.transfer('k1', 'node-1', 'node-3'),
      ]);
      const winners = results.filter((result) => result !== undefined);
      expect(winners).toHaveLength(1);
      const winner = winners[0];
      expect(winner).toMatchObject({ key: 'k1', version: 4, data: { keep: true } });
      expect((await store.read('k1'))?.owner).toBe(winner?.owner);
      expect(['node-2', 'node-3']).toContain(winner?.owner);
    });

    it('keeps version, data and access time through a transfer', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 4, { a: 1 })]);
      const before = await store.read('k1');
      const moved = await store.transfer('k1', 'node-1', 'node-2');
      expect(moved).toEqual({ ...before, owner: 'node-2' });
    });

    it.each([
      { case: 'a wrong owner', key: 'k1', from: 'node-2' },
      { case: 'an unknown key', key: 'nope', from: 'node-1' },
    ])('returns undefined from a transfer from $case', async ({ key, from }) => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 1)]);
      expect(await store.transfer(key, from, 'node-3')).toBeUndefined();
      expect((await store.read('k1'))?.owner).toBe('node-1');
    });

    it('removes a session only for its owner and ignores unknown keys', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('k1', 1), record('k2', 1)]);
      await store.remove('node-2', ['k1', 'unknown']);
      expect(await store.read('k1')).toBeDefined();
      await store.remove('node-1', ['k1', 'unknown']);
      expect(await store.read('k1')).toBeUndefined();
      expect(await store.read('k2')).toBeDefined();
    });

    it('lists the keys each node owns, following transfers and removals', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('a', 1), record('b', 1), record('c', 1)]);
      await store.write('node-2', [record('d', 1)]);
      await store.transfer('a', 'node-1', 'node-2');
      await store.remove('node-1', ['c']);
      expect((await store.keysOf('node-1')).sort()).toEqual(['b']);
      expect((await store.keysOf('node-2')).sort()).toEqual(['a', 'd']);
      expect(await store.keysOf('node-9')).toEqual([]);
      // A rewrite of a session its writer owns, and a refused write of one another node owns, count nothing.
      await store.write('node-2', [record('d', 2), record('b', 5)]);
      expect(await store.countsByOwner()).toEqual(
        new Map([
          ['node-1', 1],
          ['node-2', 2],
        ]),
      );
    });

    it('keeps versions up to 2^53 - 1 and any JSON data exactly', async () => {
      const store = await storeWith();
      const max = Number.MAX_SAFE_INTEGER;
      const data = {
        s: 'ünï\u{1F600}"\\\n',
        n: 0.1 + 0.2,
        big: 2 ** 52 + 1,
        a: [[], {}, '', 0, false, null],
      };
      expect(await store.write('node-1', [record('k1', max - 1, data)])).toEqual(['ok']);
      expect(await store.write('node-1', [record('k1', max - 1)])).toEqual(['stale']);
      expect(await store.read('k1')).toMatchObject({ version: max - 1, data });
      expect(await store.write('node-1', [record('k1', max, 'plain')])).toEqual(['ok']);
      expect(await store.read('k1')).toMatchObject({ version: max, data: 'plain' });
    });

    it('reads many keys in the order asked, undefined where missing', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('a', 1), record('b', 2)]);
      const records = await store.readMany(['b', 'missing', 'a', 'b']);
      expect(records.map((found) => found?.version)).toEqual([2, undefined, 1, 2]);
      expect(records.map((found) => found?.key)).toEqual(['b', undefined, 'a', 'b']);
    });

    it('has an epoch that is stable per store and differs between stores', async () => {
      const first = await storeWith();
      const second = await storeWith();
      expect(first.epoch).toMatch(/.{8,}/);
      await first.write('node-1', [record('k1', 1)]);
      expect(first.epoch).toBe(first.epoch);
      expect(second.epoch).not.toBe(first.epoch);
    });

    it('counts writes, rejections, touches, removes and transfers', async () => {
      const store = await storeWith();
      await store.write('node-1', [record('a', 2), record('b', 1)]);
      await store.write('node-1', [record('a', 1)]);
      await store.write('node-2', [record('b', 2)]);
      await store.touch('node-1', ['a', 'b']);
      await store.transfer('a', 'node-1', 'node-2');
      await store.remove('node-1', ['b']);
      const expected = {
        records: 1,
        writeCalls: 3,
        writes: 2,
        staleRejected: 1,
        notOwnerRejected: 1,
        touchCalls: 1,
        touches: 2,
        removes: 1,
        transfers: 1,
      };
      // `stats()` is synchronous; a shared store (redis) counts `records` in the background
      // after a change, so it is polled. The same values are required: only the wait differs
      // (the memory store matches on the first call).
      await vi.waitFor(() => expect(store.stats()).toMatchObject(expected), { timeout: 5000 });
    });

    it('never holds a session whose last access is older than the idle timeout', async () => {
      const store = await storeWith(SHORT_IDLE_MS);
      const old = { key: 'old', version: 1, data: {}, lastAccessAt: Date.now() - 2 * SHORT_IDLE_MS };
      await store.write('node-1', [old, record('new', 1)]);
      expect(await store.read('old')).toBeUndefined();
      expect(await store.read('new')).toBeDefined();
    });

    it("keeps a session alive past the idle timeout through its owner's touches only", async () => {
      const store = await storeWith(SHORT_IDLE_MS);
      await store.write('node-1', [record('touched', 1), record('foreign', 1), record('idle', 1)]);
      // About 1.5 idle timeouts of real time, in steps well below one.
      for (let elapsed = 0; elapsed < SHORT_IDLE_MS * 1.5; elapsed += TOUCH_EVERY_MS) {
        await sleep(TOUCH_EVERY_MS);
        await store.touch('node-1', ['touched']);
        await store.touch('node-2', ['foreign']);
      }
      expect(await store.read('touched')).toBeDefined();
      expect(await store.read('foreign')).toBeUndefined();
      expect(await store.read('idle')).toBeUndefined();
    });

    it('lists and transfers no replica that expired', async () => {
      const store = await storeWith(SHORT_IDLE_MS);
      await store.write('node-1', [record('gone', 1)]);
      await sleep(SHORT_IDLE_MS * 1.5);
      await store.write('node-1', [record('kept', 1)]);
      expect(await store.keysOf('node-1')).toEqual(['kept']);
      expect(await store.transfer('gone', 'node-1', 'node-2')).toBeUndefined();
      expect(await store.keysOf('node-2')).toEqual([]);
      // Expired, then written again: a new replica at any version, owned by its new writer.
      expect(await store.write('node-2', [record('gone', 1)])).toEqual(['ok']);
      expect(await store.keysOf('node-2')).toEqual(['gone']);
      expect(await store.keysOf('node-1')).not.toContain('gone');
      expect(await store.countsByOwner()).toEqual(
        new Map([
          ['node-1', 1],
          ['node-2', 1],
        ]),
      );
    });

    it('rejects calls once closed', async () => {
      const { store, cleanup } = await create({ idleTimeoutMs: LONG_IDLE_MS });
      await store.close();
      await expect(store.read('k1')).rejects.toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE' });
      await cleanup();
    });
  });
}

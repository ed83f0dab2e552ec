import { afterEach, describe, expect, it, vi } from 'vitest';
import { TurnClock } from '../../src/session/turn-clock.js';

// Captured before any test fakes timers: a real turn of the event loop.
const realSetImmediate = setImmediate;
const nextTurn = (): Promise<void> => new Promise((resolve) => realSetImmediate(resolve));

/** Spins until the wall clock has moved on from `ms`. */
function waitForClockPast(ms: number): void {
  while (Date.now() <= ms) {
    // busy: the point is to stay inside one turn while real time passes
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe('TurnClock', () => {
  it('returns the wall clock on the first read of a turn', async () => {
    await nextTurn();
    const clock = new TurnClock();
    const before = Date.now();
    const now = clock.now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('does not read the wall clock again within a turn', () => {
    const clock = new TurnClock();
    const first = clock.now();
    waitForClockPast(first);
    expect(clock.now()).toBe(first);
  });

  it('reads a new time in a new turn', async () => {
    const clock = new TurnClock();
    const first = clock.now();
    waitForClockPast(first);
    await nextTurn();
    expect(clock.now()).toBeGreaterThan(first);
  });

  it('keeps one value per turn for every read of that turn', async () => {
    const clock = new TurnClock();
    const first = clock.now();
    waitForClockPast(first);
    await nextTurn();
    const second = clock.now();
    waitForClockPast(second);
    expect([clock.now(), clock.now()]).toEqual([second, second]);
  });

  it('reads a faked Date and refreshes on a real turn while setImmediate is faked too', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    await nextTurn();
    const clock = new TurnClock();
    expect(clock.now()).toBe(Date.now());
    // The refresh is queued on the real setImmediate, not on the fake one that only runs when
    // a test advances it (or never, once the fake timers are uninstalled).
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(5000);
    expect(clock.now()).toBe(Date.now() - 5000);
    await nextTurn();
    expect(clock.now()).toBe(Date.now());
  });

  it('reads the real clock again once fake timers are uninstalled mid-turn', async () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
    const clock = new TurnClock();
    clock.now();
    vi.useRealTimers();
    await nextTurn();
    const now = clock.now();
    expect(now).toBeLessThan(new Date('2030-01-01T00:00:00Z').getTime());
    expect(Math.abs(now - Date.now())).toBeLessThan(1000);
  });
});

import { describe, expect, it } from 'vitest';
import { RespawnBackoff, STABLE_UPTIME_MS } from '../../src/proxy/respawn-backoff.js';

describe('RespawnBackoff', () => {
  it.each([
    ['a first death', [0], 0],
    ['a second quick death', [0, 0], 100],
    ['a third quick death', [0, 0, 0], 200],
    ['the sixth in a row', [0, 0, 0, 0, 0, 0], 1600],
    ['a long crash loop (capped)', Array.from({ length: 20 }, () => 0), 5000],
    ['a death after a stable run', [0, 0, 0, STABLE_UPTIME_MS], 0],
    ['a quick death after a stable run', [0, 0, 0, STABLE_UPTIME_MS, 0], 0],
    ['two quick deaths after a stable run', [0, 0, 0, STABLE_UPTIME_MS, 0, 0], 100],
  ])('waits as long as it should before replacing %s', (_, uptimes, expectedMs) => {
    const backoff = new RespawnBackoff();
    let delayMs = -1;
    for (const uptimeMs of uptimes) delayMs = backoff.next(uptimeMs);
    expect(delayMs).toBe(expectedMs);
  });
});

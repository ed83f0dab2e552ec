import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/admin/index.js';

/** Every .ts file under src/. */
function sources(directory = 'src'): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

describe('EVENT_TYPES', () => {
  it('lists every event type the sources log, so the dashboard listens for each', () => {
    // `events.push('type', …)` and the distributed mode's `onEvent('type', …)`, the type
    // possibly on the next line.
    const pushed = new Set<string>();
    for (const file of sources()) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/(?:events\.push|onEvent)\(\s*'([^']+)'/g)) pushed.add(match[1]!);
    }
    expect(pushed.size).toBeGreaterThan(10);
    for (const type of pushed) expect(EVENT_TYPES, type).toContain(type);
  });

  it('lists the moves the event log reports, with their failure', () => {
    for (const type of [
      'failover:start',
      'failover:end',
      'failover:error',
      'evacuate:start',
      'evacuate:end',
      'rebalance:start',
      'rebalance:end',
    ]) {
      expect(EVENT_TYPES).toContain(type);
    }
  });
});

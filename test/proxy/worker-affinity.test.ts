import { Agent } from 'node:http';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { testRegistry } from '../helpers/affinity.js';
import type { WorkerMessage } from '../../src/proxy/ipc.js';
import { WorkerAffinity } from '../../src/proxy/worker-affinity.js';

const agent = new Agent();
afterEach(() => {
  agent.destroy();
  vi.useRealTimers();
});

function setup() {
  const registry = testRegistry(['a', 'b'], agent);
  const sent: WorkerMessage[] = [];
  return { registry, sent, affinity: new WorkerAffinity((message) => sent.push(message), registry) };
}

describe('WorkerAffinity', () => {
  it('reports used sessions in one batch per flush window, each once with its highest version', () => {
    vi.useFakeTimers();
    const { affinity, sent } = setup();
    affinity.record('k1', 'a', true, 2);
    affinity.record('k1', 'a', false, 3);
    affinity.record('k2', 'b', false, 1);
    expect(sent).toEqual([]);
    vi.advanceTimersByTime(25);
    expect(sent).toEqual([{ t: 'used', entries: ['k1', 'a', 3, 'k2', 'b', 1] }]);
  });

  it('sends a full batch at once without waiting for the timer', () => {
    const { affinity, sent } = setup();
    for (let i = 0; i < 1000; i++) affinity.record(`k${i}`, 'a', false, 1);
    expect(sent).toHaveLength(1);
    expect((sent[0] as { entries: unknown[] }).entries).toHaveLength(3000);
  });

  it('counts a new session on its node locally until the control plane’s snapshot arrives', () => {
    const { affinity, registry } = setup();
    affinity.record('k1', 'a', true, 1);
    affinity.record('k2', 'a', false, 1);
    expect(registry.get('a')?.sessions).toBe(1);
    affinity.flush();
  });

  it('mirrors moved sessions pushed by the control plane', () => {
    const { affinity } = setup();
    expect(affinity.hasMoved).toBe(false);
    affinity.applyMoved([
      ['k1', 'b'],
      ['k2', 'a'],
    ]);
    expect(affinity.movedNodeOf('k1')).toBe('b');
    affinity.applyMoved([
      ['k1', null],
      ['k2', null],
    ]);
    expect(affinity.hasMoved).toBe(false);
  });
});

import type { MoveReason } from '../failover/index.js';

/** Moves the event log reports, each as `<kind>:start` / `<kind>:end` (a request's move is not logged). */
const MOVE_KINDS: ReadonlyArray<Exclude<MoveReason, 'request' | 'down'> | 'failover'> = [
  'failover',
  'evacuate',
  'rebalance',
];

/**
 * Every `type` the EventLog records, so every named SSE event the dashboard must listen for
 * (an EventSource delivers a named event only to a listener of that name). The page gets this
 * list from the server rather than a copy of its own, and a test checks every type the sources
 * push is in it.
 */
export const EVENT_TYPES: readonly string[] = [
  'node:down',
  'node:up',
  'node:drain',
  'node:undrain',
  ...MOVE_KINDS.flatMap((kind) => [`${kind}:start`, `${kind}:end`]),
  'failover:error',
  'config:reload',
  'test-sessions:start',
  'test-sessions:end',
  'sweep',
  'redis:down',
  'redis:up',
  'redis:resync',
];

export { buildAdminServer, type AdminServerOptions } from './admin-server.js';
export type { AdminControl, AdminNodeState, AdminState, SweepReport } from './admin-control.js';
export { isLoopbackHost, isTokenValid } from './admin-auth.js';
export { EventLog, type LoggedEvent } from './event-log.js';
export { NodeTraffic, type TrafficSummary } from './node-traffic.js';
export { createTestSessions, MAX_TEST_SESSIONS, type TestSessionsReport } from './test-sessions.js';
export { ReplicaCounter } from './replica-counter.js';
export { NodeMetrics, type NodeStoreReport } from './node-metrics.js';
export { EVENT_TYPES } from './event-types.js';

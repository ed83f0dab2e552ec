export { AffinityTable, MOVING, type AffinityRecord } from './affinity-table.js';
export { SessionCookie } from './session-cookie.js';
export { SessionIdCodec, SESSION_ID_LENGTH, type ParsedSessionId } from './session-id.js';
export type { AffinityView } from './affinity-view.js';

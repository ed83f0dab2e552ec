export { SharedAffinity } from './shared-affinity.js';
export { RedisStatus, redactUrl, type RedisState } from './redis-status.js';

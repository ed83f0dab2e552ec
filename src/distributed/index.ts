export { SharedAffinity } from './shared-affinity.js';
export { RedisStatus, redactUrl, type RedisState } from './redis-status.js';
export { DistributedMode, type DistributedModeOptions } from './distributed-mode.js';

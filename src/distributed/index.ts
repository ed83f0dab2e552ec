export { SharedAffinity } from './shared-affinity.js';
export {
  RedisStatus,
  redactUrl,
  redisLocationOf,
  redisUnreachableError,
  type RedisState,
} from './redis-status.js';
export { DistributedMode, type DistributedModeOptions } from './distributed-mode.js';

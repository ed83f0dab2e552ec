export { loadConfig, parseConfig } from './load.js';
export { parseDuration, formatDuration } from './duration.js';
export { configSchema, isRedisSocketPath, policies, NODE_ID_PATTERN } from './schema.js';
export type { Config, ConfigInput, NodeConfig, BalancingPolicyName } from './schema.js';

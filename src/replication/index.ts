export type {
  JsonValue,
  ReplicaRecord,
  ReplicaStore,
  ReplicaStoreStats,
  ReplicaWrite,
  WriteOutcome,
} from './replica-store.js';
export { DeferredReplicaStore } from './deferred-replica-store.js';
export { MemoryReplicaStore, type MemoryReplicaStoreOptions } from './memory-replica-store.js';
export {
  RedisReplicaStore,
  type RedisConnection,
  type RedisReplicaStoreOptions,
} from './redis-replica-store.js';
export { redisConnectionOf, type RedisSettings } from './redis-connection.js';
export { buildReplicationServer, type ReplicationServerOptions } from './replication-server.js';
export {
  Replicator,
  type ReplicatedSession,
  type ReplicatorOptions,
  type ReplicatorBaseOptions,
  type HttpReplicatorOptions,
  type TransportReplicatorOptions,
  type ReplicatorStats,
  type SeedResult,
} from './replicator.js';
export {
  HttpReplicaTransport,
  StoreReplicaTransport,
  type ReplicaTransport,
  type SerialisedRecord,
  type TransportWriteResult,
} from './replica-transport.js';
export { ChannelReplicaTransport, type ChannelReplicaTransportOptions } from './replica-channel-transport.js';
export {
  attachReplicaChannel,
  type ReplicaChannel,
  type ReplicaChannelOptions,
} from './replica-channel-server.js';
export { SessionMovedError } from '../errors.js';
export { REPLICA_PATH_PREFIX, REPLICA_ROUTES } from './replication-protocol.js';
export { replicaEndpointOf } from './replica-endpoint.js';
export { readSession, replicateSessions } from './session-replication.js';
export { SessionRestorer, type SessionRestorerOptions } from './session-restorer.js';

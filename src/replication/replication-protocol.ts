import { NODE_ID_PATTERN as CONFIG_NODE_ID_PATTERN } from '../config/index.js';
import { INTERNAL_PATH_PREFIX } from '../protocol.js';
import type { ReplicaRecord, WriteOutcome } from './replica-store.js';

/*
 * The wire protocol between a node's Replicator and the proxy's replication server, named
 * in one place so both sides agree on routes, shapes and limits.
 */

/** Prefix of the replication routes (under the internal prefix the proxy never forwards). */
export const REPLICA_PATH_PREFIX = `${INTERNAL_PATH_PREFIX}replica/`;

/** Routes, relative to the server's base URL. */
export const REPLICA_ROUTES = {
  write: `${REPLICA_PATH_PREFIX}write`,
  touch: `${REPLICA_PATH_PREFIX}touch`,
  remove: `${REPLICA_PATH_PREFIX}remove`,
  epoch: `${REPLICA_PATH_PREFIX}epoch`,
  /** `POST {"node","key"}`: one session's replica (a node restores a session it lost by restarting). */
  read: `${REPLICA_PATH_PREFIX}read`,
  /** `GET` with `Upgrade: stickylb-replica/1`: the framed channel (replica-frames.ts). */
  channel: `${REPLICA_PATH_PREFIX}channel`,
} as const;

/** Session store keys: the base64url random part of a session id. */
export const KEY_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** Node ids, as `nodes[].id` in the config schema. */
export const NODE_ID_PATTERN = CONFIG_NODE_ID_PATTERN.source;

/** Most records in one `write` request (a node splits bigger batches). */
export const MAX_RECORDS_PER_REQUEST = 1000;
/** Most keys in one `touch` or `remove` request. */
export const MAX_KEYS_PER_REQUEST = 10_000;
/** Largest request body the server accepts; a node splits batches below it. */
export const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** `POST write` body. */
export interface WriteRequest {
  node: string;
  records: Array<{ key: string; version: number; lastAccessAt: number; data: unknown }>;
}

/** `POST write` answer: one outcome per record, in order. */
export interface WriteResponse {
  epoch: string;
  outcomes: WriteOutcome[];
}

/** `POST touch` and `POST remove` body. */
export interface KeysRequest {
  node: string;
  keys: string[];
}

/** `POST read` body: the reading node and the session's key. */
export interface ReadRequest {
  node: string;
  key: string;
}

/** `POST read` answer: the replica, or `null` when the store holds none. */
export interface ReadResponse {
  epoch: string;
  record: ReplicaRecord | null;
}

/** Every answer carries the store's epoch, so a node notices a restarted store on any call. */
export interface EpochResponse {
  epoch: string;
}

import { BadRequestError } from '../errors.js';
import type { ReplicaWrite } from './replica-store.js';
import {
  KEY_PATTERN,
  MAX_KEYS_PER_REQUEST,
  MAX_RECORDS_PER_REQUEST,
  NODE_ID_PATTERN,
  type KeysRequest,
  type ReadRequest,
} from './replication-protocol.js';

/*
 * The checks the HTTP routes' JSON schemas make, by hand, for the framed channel's payloads:
 * the same bodies must pass or fail the same way whichever way they travel. Hand-written
 * because the channel exists to skip per-request framework work (see replica-channel-server.ts).
 */

const KEY_REGEXP = new RegExp(KEY_PATTERN);
const NODE_ID_REGEXP = new RegExp(NODE_ID_PATTERN);
const RECORD_FIELDS = 4;

/** A `write` body after its checks: the writer and its records, as the store takes them. */
export interface CheckedWrite {
  node: string;
  records: ReplicaWrite[];
}

/** Parses and checks a `write` body (`{"node","records":[{"key","version","lastAccessAt","data"}]}`). */
export function parseWritePayload(payload: Buffer): CheckedWrite {
  const body = parseObject(payload);
  checkFields(body, 'node', 'records');
  const node = checkNode(body.node);
  const records = body.records;
  if (!Array.isArray(records)) throw new BadRequestError('body/records must be array');
  if (records.length > MAX_RECORDS_PER_REQUEST) {
    throw new BadRequestError(`body/records must NOT have more than ${MAX_RECORDS_PER_REQUEST} items`);
  }
  for (let i = 0; i < records.length; i++) checkRecord(records[i], i);
  return { node, records: records as ReplicaWrite[] };
}

/** Parses and checks a `touch` or `remove` body (`{"node","keys":[…]}`). */
export function parseKeysPayload(payload: Buffer): KeysRequest {
  const body = parseObject(payload);
  checkFields(body, 'node', 'keys');
  const node = checkNode(body.node);
  const keys = body.keys;
  if (!Array.isArray(keys)) throw new BadRequestError('body/keys must be array');
  if (keys.length > MAX_KEYS_PER_REQUEST) {
    throw new BadRequestError(`body/keys must NOT have more than ${MAX_KEYS_PER_REQUEST} items`);
  }
  for (let i = 0; i < keys.length; i++) {
    const key: unknown = keys[i];
    if (typeof key !== 'string' || !KEY_REGEXP.test(key)) {
      throw new BadRequestError(`body/keys/${i} must match pattern "${KEY_PATTERN}"`);
    }
  }
  return { node, keys: keys as string[] };
}

/** Parses and checks a `read` body (`{"node","key"}`). */
export function parseReadPayload(payload: Buffer): ReadRequest {
  const body = parseObject(payload);
  checkFields(body, 'node', 'key');
  const node = checkNode(body.node);
  const key = body.key;
  if (typeof key !== 'string' || !KEY_REGEXP.test(key)) {
    throw new BadRequestError(`body/key must match pattern "${KEY_PATTERN}"`);
  }
  return { node, key };
}

function parseObject(payload: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new BadRequestError('body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequestError('body must be object');
  }
  return body as Record<string, unknown>;
}

/** Exactly these two fields (no additional properties, none missing). */
function checkFields(body: Record<string, unknown>, first: string, second: string): void {
  let count = 0;
  for (const field in body) {
    if (field !== first && field !== second)
      throw new BadRequestError(`body must NOT have additional properties`);
    count++;
  }
  // JSON.parse makes "__proto__" an own property, which `for…in` lists above; a missing field is caught here.
  if (count !== 2) throw new BadRequestError(`body must have required properties ${first}, ${second}`);
}

function checkNode(node: unknown): string {
  if (typeof node !== 'string' || !NODE_ID_REGEXP.test(node)) {
    throw new BadRequestError(`body/node must match pattern "${NODE_ID_PATTERN}"`);
  }
  return node;
}

function checkRecord(record: unknown, index: number): void {
  const at = `body/records/${index}`;
  if (record === null || typeof record !== 'object' || Array.isArray(record)) {
    throw new BadRequestError(`${at} must be object`);
  }
  const fields = record as Record<string, unknown>;
  let count = 0;
  for (const field in fields) {
    if (field !== 'key' && field !== 'version' && field !== 'lastAccessAt' && field !== 'data') {
      throw new BadRequestError(`${at} must NOT have additional properties`);
    }
    count++;
  }
  if (count !== RECORD_FIELDS) {
    throw new BadRequestError(`${at} must have required properties key, version, lastAccessAt, data`);
  }
  const { key, version, lastAccessAt } = fields;
  if (typeof key !== 'string' || !KEY_REGEXP.test(key)) {
    throw new BadRequestError(`${at}/key must match pattern "${KEY_PATTERN}"`);
  }
  if (!Number.isSafeInteger(version) || (version as number) < 1) {
    throw new BadRequestError(`${at}/version must be an integer from 1 to ${Number.MAX_SAFE_INTEGER}`);
  }
  if (!Number.isSafeInteger(lastAccessAt) || (lastAccessAt as number) < 0) {
    throw new BadRequestError(`${at}/lastAccessAt must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
}

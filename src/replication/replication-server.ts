import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { errorAnswer, NotFoundError, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';
import { SECRET_HEADER } from '../protocol.js';
import { attachReplicaChannel, type ReplicaChannelOptions } from './replica-channel-server.js';
import type { ReplicaStore, WriteOutcome } from './replica-store.js';
import {
  KEY_PATTERN,
  MAX_BODY_BYTES,
  MAX_KEYS_PER_REQUEST,
  MAX_RECORDS_PER_REQUEST,
  NODE_ID_PATTERN,
  REPLICA_ROUTES,
  type EpochResponse,
  type KeysRequest,
  type ReadRequest,
  type ReadResponse,
  type WriteRequest,
  type WriteResponse,
} from './replication-protocol.js';

/** Options of `buildReplicationServer`. */
export interface ReplicationServerOptions {
  store: ReplicaStore;
  /** Shared secret nodes send in SECRET_HEADER (`replication.secret`). */
  secret: string;
  logger: Logger;
  /** Limits of the framed channel (defaults suit production; tests shorten the timeouts). */
  channel?: Pick<
    ReplicaChannelOptions,
    'maxFrameBytes' | 'frameTimeoutMs' | 'idleTimeoutMs' | 'maxUnreadBytes' | 'maxUnreadRecordBytes'
  >;
}

/** Longer than the Replicator agent's 60 s idle-socket timeout, so the node closes idle sockets first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

const node = { type: 'string', pattern: NODE_ID_PATTERN } as const;
const keys = {
  type: 'array',
  maxItems: MAX_KEYS_PER_REQUEST,
  items: { type: 'string', pattern: KEY_PATTERN },
} as const;

const writeBody = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'records'],
  properties: {
    node,
    records: {
      type: 'array',
      maxItems: MAX_RECORDS_PER_REQUEST,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'version', 'lastAccessAt', 'data'],
        properties: {
          key: { type: 'string', pattern: KEY_PATTERN },
          version: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER },
          lastAccessAt: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
          // Any JSON: the session's data, stored as sent.
          data: {},
        },
      },
    },
  },
} as const;

const keysBody = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'keys'],
  properties: { node, keys },
} as const;

const readBody = {
  type: 'object',
  additionalProperties: false,
  required: ['node', 'key'],
  properties: { node, key: { type: 'string', pattern: KEY_PATTERN } },
} as const;

const epochReply = {
  200: { type: 'object', required: ['epoch'], properties: { epoch: { type: 'string' } } },
} as const;

const writeReply = {
  200: {
    type: 'object',
    required: ['epoch', 'outcomes'],
    properties: {
      epoch: { type: 'string' },
      outcomes: { type: 'array', items: { type: 'string', enum: ['ok', 'stale', 'not-owner'] } },
    },
  },
} as const;

/** Constant-time secret check: both sides hashed, so neither length nor prefix leaks through timing. */
function createSecretCheck(secret: string): (given: string | string[] | undefined) => boolean {
  const expected = createHash('sha256').update(secret).digest();
  return (given) =>
    typeof given === 'string' && timingSafeEqual(createHash('sha256').update(given).digest(), expected);
}

/**
 * The proxy-side HTTP endpoint nodes replicate to (`POST write | touch | remove | read`,
 * `GET epoch`, under `/_stickylb/replica/`), and on the same listener the framed channel
 * (`GET channel` with an Upgrade, replica-channel-server.ts) that nodes of the `memory`
 * store use. Every route and the upgrade require the shared secret; bodies are checked
 * (400 JSON otherwise). No line is logged per request: only unexpected failures, once each.
 * Ready to `listen` where the caller decides.
 */
export async function buildReplicationServer(options: ReplicationServerOptions): Promise<FastifyInstance> {
  const { store, logger } = options;
  const isSecretValid = createSecretCheck(options.secret);
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps FastifyInstance's default generics.
    loggerInstance: logger.child({ component: 'replication' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // No type coercion ("2" is not a version) and no silent stripping of unknown fields.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false } },
  });

  // onRequest runs before the body is read: an unauthenticated client cannot make us parse 8 MiB.
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (!isSecretValid(request.headers[SECRET_HEADER])) throw new UnauthorizedError();
  });

  const channel = attachReplicaChannel(app.server, {
    store,
    isSecretValid,
    logger: logger.child({ component: 'replication-channel' }),
    ...options.channel,
  });
  // Switched connections are no longer the HTTP server's: close them, or `close()` waits on them forever.
  app.addHook('preClose', (done) => {
    channel.closeAll();
    done();
  });

  app.setErrorHandler((error: FastifyError | Error, _request: FastifyRequest, reply: FastifyReply) => {
    const { status, body, unexpected } = errorAnswer(error);
    if (unexpected) logger.error({ err: error }, 'replication request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(new NotFoundError().toJSON()));

  app.post<{ Body: WriteRequest; Reply: WriteResponse }>(
    REPLICA_ROUTES.write,
    { schema: { body: writeBody, response: writeReply } },
    async (request) => {
      const { node: writer, records } = request.body;
      // The schema checked each record's shape; `data` is whatever JSON the node sent.
      const outcomes: WriteOutcome[] = await store.write(
        writer,
        records as Parameters<ReplicaStore['write']>[1],
      );
      return { epoch: store.epoch, outcomes };
    },
  );

  app.post<{ Body: KeysRequest; Reply: EpochResponse }>(
    REPLICA_ROUTES.touch,
    { schema: { body: keysBody, response: epochReply } },
    async (request) => {
      await store.touch(request.body.node, request.body.keys);
      return { epoch: store.epoch };
    },
  );

  app.post<{ Body: KeysRequest; Reply: EpochResponse }>(
    REPLICA_ROUTES.remove,
    { schema: { body: keysBody, response: epochReply } },
    async (request) => {
      await store.remove(request.body.node, request.body.keys);
      return { epoch: store.epoch };
    },
  );

  // No response schema: the record's `data` is whatever JSON the node wrote, sent back as stored.
  app.post<{ Body: ReadRequest; Reply: ReadResponse }>(
    REPLICA_ROUTES.read,
    { schema: { body: readBody } },
    async (request) => ({ epoch: store.epoch, record: (await store.read(request.body.key)) ?? null }),
  );

  app.get<{ Reply: EpochResponse }>(REPLICA_ROUTES.epoch, { schema: { response: epochReply } }, async () => ({
    epoch: store.epoch,
  }));

  return app;
}

import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { BadRequestError, NotFoundError, StickyError, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';
import { SECRET_HEADER } from '../protocol.js';
import {
  CHANNEL_PROTOCOL,
  FRAME_HEADER_BYTES,
  FrameError,
  FrameParser,
  FrameType,
  encodeAck,
  encodeFrame,
  type Frame,
} from './replica-frames.js';
import { ChannelAnswers } from './replica-channel-answers.js';
import { parseKeysPayload, parseReadPayload, parseWritePayload } from './replica-payload.js';
import type { ReplicaStore } from './replica-store.js';
import { MAX_BODY_BYTES, REPLICA_ROUTES } from './replication-protocol.js';

/** Options of `attachReplicaChannel`; durations in milliseconds. */
export interface ReplicaChannelOptions {
  store: ReplicaStore;
  /** The replication server's constant-time check of SECRET_HEADER. */
  isSecretValid: (given: string | string[] | undefined) => boolean;
  logger: Logger;
  /** Largest frame accepted (default: the HTTP routes' body limit plus the frame header). */
  maxFrameBytes?: number;
  /** Time a started frame may take to arrive in full (default 10 000): a stalled peer is cut off. */
  frameTimeoutMs?: number;
  /** A channel with no traffic for this long is closed (default 65 000; nodes check the epoch every second). */
  idleTimeoutMs?: number;
  /** Most bytes of answers a peer may leave unread before it is cut off (default 1 MiB), read answers aside. */
  maxUnreadBytes?: number;
  /** The same for read answers, each a whole session (default 4 of the largest: ~32 MiB). */
  maxUnreadRecordBytes?: number;
}

/** What `attachReplicaChannel` returns. */
export interface ReplicaChannel {
  /** Open channels now. */
  readonly connections: number;
  /** Closes every open channel and refuses new ones (call it when the server closes). */
  closeAll(): void;
}

const REQUEST_TYPES = new Set<number>([
  FrameType.write,
  FrameType.touch,
  FrameType.remove,
  FrameType.epoch,
  FrameType.read,
]);
const isRequestType = (type: number): boolean => REQUEST_TYPES.has(type);

/**
 * Serves the framed replication channel on the replication listener: a node sends
 * `GET /_stickylb/replica/channel` with `Upgrade: stickylb-replica/1` and the shared secret,
 * and once switched sends frames on that connection (replica-frames.ts), answered in order.
 *
 * Why: a sync write paid one loopback HTTP request per write (Node's http client on the node,
 * Fastify routing, schema and serialiser here), most of sync mode's extra CPU and latency.
 * The channel keeps the same bodies, the same checks (replica-payload.ts) and the same
 * secret, and drops the per-request HTTP work. The HTTP routes stay for every other client.
 */
export function attachReplicaChannel(server: Server, options: ReplicaChannelOptions): ReplicaChannel {
  const sockets = new Set<Socket>();
  const logger = options.logger;
  let isClosing = false;
  server.on('upgrade', (request: IncomingMessage, socket: Socket, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // Closing: a channel opened now would hold the server's close open forever.
    if (isClosing) {
      socket.destroy();
      return;
    }
    const refusal = refusalOf(request, options.isSecretValid);
    if (refusal !== undefined) {
      const body = JSON.stringify(refusal.toJSON());
      socket.end(
        `HTTP/1.1 ${refusal.statusCode} ${refusal.statusCode === 401 ? 'Unauthorized' : 'Refused'}\r\n` +
          `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `connection: close\r\n\r\n${body}`,
      );
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${CHANNEL_PROTOCOL}\r\n\r\n`,
    );
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    serveChannel(socket, head, options);
  });
  return {
    get connections() {
      return sockets.size;
    },
    closeAll() {
      isClosing = true;
      for (const socket of sockets) socket.destroy();
      if (sockets.size > 0) logger.debug({ channels: sockets.size }, 'replication channels closed');
    },
  };
}

/** Why an upgrade request is refused (secret first, as the HTTP routes check it), or undefined. */
function refusalOf(
  request: IncomingMessage,
  isSecretValid: ReplicaChannelOptions['isSecretValid'],
): StickyError | undefined {
  if (!isSecretValid(request.headers[SECRET_HEADER])) return new UnauthorizedError();
  if (request.url !== REPLICA_ROUTES.channel) return new NotFoundError();
  if (request.method !== 'GET' || request.headers.upgrade?.toLowerCase() !== CHANNEL_PROTOCOL) {
    return new BadRequestError(`the replication channel needs GET with "upgrade: ${CHANNEL_PROTOCOL}"`);
  }
  return undefined;
}

/** Reads, checks and answers the frames of one switched connection until it closes. */
function serveChannel(socket: Socket, head: Buffer, options: ReplicaChannelOptions): void {
  const { store } = options;
  const logger = options.logger;
  const frameTimeoutMs = options.frameTimeoutMs ?? 10_000;
  const maxUnreadBytes = options.maxUnreadBytes ?? 1024 * 1024;
  const maxUnreadRecordBytes =
    options.maxUnreadRecordBytes ?? 4 * (MAX_BODY_BYTES + FRAME_HEADER_BYTES + 256);
  const parser = new FrameParser({
    maxFrameBytes: options.maxFrameBytes ?? MAX_BODY_BYTES + FRAME_HEADER_BYTES,
    isKnownType: isRequestType,
  });
  let frameTimer: NodeJS.Timeout | undefined;
  /** Set on bad input: later input is discarded, the answers owed are sent, then the connection ends. */
  let isEnding = false;
  const logClosed = (reason: string): void => {
    logger.warn(
      { remote: `${socket.remoteAddress}:${socket.remotePort}`, reason },
      'replication channel closed',
    );
  };
  const cutOff = (reason: string): void => {
    if (socket.destroyed) return;
    logClosed(reason);
    socket.destroy();
  };
  // Read answers carry a whole session (up to the body limit, 8 MiB): they are counted apart,
  // under a bound of their own, so one big session restored is not taken for a peer that
  // stopped reading. (A write's callback runs once the kernel took its bytes.)
  let recordBytesUnread = 0;
  const send = (frame: Buffer): void => {
    if (socket.destroyed) return;
    if (frame[4] === FrameType.record) {
      recordBytesUnread += frame.length;
      socket.write(frame, () => (recordBytesUnread -= frame.length));
    } else {
      socket.write(frame);
    }
    if (
      socket.writableLength - recordBytesUnread > maxUnreadBytes ||
      recordBytesUnread > maxUnreadRecordBytes
    ) {
      cutOff('peer does not read its answers');
    }
  };
  const errorFrameOf = (id: number, error: unknown): Buffer => {
    const known = error instanceof StickyError;
    if (!known) logger.error({ err: error }, 'replication request failed');
    const body = known ? error.toJSON() : { error: 'SLB_INTERNAL', message: 'internal error' };
    return encodeFrame(FrameType.error, id, JSON.stringify(body));
  };
  const answers = new ChannelAnswers({ send, epochOf: () => store.epoch, errorFrameOf });

  const onFrame = ({ type, id, payload }: Frame): void => {
    // Cut off mid-chunk: stop reading the rest of it.
    if (socket.destroyed) throw new FrameError('connection closed');
    try {
      if (type === FrameType.write) {
        const { node, records } = parseWritePayload(payload);
        answers.answerWrite(id, store.write(node, records));
      } else if (type === FrameType.touch) {
        const { node, keys } = parseKeysPayload(payload);
        answers.answerDone(id, store.touch(node, keys));
      } else if (type === FrameType.remove) {
        const { node, keys } = parseKeysPayload(payload);
        answers.answerDone(id, store.remove(node, keys));
      } else if (type === FrameType.read) {
        answers.answerRead(id, store.read(parseReadPayload(payload).key));
      } else {
        answers.answerNow(encodeAck(id, store.epoch));
      }
    } catch (error) {
      // A well-formed frame with a bad body: refused like a 400, the connection stays usable.
      answers.answerNow(errorFrameOf(id, error));
    }
  };

  const endAfterAnswers = (reason: string): void => {
    logClosed(reason);
    isEnding = true;
    clearTimeout(frameTimer);
    // What was applied before the bad input is acknowledged (the peer may then drop those
    // writes from its retry), and `end` sends those answers before closing, unlike `destroy`.
    answers.whenSent(() => socket.end());
  };

  const onData = (chunk: Buffer): void => {
    // Ending: later input is discarded (the connection closes once the owed answers are out).
    if (isEnding) return;
    let completed: number;
    try {
      completed = parser.push(chunk, onFrame);
    } catch (error) {
      if (socket.destroyed) return;
      endAfterAnswers(error instanceof FrameError ? error.message : `unreadable input: ${String(error)}`);
      return;
    }
    // The timer measures how long the frame now partial has waited: reads that always end
    // mid-frame (a proxy far behind reads full buffers) are fine while frames keep completing.
    if (!parser.hasPartialFrame) {
      clearTimeout(frameTimer);
      frameTimer = undefined;
    } else if (frameTimer === undefined) {
      frameTimer = setTimeout(
        () => cutOff(`frame not completed within ${frameTimeoutMs} ms`),
        frameTimeoutMs,
      );
      frameTimer.unref();
    } else if (completed > 0) {
      frameTimer.refresh();
    }
  };

  socket.setNoDelay(true);
  socket.setTimeout(options.idleTimeoutMs ?? 65_000, () => cutOff('idle'));
  socket.on('data', onData);
  // The HTTP server's sockets allow half-open connections and nothing ends ours after the
  // switch: a node killed or restarted (its kernel sends a FIN) left its channel open here
  // until the idle timeout, 65 s, one more per restart. The answers owed go out first.
  socket.once('end', () => answers.whenSent(() => socket.end()));
  socket.once('close', () => clearTimeout(frameTimer));
  if (head.length > 0) onData(head);
}

import type { Socket } from 'node:net';
import { backoffMs } from '../backoff.js';
import { ReplicaStoreError } from '../errors.js';
import { SECRET_HEADER } from '../protocol.js';
import { openReplicaChannel } from './replica-channel-handshake.js';
import {
  CHANNEL_PROTOCOL,
  FrameParser,
  FrameType,
  OUTCOME_CODES,
  encodeFrame,
  type Frame,
} from './replica-frames.js';
import type { WriteOutcome } from './replica-store.js';
import {
  checkedRecord,
  type ReplicaTransport,
  type SerialisedRecord,
  type TransportReadResult,
  type TransportWriteResult,
} from './replica-transport.js';
import { MAX_BODY_BYTES, REPLICA_ROUTES } from './replication-protocol.js';

/** Options of a ChannelReplicaTransport. */
export interface ChannelReplicaTransportOptions {
  /** Base URL of the replication server, `http://host:port` (a path prefix is kept). */
  endpoint: string;
  /** `replication.secret`, sent once per connection in SECRET_HEADER. */
  secret: string;
  /** Time a call may take (and a connection attempt), from sending to its answer. */
  timeoutMs: number;
}

/** An answer: the epoch and, for a write, one outcome per record; for a read, the record's JSON ('' for none). */
interface Ack {
  epoch: string;
  outcomes: WriteOutcome[];
  recordJson?: string;
}

interface InFlight {
  readonly id: number;
  /** The frame as sent, kept to send it once more after a connection the store closed. */
  readonly frame: Buffer;
  resolve(ack: Ack): void;
  reject(error: Error): void;
  sentAtMs: number;
  isRetry: boolean;
}

/** Largest answer frame accepted: a read's record, at most what a write may carry. */
const MAX_ANSWER_FRAME_BYTES = MAX_BODY_BYTES + 1024;
/**
 * Reconnect backoff after failed attempts: none after the first (a restarted store is
 * reached by the next call), then 25 ms doubling up to 500 ms; calls fail at once meanwhile.
 */
const FIRST_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 500;
const isAnswerType = (type: number): boolean =>
  type === FrameType.ack || type === FrameType.error || type === FrameType.record;

/**
 * The `memory` store's transport on the framed channel: one persistent connection to the
 * proxy's replication listener, switched by an HTTP Upgrade (same port and secret as the
 * HTTP routes), carrying length-prefixed frames with pipelined answers. Calls are answered
 * in the order sent (`isOrdered`), so a Replicator may keep many in flight.
 *
 * Failures look exactly like an unreachable store over HTTP: a call unanswered after
 * `timeoutMs` fails (with every other call on that connection), and a call in flight when the
 * store or the network closes the connection is sent once more on a new one, then fails if
 * that fails; nothing is reported acknowledged without an answer. The next call reconnects;
 * after two failed attempts in a row, calls fail at once until a backoff (25 ms doubling to
 * 500 ms) has passed, so a stopped store is not hammered.
 */
export class ChannelReplicaTransport implements ReplicaTransport {
  readonly isOrdered = true;
  readonly #host: string;
  readonly #port: number;
  readonly #handshake: string;
  readonly #timeoutMs: number;
  readonly #inFlight = new Map<number, InFlight>();
  #socket: Socket | undefined;
  #connecting: Promise<Socket> | undefined;
  #timeoutTimer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #failedAttempts = 0;
  #retryAtMs = 0;
  #lastFailure: ReplicaStoreError | undefined;
  #isClosed = false;

  constructor(options: ChannelReplicaTransportOptions) {
    const url = new URL(options.endpoint);
    if (url.protocol !== 'http:') {
      throw new RangeError(`replication endpoint must be http://, got ${url.protocol}`);
    }
    if (/[\r\n]/.test(options.secret))
      throw new RangeError('replication secret must not contain line breaks');
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = url.port === '' ? 80 : Number(url.port);
    this.#timeoutMs = options.timeoutMs;
    const path = url.pathname.replace(/\/+$/, '') + REPLICA_ROUTES.channel;
    this.#handshake =
      `GET ${path} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: Upgrade\r\n` +
      `upgrade: ${CHANNEL_PROTOCOL}\r\n${SECRET_HEADER}: ${options.secret}\r\n\r\n`;
  }

  async write(node: string, records: readonly SerialisedRecord[]): Promise<TransportWriteResult> {
    let body = `{"node":"${node}","records":[`;
    for (let i = 0; i < records.length; i++)
      body += (i === 0 ? '' : ',') + (records[i] as SerialisedRecord).json;
    const ack = await this.#call(FrameType.write, `${body}]}`);
    if (ack.outcomes.length !== records.length) {
      throw new ReplicaStoreError('replica store answered a write without one outcome per record');
    }
    return ack;
  }

  async touch(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    return { epoch: (await this.#call(FrameType.touch, JSON.stringify({ node, keys }))).epoch };
  }

  async remove(node: string, keys: readonly string[]): Promise<{ epoch: unknown }> {
    return { epoch: (await this.#call(FrameType.remove, JSON.stringify({ node, keys }))).epoch };
  }

  async read(node: string, key: string): Promise<TransportReadResult> {
    const ack = await this.#call(FrameType.read, JSON.stringify({ node, key }));
    if (ack.recordJson === undefined)
      throw new ReplicaStoreError('replica store answered a read with an ack');
    let record: unknown;
    try {
      record = ack.recordJson === '' ? undefined : JSON.parse(ack.recordJson);
    } catch (error) {
      throw toStoreError('replica store answered a read with unreadable JSON', error);
    }
    return { epoch: ack.epoch, record: checkedRecord(record) };
  }

  async epoch(): Promise<unknown> {
    return (await this.#call(FrameType.epoch, '')).epoch;
  }

  /** Closes the connection; calls in flight and later calls reject with ReplicaStoreError. */
  close(): void {
    this.#isClosed = true;
    this.#socket?.destroy();
  }

  #call(type: number, payload: string): Promise<Ack> {
    if (this.#isClosed) return Promise.reject(new ReplicaStoreError('replication channel is closed'));
    const socket = this.#socket;
    if (socket !== undefined) return this.#send(socket, type, payload);
    return this.#connect().then((connected) => this.#send(connected, type, payload));
  }

  #send(socket: Socket, type: number, payload: string): Promise<Ack> {
    const id = this.#nextId;
    this.#nextId = id === 0xffff_ffff ? 1 : id + 1;
    const frame = encodeFrame(type, id, payload);
    return new Promise<Ack>((resolve, reject) => {
      this.#inFlight.set(id, { id, frame, resolve, reject, sentAtMs: Date.now(), isRetry: false });
      socket.write(frame);
    });
  }

  #connect(): Promise<Socket> {
    if (this.#connecting !== undefined) return this.#connecting;
    if (Date.now() < this.#retryAtMs && this.#lastFailure !== undefined) {
      return Promise.reject(this.#lastFailure);
    }
    const attempt = openReplicaChannel({
      host: this.#host,
      port: this.#port,
      request: this.#handshake,
      timeoutMs: this.#timeoutMs,
    }).then(
      ({ socket, rest }) => {
        this.#connecting = undefined;
        this.#failedAttempts = 0;
        if (this.#isClosed) {
          socket.destroy();
          throw new ReplicaStoreError('replication channel is closed');
        }
        this.#attach(socket, rest);
        return socket;
      },
      (error: unknown) => {
        this.#connecting = undefined;
        this.#failedAttempts++;
        const waitMs = backoffMs(this.#failedAttempts, FIRST_BACKOFF_MS, MAX_BACKOFF_MS);
        this.#retryAtMs = waitMs === 0 ? 0 : Date.now() + waitMs;
        this.#lastFailure = toStoreError('replica store unreachable', error);
        throw this.#lastFailure;
      },
    );
    this.#connecting = attempt;
    return attempt;
  }

  /** Takes a switched connection into use: reads answers, watches timeouts, fails calls when it ends. */
  #attach(socket: Socket, rest: Buffer): void {
    this.#socket = socket;
    const parser = new FrameParser({ maxFrameBytes: MAX_ANSWER_FRAME_BYTES, isKnownType: isAnswerType });
    const onFrame = (frame: Frame): void => this.#settle(socket, frame);
    const onData = (chunk: Buffer): void => {
      try {
        parser.push(chunk, onFrame);
      } catch (error) {
        socket.destroy(toStoreError('replica store sent an unreadable answer', error));
      }
    };
    socket.on('data', onData);
    let closeReason: Error | undefined;
    socket.on('error', (error) => (closeReason = error));
    socket.on('close', () => {
      clearInterval(this.#timeoutTimer);
      this.#timeoutTimer = undefined;
      if (this.#socket === socket) this.#socket = undefined;
      const failure = toStoreError(
        'replica store connection lost',
        closeReason ?? new Error(this.#isClosed ? 'closed' : 'closed by the store'),
      );
      const calls = [...this.#inFlight.values()];
      this.#inFlight.clear();
      // Our own verdicts (timeout, bad answer, close()) fail the calls. A connection the store
      // or the network closed is what a stale keep-alive socket is over HTTP: every call is
      // idempotent (versions, set semantics), so each is sent once more, in order, on a new
      // connection, and fails if that fails. Nothing is acknowledged without an answer.
      const isOurVerdict = this.#isClosed || closeReason instanceof ReplicaStoreError;
      const retries = isOurVerdict ? [] : calls.filter((call) => !call.isRetry);
      for (const call of calls) if (!retries.includes(call)) call.reject(failure);
      if (retries.length > 0) this.#retry(retries);
    });
    // One timer per connection, not one per call: the oldest call in flight (the first in
    // the map) decides. A store that stops answering fails every call, as over HTTP.
    this.#timeoutTimer = setInterval(
      () => {
        const oldest = this.#inFlight.values().next().value;
        if (oldest !== undefined && Date.now() - oldest.sentAtMs >= this.#timeoutMs) {
          socket.destroy(new ReplicaStoreError(`replica store did not answer within ${this.#timeoutMs} ms`));
        }
      },
      Math.max(5, Math.ceil(this.#timeoutMs / 4)),
    );
    this.#timeoutTimer.unref();
    if (rest.length > 0) onData(rest);
  }

  /** Sends calls of a lost connection again on a new one, ahead of calls made since. */
  #retry(calls: InFlight[]): void {
    this.#connect().then(
      (socket) => {
        for (const call of calls) {
          call.isRetry = true;
          call.sentAtMs = Date.now();
          this.#inFlight.set(call.id, call);
          socket.write(call.frame);
        }
      },
      (error: unknown) => {
        for (const call of calls) call.reject(toStoreError('replica store unreachable', error));
      },
    );
  }

  #settle(socket: Socket, { type, id, payload }: Frame): void {
    const call = this.#inFlight.get(id);
    if (call === undefined) {
      socket.destroy(new ReplicaStoreError(`replica store answered unknown request ${id}`));
      return;
    }
    this.#inFlight.delete(id);
    if (type === FrameType.error) {
      call.reject(new ReplicaStoreError(`replica store answered ${describeError(payload)}`));
      return;
    }
    const epochBytes = payload[0] ?? 0;
    const epoch = payload.toString('latin1', 1, 1 + epochBytes);
    if (1 + epochBytes > payload.length) {
      call.reject(new ReplicaStoreError('replica store sent a truncated answer'));
      return;
    }
    if (type === FrameType.record) {
      call.resolve({ epoch, outcomes: [], recordJson: payload.toString('utf8', 1 + epochBytes) });
      return;
    }
    const outcomes: WriteOutcome[] = [];
    for (let at = 1 + epochBytes; at < payload.length; at++) {
      const outcome = OUTCOME_CODES[payload[at] as number];
      if (outcome === undefined) {
        call.reject(
          new ReplicaStoreError(`replica store answered an unknown outcome ${String(payload[at])}`),
        );
        return;
      }
      outcomes.push(outcome);
    }
    call.resolve({ epoch, outcomes });
  }
}

/** `CODE: message` of an error frame's JSON. */
function describeError(payload: Buffer): string {
  try {
    const { error, message } = JSON.parse(payload.toString('utf8')) as { error?: unknown; message?: unknown };
    return `${String(error)}: ${String(message)}`;
  } catch {
    return 'an unreadable error';
  }
}

function toStoreError(prefix: string, error: unknown): ReplicaStoreError {
  if (error instanceof ReplicaStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new ReplicaStoreError(`${prefix}: ${message}`, { cause: error });
}

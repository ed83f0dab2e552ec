/*
 * The framed replication channel's wire format, shared by both ends. After an HTTP Upgrade
 * on the replication listener, each side sends frames:
 *
 *   u32 BE length of what follows | u8 type | u32 BE request id | payload
 *
 * Requests (node → proxy) carry the same JSON bodies as the HTTP routes; answers (proxy →
 * node) carry the request's id, so many requests can be in flight on one connection.
 */

/** Value of the `Upgrade` header that asks for the channel (and of the 101 answer's). */
export const CHANNEL_PROTOCOL = 'stickylb-replica/1';

/** Frame types. Requests are < 0x80, answers ≥ 0x80. */
export const FrameType = {
  write: 0x01,
  touch: 0x02,
  remove: 0x03,
  epoch: 0x04,
  /** `{"node","key"}`: one session's replica, answered with a `record` frame. */
  read: 0x05,
  /** Answer: u8 epoch length, the epoch (ASCII), then for a write one outcome byte per record. */
  ack: 0x81,
  /** Answer: JSON `{"error": CODE, "message": TEXT}`. */
  error: 0x82,
  /** Answer to a read: u8 epoch length, the epoch, then the record's JSON (nothing: no replica). */
  record: 0x83,
} as const;

/** Bytes of type and request id, counted in the length. */
export const FRAME_HEADER_BYTES = 5;
/** Bytes before the payload: the length, the type, the request id. */
export const FRAME_PREFIX_BYTES = 4 + FRAME_HEADER_BYTES;

/** Outcome bytes of a write ack, in the order of WriteOutcome. */
export const OUTCOME_CODES = ['ok', 'stale', 'not-owner'] as const;

/** One complete frame as the parser hands it out; `payload` is a view valid only during the callback. */
export interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

/** Encodes one frame whose payload is a string (UTF-8). */
export function encodeFrame(type: number, id: number, payload: string): Buffer {
  const payloadBytes = Buffer.byteLength(payload);
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + payloadBytes);
  frame.writeUInt32BE(FRAME_HEADER_BYTES + payloadBytes, 0);
  frame[4] = type;
  frame.writeUInt32BE(id, 5);
  if (payloadBytes > 0) frame.write(payload, FRAME_PREFIX_BYTES, 'utf8');
  return frame;
}

/** Encodes an ack: the epoch, then the outcome bytes (none for touch, remove, epoch). */
export function encodeAck(id: number, epoch: string, outcomes?: readonly string[]): Buffer {
  const count = outcomes?.length ?? 0;
  const frame = epochAnswer(FrameType.ack, id, epoch, count);
  let at = frame.length - count;
  for (let i = 0; i < count; i++) {
    const code = OUTCOME_CODES.indexOf(outcomes?.[i] as (typeof OUTCOME_CODES)[number]);
    if (code === -1) throw new RangeError(`unknown write outcome ${String(outcomes?.[i])}`);
    frame[at++] = code;
  }
  return frame;
}

/** Encodes a read's answer: the epoch, then the record as JSON, or nothing when there is none. */
export function encodeRecord(id: number, epoch: string, recordJson: string | undefined): Buffer {
  const recordBytes = recordJson === undefined ? 0 : Buffer.byteLength(recordJson);
  const frame = epochAnswer(FrameType.record, id, epoch, recordBytes);
  if (recordJson !== undefined) frame.write(recordJson, frame.length - recordBytes, 'utf8');
  return frame;
}

/** An answer frame with its prefix and the epoch (u8 length, ASCII) written, and `restBytes` left to fill at its end. */
function epochAnswer(type: number, id: number, epoch: string, restBytes: number): Buffer {
  const epochBytes = Buffer.byteLength(epoch, 'latin1');
  if (epochBytes > 255) throw new RangeError('epoch longer than 255 bytes');
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + 1 + epochBytes + restBytes);
  frame.writeUInt32BE(FRAME_HEADER_BYTES + 1 + epochBytes + restBytes, 0);
  frame[4] = type;
  frame.writeUInt32BE(id, 5);
  frame[FRAME_PREFIX_BYTES] = epochBytes;
  frame.write(epoch, FRAME_PREFIX_BYTES + 1, 'latin1');
  return frame;
}

/** Raised by FrameParser on input that is not a frame stream; the connection must be closed. */
export class FrameError extends Error {}

/**
 * Cuts a byte stream into frames. Input arrives in arbitrary chunks (half frames, many
 * frames per chunk); a frame is handed out once complete. Bytes of a partial frame are
 * copied once into a buffer of the frame's size, so a large frame costs no quadratic
 * concatenation, and a length above `maxFrameBytes` is refused before anything is buffered.
 */
export class FrameParser {
  readonly #maxFrameBytes: number;
  readonly #isKnownType: (type: number) => boolean;
  /** Bytes of an incomplete frame (prefix included), or undefined at a frame boundary. */
  #partial: Buffer | undefined;
  #partialBytes = 0;
  /** Up to 3 bytes of a length prefix split across chunks. */
  #prefix: Buffer | undefined;

  constructor(options: { maxFrameBytes: number; isKnownType: (type: number) => boolean }) {
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#isKnownType = options.isKnownType;
  }

  /** Whether bytes of an unfinished frame are buffered (a stalled peer holds one open). */
  get hasPartialFrame(): boolean {
    return this.#partial !== undefined || this.#prefix !== undefined;
  }

  /**
   * Feeds a chunk; calls `onFrame` for every frame it completes and returns how many it
   * completed (a caller's stall timeout restarts on progress). Throws FrameError on bad input.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): number {
    let data = chunk;
    if (this.#prefix !== undefined) {
      data = Buffer.concat([this.#prefix, chunk]);
      this.#prefix = undefined;
    }
    let offset = 0;
    let completed = 0;
    if (this.#partial !== undefined) {
      const partial = this.#partial;
      const needed = partial.length - this.#partialBytes;
      const taken = Math.min(needed, data.length);
      data.copy(partial, this.#partialBytes, 0, taken);
      this.#partialBytes += taken;
      offset = taken;
      if (this.#partialBytes < partial.length) return 0;
      this.#partial = undefined;
      this.#partialBytes = 0;
      onFrame(this.#frameAt(partial, 0, partial.length));
      completed++;
    }
    while (offset < data.length) {
      if (data.length - offset < 4) {
        this.#prefix = Buffer.from(data.subarray(offset));
        return completed;
      }
      const length = data.readUInt32BE(offset);
      if (length < FRAME_HEADER_BYTES)
        throw new FrameError(`frame length ${length} is below the header size`);
      if (length > this.#maxFrameBytes) {
        throw new FrameError(`frame length ${length} exceeds the limit of ${this.#maxFrameBytes} bytes`);
      }
      const end = offset + 4 + length;
      if (end > data.length) {
        // Checked as soon as the type byte is here: garbage is refused before we wait for it.
        if (data.length - offset > 4) this.#checkType(data[offset + 4] as number);
        const partial = Buffer.allocUnsafe(4 + length);
        data.copy(partial, 0, offset);
        this.#partial = partial;
        this.#partialBytes = data.length - offset;
        return completed;
      }
      onFrame(this.#frameAt(data, offset, end));
      completed++;
      offset = end;
    }
    return completed;
  }

  #frameAt(data: Buffer, offset: number, end: number): Frame {
    const type = data[offset + 4] as number;
    this.#checkType(type);
    return {
      type,
      id: data.readUInt32BE(offset + 5),
      payload: data.subarray(offset + FRAME_PREFIX_BYTES, end),
    };
  }

  #checkType(type: number): void {
    if (!this.#isKnownType(type)) throw new FrameError(`unknown frame type 0x${type.toString(16)}`);
  }
}

import { describe, expect, it } from 'vitest';
import {
  FrameError,
  FrameParser,
  FrameType,
  encodeAck,
  encodeFrame,
  type Frame,
} from '../../src/replication/replica-frames.js';

const isRequest = (type: number): boolean => type >= FrameType.write && type <= FrameType.epoch;

/** Frames as plain values (payload copied), for comparing. */
function collect(
  parser: FrameParser,
  chunks: Buffer[],
): Array<{ type: number; id: number; payload: string }> {
  const frames: Array<{ type: number; id: number; payload: string }> = [];
  const onFrame = (frame: Frame): void => {
    frames.push({ type: frame.type, id: frame.id, payload: frame.payload.toString('utf8') });
  };
  for (const chunk of chunks) parser.push(chunk, onFrame);
  return frames;
}

const newParser = (maxFrameBytes = 1024): FrameParser =>
  new FrameParser({ maxFrameBytes, isKnownType: isRequest });

const stream = Buffer.concat([
  encodeFrame(FrameType.write, 1, '{"node":"n","records":[]}'),
  encodeFrame(FrameType.epoch, 2, ''),
  encodeFrame(FrameType.touch, 0xffff_ffff, '{"node":"n","keys":["é"]}'),
]);
const expected = [
  { type: FrameType.write, id: 1, payload: '{"node":"n","records":[]}' },
  { type: FrameType.epoch, id: 2, payload: '' },
  { type: FrameType.touch, id: 0xffff_ffff, payload: '{"node":"n","keys":["é"]}' },
];

describe('FrameParser', () => {
  it('reads several frames from one chunk', () => {
    expect(collect(newParser(), [stream])).toEqual(expected);
  });

  it.each(Array.from({ length: stream.length - 1 }, (_, i) => i + 1))(
    'reads the same frames when the stream is cut at byte %i',
    (cut) => {
      const parser = newParser();
      expect(collect(parser, [stream.subarray(0, cut), stream.subarray(cut)])).toEqual(expected);
      expect(parser.hasPartialFrame).toBe(false);
    },
  );

  it('reads the same frames fed one byte at a time, and reports a partial frame meanwhile', () => {
    const parser = newParser();
    const frames = collect(parser, [stream.subarray(0, 3)]);
    expect(parser.hasPartialFrame).toBe(true);
    for (let i = 3; i < stream.length; i++) frames.push(...collect(parser, [stream.subarray(i, i + 1)]));
    expect(frames).toEqual(expected);
    expect(parser.hasPartialFrame).toBe(false);
  });

  it('returns how many frames each push completed, so a caller can tell progress from a stall', () => {
    const parser = newParser();
    const onFrame = (): void => {};
    const first = stream.subarray(0, 3);
    // Ends inside the second frame: one completed, a partial one still waiting.
    const middle = stream.subarray(3, 40);
    expect(parser.push(first, onFrame)).toBe(0);
    expect(parser.push(middle, onFrame)).toBe(1);
    expect(parser.hasPartialFrame).toBe(true);
    expect(parser.push(stream.subarray(40, 41), onFrame)).toBe(0);
    expect(parser.push(stream.subarray(41), onFrame)).toBe(2);
    expect(parser.hasPartialFrame).toBe(false);
  });

  it.each([
    {
      case: 'a length above the limit',
      bytes: [0x00, 0x00, 0x04, 0x01, FrameType.write],
      error: /exceeds the limit/,
    },
    { case: 'a length of 4 GiB', bytes: [0xff, 0xff, 0xff, 0xff], error: /exceeds the limit/ },
    {
      case: 'a length below the header size',
      bytes: [0x00, 0x00, 0x00, 0x04, 0x01, 0, 0, 0],
      error: /below the header/,
    },
    {
      case: 'an unknown type in a complete frame',
      bytes: [0x00, 0x00, 0x00, 0x05, 0x7f, 0, 0, 0, 1],
      error: /unknown frame type 0x7f/,
    },
    {
      case: 'an unknown type in a started frame',
      bytes: [0x00, 0x00, 0x00, 0x40, 0x47],
      error: /unknown frame type 0x47/,
    },
    {
      case: 'an answer type on the request side',
      bytes: [0x00, 0x00, 0x00, 0x05, 0x81, 0, 0, 0, 1],
      error: /unknown frame type 0x81/,
    },
    {
      case: 'HTTP text instead of frames',
      bytes: [...Buffer.from('GET / HTTP/1.1\r\n\r\n')],
      error: /exceeds the limit/,
    },
  ])('refuses $case before buffering it', ({ bytes, error }) => {
    const parser = newParser();
    expect(() => collect(parser, [Buffer.from(bytes)])).toThrow(FrameError);
    expect(() => collect(newParser(), [Buffer.from(bytes)])).toThrow(error);
  });

  it('hands out frames completed before bad input, then refuses it', () => {
    const parser = newParser();
    const frames: number[] = [];
    const input = Buffer.concat([encodeFrame(FrameType.epoch, 7, ''), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    expect(() => parser.push(input, (frame) => frames.push(frame.id))).toThrow(FrameError);
    expect(frames).toEqual([7]);
  });

  it('accepts a frame of exactly the limit', () => {
    const payload = 'x'.repeat(1024 - 5);
    expect(collect(newParser(1024), [encodeFrame(FrameType.write, 3, payload)])).toEqual([
      { type: FrameType.write, id: 3, payload },
    ]);
    expect(() => collect(newParser(1023), [encodeFrame(FrameType.write, 3, payload)])).toThrow(/exceeds/);
  });
});

describe('encodeAck', () => {
  it('carries the epoch and one outcome byte per record', () => {
    const frame = encodeAck(9, 'epoch-1', ['ok', 'stale', 'not-owner']);
    const parser = new FrameParser({ maxFrameBytes: 64, isKnownType: (type) => type === FrameType.ack });
    const frames: Frame[] = [];
    parser.push(frame, (f) => frames.push({ ...f, payload: Buffer.from(f.payload) }));
    const { type, id, payload } = frames[0] as Frame;
    expect({ type, id }).toEqual({ type: FrameType.ack, id: 9 });
    expect(payload[0]).toBe(7);
    expect(payload.toString('latin1', 1, 8)).toBe('epoch-1');
    expect([...payload.subarray(8)]).toEqual([0, 1, 2]);
  });

  it('refuses an outcome it has no code for', () => {
    expect(() => encodeAck(1, 'e', ['maybe'])).toThrow(RangeError);
  });
});

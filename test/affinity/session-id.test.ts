import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SESSION_ID_LENGTH, SessionIdCodec } from '../../src/affinity/index.js';

const codec = new SessionIdCodec(randomBytes(32));

describe('SessionIdCodec', () => {
  it('mints ids of 128 random bits, a route and a MAC', () => {
    const id = codec.mint(codec.routeOf('node-1'));
    expect(id).toHaveLength(SESSION_ID_LENGTH);
    expect(Buffer.from(id.split('.')[0] as string, 'base64url')).toHaveLength(16);
  });

  it('never mints the same id twice in 10 000 draws', () => {
    const route = codec.routeOf('node-1');
    const ids = new Set(Array.from({ length: 10_000 }, () => codec.mint(route)));
    expect(ids.size).toBe(10_000);
  });

  it('parses what it minted back to key and route', () => {
    const route = codec.routeOf('node-2');
    const id = codec.mint(route);
    expect(codec.parse(id)).toEqual({ key: id.slice(0, 22), route });
  });

  it('derives a stable, opaque route per node id', () => {
    expect(codec.routeOf('node-1')).toBe(codec.routeOf('node-1'));
    expect(codec.routeOf('node-1')).not.toBe(codec.routeOf('node-2'));
    expect(codec.routeOf('node-1')).not.toContain('node');
  });

  it('keeps the key when re-routing a session', () => {
    const id = codec.mint(codec.routeOf('node-1'));
    const moved = codec.withRoute(id.slice(0, 22), codec.routeOf('node-3'));
    expect(codec.parse(moved)).toEqual({ key: id.slice(0, 22), route: codec.routeOf('node-3') });
  });

  it('rejects ids signed with another secret', () => {
    const other = new SessionIdCodec(randomBytes(32));
    expect(codec.parse(other.mint(other.routeOf('node-1')))).toBeUndefined();
  });

  const valid = codec.mint(codec.routeOf('node-1'));
  it.each([
    ['empty', ''],
    ['too short', valid.slice(1)],
    ['too long', `${valid}A`],
    ['altered key', `B${valid.slice(1)}`.replace(/^B/, valid[0] === 'B' ? 'C' : 'B')],
    ['altered MAC', valid.slice(0, -1) + (valid.endsWith('A') ? 'B' : 'A')],
    ['separators moved', valid.replace('.', '-')],
    ['non-base64url characters', `${'!'.repeat(22)}${valid.slice(22)}`],
    ['prototype key', '__proto__'],
  ])('rejects an id that is %s', (_case, id) => {
    expect(codec.parse(id)).toBeUndefined();
  });

  it('refuses a secret shorter than 16 bytes', () => {
    expect(() => new SessionIdCodec(Buffer.alloc(8))).toThrow(/16 bytes/);
  });
});

describe('SessionIdCodec verified-id cache', () => {
  it('answers the same parse for a repeated id, and still rejects its altered forms', () => {
    const local = new SessionIdCodec(randomBytes(32));
    const id = local.mint(local.routeOf('node-1'));
    const first = local.parse(id);
    expect(local.parse(id)).toEqual(first);
    expect(local.parse(`${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}`)).toBeUndefined();
  });

  it('stays correct after the cache fills and is cleared', () => {
    const local = new SessionIdCodec(randomBytes(32));
    const route = local.routeOf('node-1');
    const first = local.mint(route);
    for (let i = 0; i < SessionIdCodec.VERIFIED_CACHE_SIZE + 10; i++) local.parse(local.mint(route));
    expect(local.parse(first)?.route).toBe(route);
  });
});

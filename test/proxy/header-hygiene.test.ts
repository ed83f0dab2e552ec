import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  isInternalHeaderName,
  normalizeAddress,
  readRequestHead,
  sanitizeRequestHeaders,
} from '../../src/proxy/header-hygiene.js';
import { isInternalPath } from '../../src/proxy/internal-path.js';

/**
 * Runs the object hygiene (upgrades) and, for a plain request, the raw-lines one the request
 * path uses (readRequestHead) on the same headers: both must forward the same set.
 */
function sanitize(headers: IncomingHttpHeaders, trusted = false, upgrade = false): IncomingHttpHeaders {
  const raw = Object.entries(headers).flatMap(([name, value]) => [name, String(value)]);
  sanitizeRequestHeaders(headers, '10.0.0.9', trusted, false, upgrade);
  if (!upgrade) {
    const head = readRequestHead(raw, '10.0.0.9', trusted, false, 'x-stickylb-session');
    const forwarded: IncomingHttpHeaders = {};
    for (let i = 0; i < head.headers.length - 2; i += 2) {
      forwarded[(head.headers[i] as string).toLowerCase()] = head.headers[i + 1];
    }
    expect(head.headers.slice(-2)).toEqual(['x-stickylb-session', '']);
    expect(forwarded).toEqual(headers);
  }
  return headers;
}

describe('sanitizeRequestHeaders', () => {
  it.each(['keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization', 'upgrade'])(
    'strips hop-by-hop %s',
    (name) => {
      expect(sanitize({ host: 'h', [name]: 'x' })[name]).toBeUndefined();
    },
  );

  it('strips Connection and every header it lists', () => {
    const headers = sanitize({
      host: 'h',
      connection: 'close, X-Secret-Hop',
      'x-secret-hop': '1',
      'x-keep': '1',
    });
    expect(headers.connection).toBeUndefined();
    expect(headers['x-secret-hop']).toBeUndefined();
    expect(headers['x-keep']).toBe('1');
  });

  it('keeps Connection: upgrade and Upgrade on a WebSocket handshake', () => {
    const headers = sanitize({ host: 'h', connection: 'Upgrade', upgrade: 'websocket' }, false, true);
    expect(headers.connection).toBe('Upgrade');
    expect(headers.upgrade).toBe('websocket');
  });

  it.each([
    'x-stickylb-session',
    'x-stickylb-secret',
    'X-STICKYLB-SESSION-USED',
    'x_stickylb_session',
    'x-stickylb_secret',
  ])('strips the internal header %s', (name) => {
    expect(sanitize({ host: 'h', [name]: 'forged' })[name]).toBeUndefined();
  });

  it('replaces X-Forwarded-* from an untrusted client', () => {
    const headers = sanitize({
      host: 'shop',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil',
      forwarded: 'for=1',
    });
    expect(headers['x-forwarded-for']).toBe('10.0.0.9');
    expect(headers['x-forwarded-host']).toBe('shop');
    expect(headers['x-forwarded-proto']).toBe('http');
    expect(headers.forwarded).toBeUndefined();
  });

  it('appends to X-Forwarded-For from a trusted proxy and keeps its proto and host', () => {
    const headers = sanitize(
      {
        host: 'inner',
        'x-forwarded-for': '1.2.3.4',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'shop',
      },
      true,
    );
    expect(headers['x-forwarded-for']).toBe('1.2.3.4, 10.0.0.9');
    expect(headers['x-forwarded-proto']).toBe('https');
    expect(headers['x-forwarded-host']).toBe('shop');
  });
});

describe('readRequestHead', () => {
  it('joins Cookie lines as Node does and notes a body and the Host', () => {
    const head = readRequestHead(
      ['Host', 'h', 'Cookie', 'a=1', 'cookie', 'SESSIONID=x', 'Content-Length', '3'],
      '10.0.0.9',
      false,
      false,
      'x-stickylb-session',
    );
    expect(head).toMatchObject({ cookie: 'a=1; SESSIONID=x', hasBody: true, hostCount: 1 });
  });

  it.each([
    [['Content-Length', '0'], false],
    [['content-length', '12'], true],
    [['Transfer-Encoding', 'chunked'], true],
    [[], false],
  ])('%j has a body: %s', (lines, expected) => {
    expect(readRequestHead(['host', 'h', ...lines], '10.0.0.9', false, false, 's').hasBody).toBe(expected);
  });

  it('strips mixed-case hop-by-hop, internal and forwarded lines', () => {
    const head = readRequestHead(
      ['HOST', 'h', 'Keep-Alive', '5', 'X-StickyLB-Session', 'forged', 'X-Forwarded-For', '6.6.6.6'],
      '10.0.0.9',
      false,
      false,
      'x-stickylb-session',
    );
    expect(head.headers).toEqual([
      'HOST',
      'h',
      'x-forwarded-for',
      '10.0.0.9',
      'x-forwarded-proto',
      'http',
      'x-forwarded-host',
      'h',
      'x-stickylb-session',
      '',
    ]);
    expect(head.hasBody).toBe(false);
  });
});

describe('isInternalHeaderName', () => {
  it.each([
    ['x-stickylb-session', true],
    ['X_StickyLB_Secret', true],
    ['x-stickylbx', false],
    ['x-custom', false],
  ])('%s → %s', (name, expected) => {
    expect(isInternalHeaderName(name)).toBe(expected);
  });
});

describe('isInternalPath', () => {
  it.each([
    ['/_stickylb/replica', true],
    ['/_STICKYLB/replica', true],
    ['/%5Fstickylb/replica', true],
    ['/%5fstickylb/replica', true],
    ['/a/%2e%2e/_stickylb/x', true],
    ['/%zz', true],
    ['/api/counter', false],
    ['/search?q=_stickylb', false],
    ['/', false],
  ])('%s → %s', (url, expected) => {
    expect(isInternalPath(url)).toBe(expected);
  });
});

describe('normalizeAddress', () => {
  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1'],
    ['127.0.0.1', '127.0.0.1'],
    ['::1', '::1'],
    [undefined, ''],
  ])('%s → %s', (input, expected) => {
    expect(normalizeAddress(input)).toBe(expected);
  });
});

import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  isInternalHeaderName,
  normalizeAddress,
  sanitizeRequestHeaders,
} from '../../src/proxy/header-hygiene.js';
import { isInternalPath } from '../../src/proxy/internal-path.js';

function sanitize(headers: IncomingHttpHeaders, trusted = false, upgrade = false): IncomingHttpHeaders {
  sanitizeRequestHeaders(headers, '10.0.0.9', trusted, false, upgrade);
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

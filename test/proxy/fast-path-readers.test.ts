import { describe, expect, it } from 'vitest';
import { ChunkedBody, MALFORMED, NOT_ENDED } from '../../src/proxy/fast-path/chunked-body.js';
import {
  INCOMPLETE,
  readFastRequest,
  SLOW,
  type FastRequest,
} from '../../src/proxy/fast-path/request-head.js';
import { Framing, readFastResponse, ResponseProtocolError } from '../../src/proxy/fast-path/response-head.js';

const LIMITS = { maxHeaderBytes: 16_384, maxHeaderCount: 100, maxBodyBytes: 65_536 };
const read = (text: string, trusted = false): ReturnType<typeof readFastRequest> =>
  readFastRequest(Buffer.from(text, 'latin1'), LIMITS, trusted);
const ok = (text: string): FastRequest => {
  const request = read(text);
  if (typeof request === 'number') throw new Error(`not read: ${request}`);
  return request;
};

describe('readFastRequest', () => {
  it('reads a plain GET: target, host, cookie lines joined, head forwarded as is', () => {
    const request = ok(
      'GET /api/counter?x=1 HTTP/1.1\r\nHost: a:80\r\nCookie: a=1\r\nAccept: */*\r\ncookie: SESSIONID=z\r\n\r\n',
    );
    expect(request).toMatchObject({
      method: 'GET',
      target: '/api/counter?x=1',
      host: 'a:80',
      cookie: 'a=1; SESSIONID=z',
      bodyLength: 0,
      addsZeroLength: false,
    });
    expect(request.head).toBe(
      'GET /api/counter?x=1 HTTP/1.1\r\nHost: a:80\r\nCookie: a=1\r\nAccept: */*\r\ncookie: SESSIONID=z',
    );
  });

  it('waits for the rest of the head, and tells how long the whole request is', () => {
    expect(read('GET / HTTP/1.1\r\nHost: a\r\n')).toBe(INCOMPLETE);
    // The head is read while the body is still arriving: whole once the buffer holds `size`.
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel').size).toBe(52);
    const request = ok('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET');
    expect([request.bodyStart, request.bodyLength, request.size]).toEqual([47, 5, 52]);
  });

  it('finds the end of a head that arrived in pieces, searching on from where it stopped', () => {
    const text = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    for (let cut = 1; cut < text.length; cut++) {
      expect(read(text.slice(0, cut))).toBe(INCOMPLETE);
      const whole = readFastRequest(Buffer.from(text), LIMITS, false, Math.max(0, cut - 3));
      expect(whole).toMatchObject({ target: '/', host: 'a', size: text.length });
    }
  });

  it('drops hop-by-hop, client-sent forwarding and internal headers, keeping the rest in order', () => {
    const request = ok(
      'GET / HTTP/1.1\r\nConnection: keep-alive\r\nHost: a\r\nKeep-Alive: 5\r\nX-Forwarded-For: 6.6.6.6\r\n' +
        'x-stickylb-session: forged\r\nX_Stickylb_Session-Used: 1\r\nTE: trailers\r\nA: 1\r\nForwarded: for=x\r\n' +
        'Proxy-Authorization: x\r\nProxy-Connection: x\r\nX-Forwarded-Host: h\r\nX-Forwarded-Proto: https\r\nTrailer: x\r\nB: 2\r\n\r\n',
    );
    expect(request.head).toBe('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2');
  });

  it('reads Connection: close (the connection ends after the answer) and drops the header', () => {
    const request = ok('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    expect([request.closes, request.head]).toEqual([true, 'GET / HTTP/1.1\r\nHost: a']);
    expect(ok('GET / HTTP/1.1\r\nHost: a\r\n\r\n').closes).toBe(false);
  });

  it('says content-length: 0 for a POST, PUT or PATCH without one', () => {
    expect(ok('POST / HTTP/1.1\r\nHost: a\r\n\r\n').addsZeroLength).toBe(true);
    expect(ok('PATCH / HTTP/1.1\r\nHost: a\r\n\r\n').addsZeroLength).toBe(true);
    expect(ok('DELETE / HTTP/1.1\r\nHost: a\r\n\r\n').addsZeroLength).toBe(false);
  });

  it.each([
    ['HTTP/1.0', 'GET / HTTP/1.0\r\nHost: a\r\n\r\n'],
    ['absolute-form target', 'GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['asterisk form', 'OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['unknown method', 'PROPFIND / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['lower-case method', 'get / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['two spaces', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['no Host', 'GET / HTTP/1.1\r\nA: b\r\n\r\n'],
    ['two Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'],
    ['bad Host', 'GET / HTTP/1.1\r\nHost: a/b\r\n\r\n'],
    ['Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['CL and TE', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['two Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx'],
    ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\nx'],
    [
      'body over the limit',
      `POST / HTTP/1.1\r\nHost: a\r\nContent-Length: ${LIMITS.maxBodyBytes + 1}\r\n\r\n`,
    ],
    ['Expect', 'POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n'],
    ['Upgrade', 'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'],
    [
      'Connection listing a header',
      'GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n',
    ],
    ['space before colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n  2\r\n\r\n'],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nA: 1\r2\r\n\r\n'],
    ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nA: 1\u00002\r\n\r\n'],
    ['obs-text in a value', 'GET / HTTP/1.1\r\nHost: a\r\nA: caf\u00e9\r\n\r\n'],
    ['control character in the target', 'GET /a\u0001 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('hands %s to the full path', (_label, text) => {
    expect(read(text)).toBe(SLOW);
  });

  it('hands forwarding headers from a trusted proxy to the full path (it appends our hop)', () => {
    expect(read('GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n', true)).toBe(SLOW);
    expect(read('GET / HTTP/1.1\r\nHost: a\r\n\r\n', true)).not.toBe(SLOW);
  });

  it('hands over a head past maxHeaderBytes or maxHeaderCount', () => {
    const limits = { ...LIMITS, maxHeaderBytes: 64, maxHeaderCount: 2 };
    expect(
      readFastRequest(Buffer.from(`GET / HTTP/1.1\r\nHost: a\r\nA: ${'x'.repeat(60)}`), limits, false),
    ).toBe(SLOW);
    expect(
      readFastRequest(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n'), limits, false),
    ).toBe(SLOW);
    expect(readFastRequest(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\n\r\n'), limits, false)).not.toBe(
      SLOW,
    );
  });
});

const response = (text: string, isHead = false): ReturnType<typeof readFastResponse> =>
  readFastResponse(Buffer.from(text, 'latin1'), isHead);

describe('readFastResponse', () => {
  it('reads the framing and strips hop-by-hop and the session-used header', () => {
    const answer = response(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nKeep-Alive: timeout=72\r\n' +
        'x-stickylb-session-used: 3\r\nContent-Disposition: a; filename="caf\u00e9"\r\n\r\nhi',
    );
    expect(answer).toMatchObject({
      status: 200,
      framing: Framing.Length,
      length: 2,
      sessionUsed: '3',
      isReusable: true,
      keepAliveMs: 72_000,
    });
    expect(answer?.head).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Disposition: a; filename="caf\u00e9"',
    );
  });

  it('knows answers without a body, chunked ones and ones that end with the connection', () => {
    expect(response('HTTP/1.1 204 No Content\r\n\r\n')?.framing).toBe(Framing.None);
    expect(response('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n')?.framing).toBe(Framing.None);
    expect(response('HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n', true)?.framing).toBe(Framing.None);
    expect(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n')?.framing).toBe(Framing.Chunked);
    const close = response('HTTP/1.1 200 OK\r\n\r\n');
    expect([close?.framing, close?.isReusable]).toEqual([Framing.Close, false]);
    expect(response('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')?.isReusable).toBe(
      false,
    );
    expect(response('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n')?.isReusable).toBe(false);
    expect(response('HTTP/1.1 200 OK\r\n')).toBeUndefined();
  });

  it('drops the headers the node lists in Connection', () => {
    const answer = response(
      'HTTP/1.1 200 OK\r\nConnection: x-a, close\r\nX-A: 1\r\nB: 2\r\nContent-Length: 0\r\n\r\n',
    );
    expect(answer?.head).toBe('HTTP/1.1 200 OK\r\nB: 2\r\nContent-Length: 0');
    expect(answer?.isReusable).toBe(false);
  });

  it.each([
    ['CL and TE', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'],
    ['two different Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n'],
    ['a Transfer-Encoding other than chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n'],
    ['a malformed status line', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nA: 1\r\n 2\r\nContent-Length: 0\r\n\r\n'],
    ['a bare CR', 'HTTP/1.1 200 OK\r\nA: 1\r2\r\nContent-Length: 0\r\n\r\n'],
  ])('refuses %s', (_label, text) => {
    expect(() => response(text)).toThrow(ResponseProtocolError);
  });
});

describe('ChunkedBody', () => {
  it('finds the end of a chunked body split anywhere, trailers and extensions included', () => {
    const body = Buffer.from('5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT');
    const end = body.length - 4;
    for (let split = 0; split <= body.length; split++) {
      const chunked = new ChunkedBody();
      const first = chunked.scan(body.subarray(0, split), 0);
      const found = first >= 0 ? first : split + chunked.scan(body.subarray(split), 0);
      expect(found).toBe(end);
    }
  });

  it('says NOT_ENDED mid-body and MALFORMED for what is not chunked encoding', () => {
    expect(new ChunkedBody().scan(Buffer.from('5\r\nhel'), 0)).toBe(NOT_ENDED);
    for (const bad of ['x\r\n', '5\r\nhelloX\r\n', '\r\n', '5\nhello\r\n', '0\r\n\n', '0\r\nA: 1\n\r\n']) {
      expect(new ChunkedBody().scan(Buffer.from(bad), 0)).toBe(MALFORMED);
    }
  });
});

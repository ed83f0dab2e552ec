import { describe, expect, it } from 'vitest';
import { SessionCookie } from '../../src/affinity/index.js';

const cookie = new SessionCookie({ cookieName: 'SESSIONID', urlParam: 'sessionId', secure: false });

describe('SessionCookie', () => {
  it.each([
    ['the only cookie', 'SESSIONID=abc', 'abc'],
    ['among others', 'a=1; SESSIONID=abc; b=2', 'abc'],
    ['without spaces', 'a=1;SESSIONID=abc;b=2', 'abc'],
    ['quoted', 'SESSIONID="abc"', 'abc'],
    ['absent', 'a=1; b=2', undefined],
    ['only as a suffix of another name', 'XSESSIONID=abc', undefined],
    // '' never verifies: counted as a rejected id, and no session.
    ['duplicated (cookie tossing)', 'SESSIONID=abc; SESSIONID=def', ''],
  ])('reads the cookie when it is %s', (_case, header, expected) => {
    expect(cookie.fromCookieHeader(header)).toBe(expected);
  });

  it('reads nothing from a request without a Cookie header', () => {
    expect(cookie.fromCookieHeader(undefined)).toBeUndefined();
  });

  it.each([
    ['/api?sessionId=abc', 'abc'],
    ['/api?x=1&sessionId=abc&y=2', 'abc'],
    ['/api?sessionId=abc#frag', 'abc'],
    ['/api?xsessionId=abc', undefined],
    ['/api/sessionId=abc', undefined],
    ['/api', undefined],
    ['/api?sessionId=abc&sessionId=def', ''],
    ['/api?sessionId=abc&x=1&sessionId=def', ''],
    ['/api?sessionId=abc#&sessionId=def', 'abc'],
  ])('reads the URL parameter of %s', (url, expected) => {
    expect(cookie.fromUrl(url)).toBe(expected);
  });

  it('serialises HttpOnly, SameSite=Lax, Path=/', () => {
    expect(cookie.serialize('abc')).toBe('SESSIONID=abc; Path=/; HttpOnly; SameSite=Lax');
  });

  it('adds Secure when configured', () => {
    const secure = new SessionCookie({ cookieName: 'SID', urlParam: 'sid', secure: true });
    expect(secure.serialize('abc')).toBe('SID=abc; Path=/; HttpOnly; Secure; SameSite=Lax');
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../integration/harness.js';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange, type RawResponse } from './raw-client.js';

/*
 * Session ids a client should not have: malformed, duplicated, oversized, forged, or
 * carrying header-injection bytes, by cookie or by URL. Each is treated as no session: the
 * node gets a fresh id the proxy minted, the bad one is never reflected (not in Set-Cookie,
 * not in the answer at all) nor adopted, and `stickylb_proxy_rejected_ids_total` counts it.
 */
let proxy: HardeningProxy;
/** A real id the proxy issued (the victim's). */
let issued = '';

const ID = /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/;

beforeAll(async () => {
  proxy = await startHardeningProxy();
  const { response } = await get('/api/session');
  issued = (response?.headers['set-cookie'] ?? '').replace(/^SESSIONID=([^;]*);.*$/, '$1');
});
afterAll(async () => {
  await proxy?.close();
});

function get(path: string, cookie?: string): ReturnType<typeof rawExchange> {
  return rawExchange(
    proxy.port,
    `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${cookie === undefined ? '' : `Cookie: ${cookie}\r\n`}Connection: close\r\n\r\n`,
  );
}

async function rejectedIds(): Promise<number> {
  return Number(/stickylb_proxy_rejected_ids_total (\d+)/.exec(await proxy.metrics())?.[1]);
}

const flip = (text: string): string => (text[0] === 'A' ? 'B' : 'A') + text.slice(1);

/** Bad ids, built from the issued one where that makes the forgery closer to real. */
const badIds: Array<[string, () => string]> = [
  ['a made-up id', () => 'attacker-chosen-session-id'],
  ['an empty id', () => ''],
  ['an id with an altered MAC', () => issued.replace(/[^.]+$/, (mac) => flip(mac))],
  [
    'an id with an altered route',
    () => issued.replace(/\.([^.]+)\./, (_m, route: string) => `.${flip(route)}.`),
  ],
  ['an id with an altered key', () => flip(issued)],
  ['an id with its MAC cut', () => issued.slice(0, -1)],
  ['an id with a byte appended', () => `${issued}A`],
  ['an oversized id (8 KB)', () => 'A'.repeat(8000)],
  ['an id with non-base64url characters', () => issued.replace(/^./, '!')],
  ['an id of another secret, right shape', () => 'A'.repeat(22) + '.' + 'B'.repeat(8) + '.' + 'C'.repeat(22)],
  ['__proto__', () => '__proto__'],
];

/** The whole answer, to check a bad id appears nowhere in it. */
const wire = (response: RawResponse | undefined): string =>
  JSON.stringify(response?.headers ?? {}) + (response?.body ?? '');

function expectFreshSession(response: RawResponse | undefined, bad: string): void {
  expect(response?.status).toBe(200);
  const body = JSON.parse(response?.body ?? '{}') as { sessionId: string };
  // The node was given a fresh id, not the bad one nor the victim's.
  expect(body.sessionId).toMatch(ID);
  expect(body.sessionId).not.toBe(bad);
  expect(body.sessionId.split('.')[0]).not.toBe(issued.split('.')[0]);
  expect(response?.headers['set-cookie']).toContain(`SESSIONID=${body.sessionId};`);
  if (bad.length >= 8) expect(wire(response)).not.toContain(bad);
}

describe('session id abuse', () => {
  it('starts from a real issued id (control case)', async () => {
    expect(issued).toMatch(ID);
    const { response } = await get('/api/session', `SESSIONID=${issued}`);
    expect(JSON.parse(response?.body ?? '{}')).toEqual({ sessionId: issued });
    expect(response?.headers['set-cookie']).toBeUndefined();
  });

  it.each(badIds)('treats %s in the cookie as no session', async (_name, make) => {
    const bad = make();
    const before = await rejectedIds();
    const { response } = await get('/api/session', `SESSIONID=${bad}`);
    expectFreshSession(response, bad);
    await waitFor(async () => (await rejectedIds()) === before + 1);
  });

  it.each(badIds)('treats %s in the URL as no session', async (_name, make) => {
    const bad = make();
    const before = await rejectedIds();
    const { response } = await get(`/api/session?sessionId=${encodeURIComponent(bad)}`);
    expectFreshSession(response, bad);
    await waitFor(async () => (await rejectedIds()) === before + 1);
  });

  it('treats two SESSIONID cookies as none, even when one is real (cookie tossing)', async () => {
    const before = await rejectedIds();
    for (const cookie of [
      `SESSIONID=${issued}; SESSIONID=planted`,
      `SESSIONID=planted; a=1; SESSIONID=${issued}`,
    ]) {
      const { response } = await get('/api/session', cookie);
      expectFreshSession(response, 'planted');
    }
    await waitFor(async () => (await rejectedIds()) === before + 2);
  });

  it('treats two sessionId URL parameters as none, even when one is real', async () => {
    const before = await rejectedIds();
    const { response } = await get(`/api/session?sessionId=${issued}&sessionId=planted`);
    expectFreshSession(response, 'planted');
    await waitFor(async () => (await rejectedIds()) === before + 1);
  });

  it('never reflects header-injection bytes from a URL id into Set-Cookie', async () => {
    const { response, text } = await get('/api/session?sessionId=x%0d%0aSet-Cookie:%20admin=1');
    expectFreshSession(response, 'x\r\nSet-Cookie: admin=1');
    expect(text).not.toMatch(/admin=1/);
  });

  it('lets a valid cookie win over a bad URL id, and a valid URL id stand in for a bad cookie', async () => {
    const cookieWins = await get('/api/session?sessionId=forged', `SESSIONID=${issued}`);
    expect(JSON.parse(cookieWins.response?.body ?? '{}')).toEqual({ sessionId: issued });
    const urlStands = await get(`/api/session?sessionId=${issued}`, 'SESSIONID=forged');
    expect(JSON.parse(urlStands.response?.body ?? '{}')).toEqual({ sessionId: issued });
  });
});

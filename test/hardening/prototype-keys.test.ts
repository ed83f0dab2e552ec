import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHardeningProxy, type HardeningProxy } from './proxy-fixture.js';
import { rawExchange } from './raw-client.js';

/*
 * `__proto__`, `constructor` and `prototype` as header names, cookie names and query keys:
 * ignored like any other name, no prototype pollution in the proxy (it runs in this test's
 * process, so Object.prototype here is the proxy's), and the request is routed normally.
 */
let proxy: HardeningProxy;
const prototypeNamesBefore = Object.getOwnPropertyNames(Object.prototype).sort();

beforeAll(async () => {
  proxy = await startHardeningProxy();
});
afterAll(async () => {
  await proxy?.close();
});

function expectCleanPrototype(): void {
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeNamesBefore);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getPrototypeOf({})).toBe(Object.prototype);
}

describe('prototype keys from clients', () => {
  it.each([
    ['header names', '/api/session', '__proto__: {"polluted":1}\r\nconstructor: x\r\nprototype: y\r\n'],
    [
      'cookie names and values',
      '/api/session',
      'Cookie: __proto__=polluted; constructor=1; prototype=2; SESSIONID=__proto__\r\n',
    ],
    [
      'query keys',
      '/api/session?__proto__[polluted]=1&constructor[prototype][polluted]=1&__proto__.polluted=1&sessionId=constructor',
      '',
    ],
  ])('ignores them as %s and routes the request normally', async (_name, path, headers) => {
    const node = proxy.nodes[0];
    const seenBefore = node?.seen.length ?? 0;
    const { response } = await rawExchange(
      proxy.port,
      `GET ${path} HTTP/1.1\r\nHost: lb.test\r\n${headers}Connection: close\r\n\r\n`,
    );
    expect(response?.status).toBe(200);
    // Routed as a request with no session: a fresh, valid id for the node.
    const body = JSON.parse(response?.body ?? '{}') as { sessionId: string };
    expect(body.sessionId).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{8}\.[A-Za-z0-9_-]{22}$/);
    expect(node?.seen.length).toBe(seenBefore + 1);
    expectCleanPrototype();
  });

  it('keeps the admin state readable after them', async () => {
    const state = (await (await fetch(`${proxy.adminUrl}/api/state`)).json()) as { nodes: unknown[] };
    expect(state.nodes).toHaveLength(1);
    expectCleanPrototype();
  });
});

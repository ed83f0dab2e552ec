import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatDuration, loadConfig, parseConfig, parseDuration } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';

const minimal = { nodes: [{ id: 'node-1', url: 'http://127.0.0.1:9001' }] };

function problemsOf(input: unknown): readonly string[] {
  try {
    parseConfig(input, 'test.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('config was accepted');
}

describe('config files', () => {
  const files = readdirSync('config').filter((name) => /\.(ya?ml|json)$/.test(name));

  it('ships at least the default config', () => {
    expect(files).toContain('default.yaml');
  });

  it.each(files)('loads config/%s', (name) => {
    const config = loadConfig(join('config', name));
    expect(config.nodes.length).toBeGreaterThan(0);
  });

  it('default.yaml sets every contract key', () => {
    const config = loadConfig('config/default.yaml');
    expect(config.proxy.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(config.session).toMatchObject({
      cookieName: 'SESSIONID',
      urlParam: 'sessionId',
      idleTimeout: 30 * 60_000,
    });
    expect(config.balancing.policy).toBe('least-sessions');
    expect(config.health).toMatchObject({ interval: 1000, timeout: 500, rise: 2, fall: 2 });
    expect(config.replication).toMatchObject({ store: 'memory', mode: 'sync' });
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.nodes.map((node) => node.id)).toEqual(['node-1', 'node-2', 'node-3']);
  });
});

describe('parseConfig', () => {
  it('fills every default from a minimal config', () => {
    const config = parseConfig(minimal);
    expect(config.health.rise).toBe(2);
    expect(config.nodes[0]?.weight).toBe(1);
    expect(config.proxy.timeouts.upstream).toBe(30_000);
  });

  it('returns a frozen object', () => {
    const config = parseConfig(minimal);
    expect(Object.isFrozen(config.health)).toBe(true);
    expect(Object.isFrozen(config.nodes[0])).toBe(true);
  });

  it.each([
    ['a value below its minimum', { ...minimal, health: { rise: 0 } }, 'health.rise: must be ≥ 1'],
    ['an unknown top-level key', { ...minimal, helth: {} }, 'helth: unknown key'],
    ['an unknown nested key', { ...minimal, health: { intervall: '1s' } }, 'health.intervall: unknown key'],
    [
      'a malformed duration',
      { ...minimal, health: { interval: 'soon' } },
      'health.interval: must be a duration',
    ],
    ['a wrong type', { ...minimal, health: { fall: 'two' } }, 'health.fall: must be a number'],
    [
      'an unknown policy',
      { ...minimal, balancing: { policy: 'fastest' } },
      'balancing.policy: must be one of',
    ],
    ['a missing node list', {}, 'nodes: is required'],
    ['an empty node list', { nodes: [] }, 'nodes: must list at least one node'],
    [
      'a node URL with a path',
      { nodes: [{ id: 'a', url: 'http://127.0.0.1:1/x' }] },
      'nodes.0.url: must be an http(s) URL',
    ],
    [
      'a bad node id',
      { nodes: [{ id: 'a b', url: 'http://127.0.0.1:1' }] },
      'nodes.0.id: must be 1-64 letters',
    ],
    [
      'duplicate node ids',
      { nodes: [minimal.nodes[0], minimal.nodes[0]] },
      'nodes.1.id: duplicate node id "node-1"',
    ],
    [
      'a timeout not shorter than the interval',
      { ...minimal, health: { interval: '1s', timeout: '2s' } },
      'health.timeout: must be shorter',
    ],
    [
      'a short secret',
      { ...minimal, replication: { secret: 'short' } },
      'replication.secret: must be at least 16 characters',
    ],
    [
      'a timer duration past what Node can time',
      { ...minimal, health: { interval: '30d' } },
      'health.interval: must be ≤ 2147483647ms',
    ],
    [
      'a touch interval past what Node can time',
      { ...minimal, replication: { touchInterval: '25d' } },
      'replication.touchInterval: must be ≤ 2147483647ms',
    ],
    [
      'an idle timeout over a year',
      { ...minimal, session: { idleTimeout: '400d' } },
      'session.idleTimeout: must be ≤ 365d',
    ],
    [
      'a port out of range',
      { ...minimal, proxy: { listen: { port: 70000 } } },
      'proxy.listen.port: must be ≤ 65535',
    ],
  ])('names the key path of %s', (_case, input, expected) => {
    expect(problemsOf(input).some((line) => line.startsWith(expected))).toBe(true);
  });

  it.each([
    ['with a sentinel', { sentinel: { name: 'main', nodes: ['127.0.0.1:26379'] } }],
    ['with a cluster', { cluster: { nodes: ['127.0.0.1:7000'] } }],
    ['standalone', {}],
  ])('refuses a redis.url that does not parse (%s) without echoing its password', (_case, redis) => {
    // Unparsable: the port is not a number. `new URL` on it later would put it, password and
    // all, in the error a failed start prints.
    const url = 'redis://:hunter2secret@10.0.0.5:notaport/0';
    const problems = problemsOf({ ...minimal, redis: { url, ...redis } });
    expect(problems.some((line) => line.startsWith('redis.url: must be a redis:// or rediss:// URL'))).toBe(
      true,
    );
    expect(problems.join('\n')).not.toContain('hunter2secret');
  });

  it('refuses a redis.url of //host without echoing it (ioredis would read it as a URL, password and all)', () => {
    const problems = problemsOf({ ...minimal, redis: { url: '//:hunter2secret@10.0.0.5:6379' } });
    expect(problems.some((line) => line.startsWith('redis.url: must be a redis:// or rediss:// URL'))).toBe(
      true,
    );
    expect(problems.join('\n')).not.toContain('hunter2secret');
  });

  it('accepts a Unix socket path as redis.url, but not with a sentinel (its url gives only credentials)', () => {
    expect(parseConfig({ ...minimal, redis: { url: '/var/run/redis.sock' } }).redis.url).toBe(
      '/var/run/redis.sock',
    );
    const problems = problemsOf({
      ...minimal,
      redis: { url: '/var/run/redis.sock', sentinel: { name: 'main', nodes: ['127.0.0.1:26379'] } },
    });
    expect(
      problems.some((line) => line.startsWith('redis.url: must be a redis:// URL with redis.sentinel')),
    ).toBe(true);
  });

  it('accepts redis:// and rediss:// URLs with a password and a database', () => {
    expect(parseConfig({ ...minimal, redis: { url: 'rediss://:pw@10.0.0.5:6380/2' } }).redis.url).toBe(
      'rediss://:pw@10.0.0.5:6380/2',
    );
  });

  it('accepts an idle timeout of weeks (compared with timestamps, never a timer)', () => {
    expect(parseConfig({ ...minimal, session: { idleTimeout: '30d' } }).session.idleTimeout).toBe(
      30 * 86_400_000,
    );
  });

  it('lists every problem, one line each', () => {
    const problems = problemsOf({ ...minimal, health: { rise: 0, fall: 0 }, bogus: 1 });
    expect(problems).toEqual(
      expect.arrayContaining(['health.rise: must be ≥ 1', 'health.fall: must be ≥ 1', 'bogus: unknown key']),
    );
    expect(problems).toHaveLength(3);
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stickylb-config-'));

  it('accepts JSON as well as YAML', () => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ ...minimal, session: { idleTimeout: '2m' } }));
    expect(loadConfig(file).session.idleTimeout).toBe(120_000);
  });

  it('refuses replica store port 0 in a file the nodes read, but not with Redis (unused there)', () => {
    const file = join(dir, 'port0.json');
    writeFileSync(file, JSON.stringify({ ...minimal, replication: { listen: { port: 0 } } }));
    expect(() => loadConfig(file)).toThrow(/replication\.listen\.port: must be a fixed port/);
    writeFileSync(file, JSON.stringify({ ...minimal, replication: { store: 'redis', listen: { port: 0 } } }));
    expect(loadConfig(file).replication.listen.port).toBe(0);
  });

  it('names the file and the problem when the YAML does not parse', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'nodes: [\n');
    expect(() => loadConfig(file)).toThrow(/broken\.yaml: invalid config\n {2}not valid YAML/);
  });

  it.each([
    [
      // The parser's own message quotes this line, password and all.
      'broken-secret.yaml',
      'redis:\n  url: [redis://:PASSWORD123@redis:6379\n',
      /not valid YAML: .* at line 3, column 1$/m,
    ],
    // V8 quotes the input when it has no position to give.
    ['broken-secret.json', '{"redis": {"url": PASSWORD123}}', /not valid JSON$/m],
    [
      'broken-position.json',
      '{"redis": {"url": "redis://:PASSWORD123@redis:6379", }}',
      /not valid JSON at line 1, column 54$/m,
    ],
  ])(
    '%s: says where the syntax error is without quoting the line (it may hold a password)',
    (name, text, where) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      expect(() => loadConfig(file)).toThrow(where);
      expect(() => loadConfig(file)).not.toThrow(/PASSWORD123/);
    },
  );

  it('reports a missing file as a config error', () => {
    expect(() => loadConfig(join(dir, 'absent.yaml'))).toThrow(ConfigError);
  });
});

describe('parseDuration', () => {
  it.each([
    [500, 500],
    ['500', 500],
    ['500ms', 500],
    ['2s', 2000],
    ['1.5s', 1500],
    ['30m', 1_800_000],
    ['12h', 43_200_000],
    ['1d', 86_400_000],
  ])('reads %j as %i ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each([['soon'], ['-1s'], [-5], [1.5], ['2 weeks'], [null], [{}]])('rejects %j', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });

  it.each([
    [1500, '1500ms'],
    [2000, '2s'],
    [60_000, '1m'],
    [1_800_000, '30m'],
  ])('formats %i ms as %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});

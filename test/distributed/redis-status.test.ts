import { describe, expect, it } from 'vitest';
import {
  RedisStatus,
  redactUrl,
  redisLocationOf,
  redisUnreachableError,
} from '../../src/distributed/index.js';

const moves = { published: 0, adopted: 0, publishFailures: 0, resynced: 0 };

describe('RedisStatus', () => {
  it('counts an outage once per transition, not per failure', () => {
    const status = new RedisStatus('redis://127.0.0.1:6379');
    expect(status.mark(false, new Error('ECONNREFUSED'))).toBe(true);
    expect(status.mark(false, new Error('again'))).toBe(false);
    expect(status.snapshot(moves)).toMatchObject({ state: 'down', outages: 1, lastError: 'ECONNREFUSED' });
    expect(status.mark(true)).toBe(true);
    expect(status.mark(true)).toBe(false);
    expect(status.snapshot(moves)).toMatchObject({ state: 'up', outages: 1 });
  });

  it.each([
    ['redis://:secret@10.0.0.5:6379/0', 'redis://:***@10.0.0.5:6379/0'],
    ['redis://user:secret@host:6379', 'redis://user:***@host:6379'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    ['not a url', 'redis://(unparsable url)'],
    ['redis://10.0.0.5:6379/0?password=s3cret', 'redis://10.0.0.5:6379/0'],
    ['redis://10.0.0.5:6379/0?username=u&password=s3cret&family=6', 'redis://10.0.0.5:6379/0'],
    ['redis://:secret@10.0.0.5:6379?password=s3cret#frag', 'redis://:***@10.0.0.5:6379'],
    ['/var/run/redis/redis.sock', '/var/run/redis/redis.sock'],
    ['/var/run/redis/redis.sock?password=s3cret&db=2', '/var/run/redis/redis.sock'],
  ])('redacts the password of %s', (url, shown) => {
    expect(redactUrl(url)).toBe(shown);
  });

  it.each([
    [{ url: 'redis://:secret@10.0.0.5:6379' }, 'redis://:***@10.0.0.5:6379'],
    [{ url: 'redis://10.0.0.5:6379/0?password=secret' }, 'redis://10.0.0.5:6379/0'],
    [
      { url: 'redis://:secret@ignored', sentinel: { name: 'main', nodes: ['10.0.0.5:26379', 'b:26379'] } },
      'sentinel main (10.0.0.5:26379, b:26379)',
    ],
    [
      { url: 'redis://:secret@ignored', cluster: { nodes: ['10.0.0.5:7000', 'b:7000'] } },
      'cluster (10.0.0.5:7000, b:7000)',
    ],
  ])('names where Redis is for %j without a password: %s', (settings, shown) => {
    expect(redisLocationOf(settings)).toBe(shown);
  });

  it.each([
    [{ url: 'redis://:secret@10.0.0.5:6379' }, 'at redis.url redis://:***@10.0.0.5:6379: refused'],
    [
      { url: 'redis://:secret@ignored', cluster: { nodes: ['10.0.0.5:7000'] } },
      'at cluster (10.0.0.5:7000): refused',
    ],
  ])('fails start-up on %j with an error saying where Redis was looked for', (settings, says) => {
    const cause = new Error('refused');
    const error = redisUnreachableError(settings, cause);
    expect(error).toMatchObject({ code: 'SLB_REPLICA_UNAVAILABLE', cause });
    expect(error.message).toBe(`replica store: cannot reach Redis ${says}`);
  });
});

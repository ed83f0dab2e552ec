import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BodyTooLargeError, errorAnswer, errorClasses, type StickyError } from '../src/errors.js';

/** Builds one instance of each error class with placeholder arguments. */
const instances: StickyError[] = errorClasses.map((ErrorClass) => {
  const Ctor = ErrorClass as unknown as new (...args: unknown[]) => StickyError;
  return new Ctor('x', ['problem'], 1);
});

describe('error catalogue', () => {
  it('gives every error class a unique stable code', () => {
    const codes = instances.map((error) => error.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^SLB_[A-Z_]+$/);
  });

  it('maps every error to an HTTP status', () => {
    for (const error of instances) expect(error.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('lists every code in the README error table', () => {
    const readme = readFileSync('README.md', 'utf8');
    for (const error of instances) expect(readme).toContain(`\`${error.code}\``);
  });

  it('serialises as {"error","message"}', () => {
    const error = instances[0] as StickyError;
    expect(JSON.parse(JSON.stringify(error))).toEqual({ error: error.code, message: error.message });
  });
});

describe('errorAnswer', () => {
  const withStatus = (message: string, statusCode: number): Error & { statusCode: number } =>
    Object.assign(new Error(message), { statusCode });
  it.each([
    {
      name: 'a StickyError keeps its status and code',
      error: new BodyTooLargeError(10),
      status: 413,
      code: 'SLB_BODY_TOO_LARGE',
      unexpected: false,
    },
    {
      name: 'a framework 413 gets the stable code',
      error: withStatus('too big', 413),
      status: 413,
      code: 'SLB_BODY_TOO_LARGE',
      message: 'too big',
      unexpected: false,
    },
    {
      name: 'a framework 401 keeps its status',
      error: withStatus('no', 401),
      status: 401,
      code: 'SLB_UNAUTHORIZED',
      unexpected: false,
    },
    {
      name: 'another framework 4xx is a bad request',
      error: withStatus('bad json', 415),
      status: 415,
      code: 'SLB_BAD_REQUEST',
      unexpected: false,
    },
    {
      name: 'a plain error is a 500 without its message',
      error: new Error('secret detail at /etc/x'),
      status: 500,
      code: 'SLB_INTERNAL',
      message: 'internal error',
      unexpected: true,
    },
    {
      name: 'a non-StickyError 5xx is a 500 without its message',
      error: withStatus('upstream detail', 503),
      status: 500,
      code: 'SLB_INTERNAL',
      message: 'internal error',
      unexpected: true,
    },
  ])('$name', ({ error, status, code, message, unexpected }) => {
    const answer = errorAnswer(error);
    expect(answer.status).toBe(status);
    expect(answer.body.error).toBe(code);
    if (message !== undefined) expect(answer.body.message).toBe(message);
    expect(answer.unexpected).toBe(unexpected);
  });
});

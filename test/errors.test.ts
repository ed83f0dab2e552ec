import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorClasses, type StickyError } from '../src/errors.js';

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

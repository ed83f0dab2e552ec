import { describe, expect, it } from 'vitest';
import {
  compartmentSizes,
  createSessionData,
  deleteValue,
  enterCompartment,
  findCompartment,
  getValue,
  leaveCompartment,
  listCompartments,
  setValue,
  type CompartmentData,
} from '../../src/session/index.js';

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

function shopData(): CompartmentData {
  const root = createSessionData();
  setValue(root, '', 'count', 3);
  setValue(root, 'cart', 'items', [{ sku: 'tea', qty: 2 }]);
  setValue(root, 'checkout/shipping', 'city', 'Zürich');
  setValue(root, 'checkout/payment', 'method', 'card');
  return root;
}

describe('compartments', () => {
  it('creates an empty root compartment, without a children object until it has a child', () => {
    expect(createSessionData()).toStrictEqual({ values: {} });
  });

  it('enters a nested compartment, creating its parents', () => {
    const root = createSessionData();
    const shipping = enterCompartment(root, 'checkout/shipping');
    expect(listCompartments(root)).toEqual(['checkout', 'checkout/shipping']);
    expect(findCompartment(root, 'checkout/shipping')).toBe(shipping);
  });

  it('returns the existing compartment when entering it again', () => {
    const root = createSessionData();
    const first = enterCompartment(root, 'checkout');
    setValue(root, 'checkout', 'step', 1);
    expect(enterCompartment(root, 'checkout')).toBe(first);
    expect(getValue(root, 'checkout', 'step')).toBe(1);
  });

  it('returns the root for the empty path', () => {
    const root = createSessionData();
    expect(enterCompartment(root, '')).toBe(root);
    expect(findCompartment(root, '')).toBe(root);
  });

  it('removes a compartment and all its children when leaving it', () => {
    const root = shopData();
    expect(leaveCompartment(root, 'checkout')).toBe(true);
    expect(listCompartments(root)).toEqual(['cart']);
    expect(getValue(root, 'checkout/shipping', 'city')).toBeUndefined();
    expect(getValue(root, '', 'count')).toBe(3);
  });

  it('leaving the last child drops the children object: the data is as if it never had one', () => {
    const root = createSessionData();
    setValue(root, 'wizard/step1', 'done', true);
    expect(leaveCompartment(root, 'wizard/step1')).toBe(true);
    expect(root).toStrictEqual({ values: {}, children: { wizard: { values: {} } } });
    expect(leaveCompartment(root, 'wizard')).toBe(true);
    expect(root).toStrictEqual({ values: {} });
    expect(JSON.stringify(root)).toBe('{"values":{}}');
    expect(leaveCompartment(root, 'wizard')).toBe(false);
    expect(listCompartments(root)).toEqual([]);
  });

  it('reads data written before children became optional (an empty children object)', () => {
    const old = JSON.parse('{"values":{"count":2},"children":{}}') as CompartmentData;
    expect(getValue(old, '', 'count')).toBe(2);
    expect(listCompartments(old)).toEqual([]);
    expect(compartmentSizes(old)).toEqual([{ path: '', bytes: jsonBytes(old) }]);
    setValue(old, 'cart', 'items', 1);
    expect(listCompartments(old)).toEqual(['cart']);
  });

  it('leaves a child without touching its parent or siblings', () => {
    const root = shopData();
    expect(leaveCompartment(root, 'checkout/shipping')).toBe(true);
    expect(listCompartments(root)).toEqual(['cart', 'checkout', 'checkout/payment']);
  });

  it.each(['nope', 'checkout/nope', 'nope/deeper'])('returns false when leaving the absent %s', (path) => {
    expect(leaveCompartment(shopData(), path)).toBe(false);
  });

  it('refuses to leave the root', () => {
    expect(() => leaveCompartment(createSessionData(), '')).toThrow(
      expect.objectContaining({ code: 'SLB_COMPARTMENT_PATH' }),
    );
  });

  it('finds nothing and creates nothing for an absent path', () => {
    const root = createSessionData();
    expect(findCompartment(root, 'a/b')).toBeUndefined();
    expect(getValue(root, 'a/b', 'k')).toBeUndefined();
    expect(listCompartments(root)).toEqual([]);
  });

  it.each([
    ['', 'count', 3],
    ['cart', 'items', [{ sku: 'tea', qty: 2 }]],
    ['checkout/shipping', 'city', 'Zürich'],
    ['checkout', 'city', undefined],
  ])('reads %j / %s', (path, key, value) => {
    expect(getValue(shopData(), path, key)).toEqual(value);
  });

  it('deletes a value and reports whether it was there', () => {
    const root = shopData();
    expect(deleteValue(root, 'checkout/shipping', 'city')).toBe(true);
    expect(deleteValue(root, 'checkout/shipping', 'city')).toBe(false);
    expect(deleteValue(root, 'absent', 'city')).toBe(false);
    expect(findCompartment(root, 'checkout/shipping')).toStrictEqual({ values: {} });
  });

  it('lists compartments depth-first, parents before children', () => {
    expect(listCompartments(shopData())).toEqual([
      'cart',
      'checkout',
      'checkout/shipping',
      'checkout/payment',
    ]);
  });

  it('sizes every compartment as the UTF-8 length of its JSON including children', () => {
    const root = shopData();
    const sizes = compartmentSizes(root);
    expect(sizes.map((size) => size.path)).toEqual(['', ...listCompartments(root)]);
    for (const { path, bytes } of sizes) expect(bytes).toBe(jsonBytes(findCompartment(root, path)));
  });

  it('sizes an empty session', () => {
    expect(compartmentSizes(createSessionData())).toEqual([
      { path: '', bytes: jsonBytes(createSessionData()) },
    ]);
  });

  it('works on data that went through a JSON round trip', () => {
    const copy = JSON.parse(JSON.stringify(shopData())) as CompartmentData;
    expect(copy).toEqual(shopData());
    setValue(copy, 'checkout/shipping', 'zip', '8000');
    expect(leaveCompartment(copy, 'cart')).toBe(true);
    expect(listCompartments(copy)).toEqual(['checkout', 'checkout/shipping', 'checkout/payment']);
  });

  it('accepts a path 16 levels deep of 64-character names', () => {
    const path = Array.from({ length: 16 }, (_, i) => `${i}`.padEnd(64, 'x')).join('/');
    const root = createSessionData();
    setValue(root, path, 'k', true);
    expect(getValue(root, path, 'k')).toBe(true);
  });

  it.each([
    ['a//b', 'empty segment'],
    ['/a', 'leading slash'],
    ['a/', 'trailing slash'],
    ['a b', 'space'],
    ['a.b', 'dot'],
    ['../a', 'parent reference'],
    ['zürich', 'non-ASCII'],
    ['x'.repeat(65), '65-character segment'],
    [Array.from({ length: 17 }, () => 'a').join('/'), '17 levels'],
    ['__proto__', 'reserved __proto__'],
    ['a/constructor', 'reserved constructor'],
    ['prototype', 'reserved prototype'],
  ])('rejects the path %j (%s) with CompartmentPathError', (path) => {
    const root = createSessionData();
    for (const attempt of [
      () => enterCompartment(root, path),
      () => findCompartment(root, path),
      () => setValue(root, path, 'k', 1),
      () => getValue(root, path, 'k'),
      () => leaveCompartment(root, path),
    ]) {
      expect(attempt).toThrow(expect.objectContaining({ code: 'SLB_COMPARTMENT_PATH' }));
    }
    expect(root).toEqual(createSessionData());
  });

  it.each(['__proto__', 'constructor', 'prototype'])(
    'rejects the key %s without polluting any prototype',
    (key) => {
      const root = createSessionData();
      for (const attempt of [
        () => setValue(root, '', key, { polluted: true }),
        () => getValue(root, '', key),
        () => deleteValue(root, '', key),
      ]) {
        expect(attempt).toThrow(expect.objectContaining({ code: 'SLB_COMPARTMENT_PATH' }));
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(root).toEqual(createSessionData());
    },
  );

  it.each(['toString', 'hasOwnProperty', 'valueOf'])('finds no inherited %s value or compartment', (name) => {
    const root = createSessionData();
    expect(getValue(root, '', name)).toBeUndefined();
    expect(findCompartment(root, name)).toBeUndefined();
    expect(deleteValue(root, '', name)).toBe(false);
  });

  it('keeps a JSON "__proto__" member as plain data, never as a prototype', () => {
    const parsed = JSON.parse('{"values":{"__proto__":{"polluted":true}},"children":{}}') as CompartmentData;
    setValue(parsed, '', 'safe', 1);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(compartmentSizes(parsed)[0]?.bytes).toBe(jsonBytes(parsed));
  });
});

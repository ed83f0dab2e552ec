import { CompartmentPathError } from '../errors.js';

/** Any value JSON can carry: what session data is made of (it is replicated as JSON). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * One compartment: its own values and its named child compartments. `children` is absent
 * while there are none: an empty object costs 56 bytes of heap on every session (and 14 bytes
 * of JSON on every replicated write), and most sessions never enter a compartment.
 */
export interface CompartmentData {
  values: Record<string, JsonValue>;
  children?: Record<string, CompartmentData>;
}

const SEGMENT = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_DEPTH = 16;
/**
 * Names that reach Object.prototype through plain objects. Refused as keys and compartment
 * names so session data stays plain JSON objects (a null-prototype object would not survive a
 * JSON round trip as one, and V8 keeps it in slow dictionary mode) without prototype pollution.
 */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

/** An empty root compartment (path ''): the session data of a new session. */
export function createSessionData(): CompartmentData {
  return { values: {} };
}

/** The compartment at `path`, creating it and any missing parents ('checkout', then 'checkout/shipping'). */
export function enterCompartment(root: CompartmentData, path: string): CompartmentData {
  let compartment = root;
  for (const name of parsePath(path)) {
    const child = ownValue(compartment.children, name);
    if (child !== undefined) {
      compartment = child;
    } else {
      const created = createSessionData();
      (compartment.children ??= {})[name] = created;
      compartment = created;
    }
  }
  return compartment;
}

/** Removes the compartment at `path` with all its children; false when it did not exist. The root cannot be left. */
export function leaveCompartment(root: CompartmentData, path: string): boolean {
  const names = parsePath(path);
  const name = names.pop();
  if (name === undefined) throw new CompartmentPathError(path, 'the root compartment cannot be left');
  const parent = walk(root, names);
  const children = parent?.children;
  if (children === undefined || ownValue(children, name) === undefined) return false;
  delete children[name];
  // Back to the shape of a compartment that never had children (the last property added: V8
  // deletes it without leaving the object's fast mode).
  if (isEmpty(children)) delete (parent as CompartmentData).children;
  return true;
}

/** The compartment at `path` ('' is the root), or undefined; creates nothing. */
export function findCompartment(root: CompartmentData, path: string): CompartmentData | undefined {
  return walk(root, parsePath(path));
}

/** The value of `key` in the compartment at `path`, or undefined. */
export function getValue(root: CompartmentData, path: string, key: string): JsonValue | undefined {
  checkKey(path, key);
  const compartment = findCompartment(root, path);
  return compartment === undefined ? undefined : ownValue(compartment.values, key);
}

/** Sets `key` in the compartment at `path`, entering the compartment if needed. */
export function setValue(root: CompartmentData, path: string, key: string, value: JsonValue): void {
  checkKey(path, key);
  enterCompartment(root, path).values[key] = value;
}

/** Removes `key` from the compartment at `path`; false when it was not there. */
export function deleteValue(root: CompartmentData, path: string, key: string): boolean {
  checkKey(path, key);
  const compartment = findCompartment(root, path);
  if (compartment === undefined || !Object.hasOwn(compartment.values, key)) return false;
  delete compartment.values[key];
  return true;
}

/**
 * Every compartment, the root ('') first then depth-first, with `bytes` = the UTF-8 length of
 * its JSON including its children (so the root's is the whole session). One pass: each
 * compartment's size is assembled from its children's, not re-serialised.
 */
export function compartmentSizes(root: CompartmentData): Array<{ path: string; bytes: number }> {
  const sizes: Array<{ path: string; bytes: number }> = [];
  measure(root, '', sizes);
  return sizes;
}

/** Paths of every compartment below the root, depth-first, parents before their children. */
export function listCompartments(root: CompartmentData): string[] {
  const paths: string[] = [];
  const visit = (compartment: CompartmentData, prefix: string): void => {
    const children = compartment.children;
    if (children === undefined) return;
    for (const name of Object.keys(children)) {
      const path = prefix === '' ? name : `${prefix}/${name}`;
      paths.push(path);
      visit(children[name] as CompartmentData, path);
    }
  };
  visit(root, '');
  return paths;
}

/** Size of `{"values":…}` or `{"values":…,"children":{"name":…}}` exactly as JSON.stringify writes it. */
function measure(
  compartment: CompartmentData,
  path: string,
  out: Array<{ path: string; bytes: number }>,
): number {
  const slot = { path, bytes: 0 };
  out.push(slot);
  // '{"values":' + values + '}', with ',"children":' + '{' + members + '}' before the '}' if any
  let bytes = 10 + utf8Length(JSON.stringify(compartment.values)) + 1;
  const children = compartment.children;
  if (children !== undefined) {
    bytes += 12 + 2;
    let members = 0;
    for (const name of Object.keys(children)) {
      const childPath = path === '' ? name : `${path}/${name}`;
      const child = children[name] as CompartmentData;
      bytes +=
        (members++ > 0 ? 1 : 0) + utf8Length(JSON.stringify(name)) + 1 + measure(child, childPath, out);
    }
  }
  slot.bytes = bytes;
  return bytes;
}

function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

function walk(root: CompartmentData, names: readonly string[]): CompartmentData | undefined {
  let compartment: CompartmentData | undefined = root;
  for (const name of names) {
    compartment = ownValue(compartment.children, name);
    if (compartment === undefined) return undefined;
  }
  return compartment;
}

/** An own property only: `children.toString` must not find Object.prototype's. */
function ownValue<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

function isEmpty(record: object): boolean {
  for (const key in record) if (Object.hasOwn(record, key)) return false;
  return true;
}

function parsePath(path: string): string[] {
  if (typeof path !== 'string') throw new CompartmentPathError(String(path), 'must be a string');
  if (path === '') return [];
  if (path.length > MAX_DEPTH * 65) throw new CompartmentPathError(path.slice(0, 64), 'too long');
  const names = path.split('/');
  if (names.length > MAX_DEPTH) throw new CompartmentPathError(path, `deeper than ${MAX_DEPTH} levels`);
  for (const name of names) {
    if (name === '') throw new CompartmentPathError(path, 'empty segment');
    if (!SEGMENT.test(name)) {
      throw new CompartmentPathError(path, `segment ${JSON.stringify(name)} is not 1-64 of [A-Za-z0-9_-]`);
    }
    if (RESERVED.has(name))
      throw new CompartmentPathError(path, `segment ${JSON.stringify(name)} is reserved`);
  }
  return names;
}

function checkKey(path: string, key: string): void {
  if (typeof key !== 'string') throw new CompartmentPathError(path, 'key must be a string');
  if (RESERVED.has(key)) throw new CompartmentPathError(path, `key ${JSON.stringify(key)} is reserved`);
}

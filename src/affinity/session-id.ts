import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** 16 random bytes = 128 bits, OWASP's floor for session id entropy. */
const KEY_BYTES = 16;
const KEY_CHARS = 22; // base64url of 16 bytes
const ROUTE_CHARS = 8; // base64url of 6 bytes
const MAC_BYTES = 16;
const MAC_CHARS = 22; // base64url of MAC_BYTES
/** `<key>.<route>.<mac>` */
export const SESSION_ID_LENGTH = KEY_CHARS + 1 + ROUTE_CHARS + 1 + MAC_CHARS;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A verified session id, split into its parts. */
export interface ParsedSessionId {
  /** The random part: the session's identity, unchanged when a failover moves it. */
  readonly key: string;
  /** The opaque route token of the node it was issued for. */
  readonly route: string;
}

/**
 * Mints and verifies client-facing session ids `<key>.<route>.<mac>`.
 *
 * The id carries its route (an opaque token derived from the node id, never an address,
 * like Tomcat's jvmRoute) and an HMAC over key and route, so any proxy worker can route a
 * healthy session and reject a forged or altered id without a lookup or shared state.
 */
export class SessionIdCodec {
  readonly #secret: Buffer;
  /**
   * Ids that passed verification, so a session's later requests cost a Map lookup instead of
   * an HMAC (measured: the HMAC was ~4% of a proxied request's CPU). Only verified ids enter,
   * so a flood of forged ids cannot fill it; bounded, and simply cleared when full.
   */
  readonly #verified = new Map<string, ParsedSessionId>();
  static readonly VERIFIED_CACHE_SIZE = 50_000;

  constructor(secret: Buffer) {
    if (secret.length < 16) throw new Error('session id secret must be at least 16 bytes');
    this.#secret = secret;
  }

  /** The route token of a node: stable for a given secret and node id, reveals neither. */
  routeOf(nodeId: string): string {
    return createHmac('sha256', this.#secret)
      .update(`route:${nodeId}`)
      .digest()
      .subarray(0, 6)
      .toString('base64url');
  }

  /** A fresh id routed to `route`. */
  mint(route: string): string {
    return this.withRoute(randomBytes(KEY_BYTES).toString('base64url'), route);
  }

  /** The id of an existing session `key` re-routed to `route` (failover re-issues it). */
  withRoute(key: string, route: string): string {
    return `${key}.${route}.${this.#mac(key, route).toString('base64url')}`;
  }

  /** Verifies an id; undefined for anything malformed, altered or not signed by us. */
  parse(id: string): ParsedSessionId | undefined {
    if (id.length !== SESSION_ID_LENGTH) return undefined;
    const cached = this.#verified.get(id);
    if (cached !== undefined) return cached;
    if (id.charCodeAt(KEY_CHARS) !== 46 || id.charCodeAt(KEY_CHARS + 1 + ROUTE_CHARS) !== 46)
      return undefined;
    if (
      !BASE64URL.test(id.slice(0, KEY_CHARS)) ||
      !BASE64URL.test(id.slice(KEY_CHARS + 1, KEY_CHARS + 1 + ROUTE_CHARS))
    ) {
      return undefined;
    }
    const key = id.slice(0, KEY_CHARS);
    const route = id.slice(KEY_CHARS + 1, KEY_CHARS + 1 + ROUTE_CHARS);
    // Compared as canonical text, not decoded bytes: the last base64url character carries
    // padding bits, so decoding would accept several spellings of one MAC.
    const given = Buffer.from(id.slice(KEY_CHARS + ROUTE_CHARS + 2), 'latin1');
    const expected = Buffer.from(this.#mac(key, route).toString('base64url'), 'latin1');
    // Constant-time compare: a timing side channel would let a client forge MACs byte by byte.
    if (given.length !== MAC_CHARS || !timingSafeEqual(given, expected)) return undefined;
    // A copy, not a slice: V8 keeps a sliced string's whole parent alive (here the Cookie
    // header), and these strings live on in the cache and the affinity table.
    const own = Buffer.from(id, 'latin1').toString('latin1');
    const parsed = {
      key: own.slice(0, KEY_CHARS),
      route: own.slice(KEY_CHARS + 1, KEY_CHARS + 1 + ROUTE_CHARS),
    };
    if (this.#verified.size >= SessionIdCodec.VERIFIED_CACHE_SIZE) this.#verified.clear();
    this.#verified.set(own, parsed);
    return parsed;
  }

  #mac(key: string, route: string): Buffer {
    return createHmac('sha256', this.#secret).update(`${key}.${route}`).digest().subarray(0, MAC_BYTES);
  }
}

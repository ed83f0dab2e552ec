import { serialize } from 'cookie';

/**
 * Finds the session id a request carries, by cookie or URL parameter, and writes the
 * `Set-Cookie` value that issues one. Scans for the one name it needs instead of parsing
 * every cookie into an object: this runs on every request.
 */
export class SessionCookie {
  readonly name: string;
  readonly #cookiePrefix: string;
  readonly #attributes: string;
  readonly #paramNeedle: string;

  constructor(options: { cookieName: string; urlParam: string; secure: boolean }) {
    this.name = options.cookieName;
    this.#cookiePrefix = `${options.cookieName}=`;
    this.#paramNeedle = `${options.urlParam}=`;
    // Serialised once: the attributes never change per request.
    const sample = serialize(options.cookieName, 'v', {
      path: '/',
      httpOnly: true,
      sameSite: 'lax',
      secure: options.secure,
    });
    this.#attributes = sample.slice(this.#cookiePrefix.length + 1);
  }

  /** The `Set-Cookie` header value that gives the client `id`. */
  serialize(id: string): string {
    return this.#cookiePrefix + id + this.#attributes;
  }

  /**
   * The cookie's value; undefined when absent. When it appears twice (cookie tossing: a
   * sibling domain planting a second SESSIONID must not choose the session), `''`: never a
   * valid id, so the request counts as carrying a rejected one.
   */
  fromCookieHeader(header: string | undefined): string | undefined {
    if (header === undefined) return undefined;
    const start = findName(header, this.#cookiePrefix, 0);
    if (start === -1) return undefined;
    const valueStart = start + this.#cookiePrefix.length;
    let end = header.indexOf(';', valueStart);
    if (end === -1) end = header.length;
    if (findName(header, this.#cookiePrefix, end) !== -1) return '';
    let value = header.slice(valueStart, end).trim();
    if (value.length > 1 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) {
      value = value.slice(1, -1);
    }
    return value;
  }

  /**
   * The URL parameter's value, for clients without cookies; `''` when it appears twice (the
   * proxy and an app reading the query could otherwise pick different ones).
   */
  fromUrl(url: string): string | undefined {
    const query = url.indexOf('?');
    if (query === -1) return undefined;
    const at = this.#findParam(url, query + 1);
    if (at === -1) return undefined;
    const valueStart = at + this.#paramNeedle.length;
    let end = url.indexOf('&', valueStart);
    const hash = url.indexOf('#', valueStart);
    if (end === -1 || (hash !== -1 && hash < end)) end = hash === -1 ? url.length : hash;
    if (end < url.length && url.charCodeAt(end) === 38 && this.#findParam(url, end) !== -1) return '';
    return url.slice(valueStart, end);
  }

  /** Index of `param=` right after `?` or `&`, from `from`, before any `#`; -1 if none. */
  #findParam(url: string, from: number): number {
    let at = url.indexOf(this.#paramNeedle, from);
    while (at !== -1) {
      const before = url.charCodeAt(at - 1);
      if (before === 63 /* ? */ || before === 38 /* & */) {
        const hash = url.indexOf('#', from);
        return hash !== -1 && hash < at ? -1 : at;
      }
      at = url.indexOf(this.#paramNeedle, at + 1);
    }
    return -1;
  }
}

/** Index of `name=` at a cookie boundary (start, or after `;` and optional spaces), from `from`. */
function findName(header: string, prefix: string, from: number): number {
  let at = header.indexOf(prefix, from);
  while (at !== -1) {
    let i = at - 1;
    while (i >= 0 && header.charCodeAt(i) === 32) i--;
    if (i < 0 || header.charCodeAt(i) === 59 /* ; */) return at;
    at = header.indexOf(prefix, at + 1);
  }
  return -1;
}

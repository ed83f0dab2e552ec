import { INTERNAL_PATH_PREFIX } from '../protocol.js';

const MARKER = INTERNAL_PATH_PREFIX.slice(1, -1); // "_stickylb"
// Regexes rather than slice/toLowerCase: they test the path part without allocating.
const RAW = new RegExp(`^[^?#]*${MARKER}`, 'i');
const ESCAPED = /^[^?#]*%/;

/**
 * Whether a request target could reach a node-internal route. Checks the raw path and,
 * when it holds percent-escapes, the decoded path too (`/%5Fstickylb/…`), case-folded,
 * so no spelling a node's router might normalise slips through.
 */
export function isInternalPath(url: string): boolean {
  if (RAW.test(url)) return true;
  if (!ESCAPED.test(url)) return false;
  try {
    return RAW.test(decodeURIComponent(url.split(/[?#]/, 1)[0] as string));
  } catch {
    return true; // malformed escapes: refuse rather than guess how the node decodes them
  }
}

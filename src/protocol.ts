/*
 * The private protocol between the proxy and its nodes, named in one place. The proxy
 * strips every client-sent copy of these headers (and their `_` variants) and answers 404
 * for the internal route prefix, so a client can neither forge them nor reach those routes.
 */

/** Request header: the client-facing session id (`SESSIONID` value) the proxy routed by. */
export const SESSION_HEADER = 'x-stickylb-session';

/**
 * Request header, value `1`: the proxy minted the session id for this request, so the node
 * has nothing to restore when the session is missing from its store (it skips the read).
 */
export const SESSION_NEW_HEADER = 'x-stickylb-session-new';

/**
 * Response header: the node used the session for this request (so the proxy keeps it); its
 * value is the session's version after the request.
 */
export const SESSION_USED_HEADER = 'x-stickylb-session-used';

/** Routes under this prefix are node-internal (replication, admin of the node). */
export const INTERNAL_PATH_PREFIX = '/_stickylb/';

/** Header carrying the replication shared secret on internal routes. */
export const SECRET_HEADER = 'x-stickylb-secret';

/**
 * The store key of a session: the random part of its client-facing id. The id is
 * `<random>.<route>.<mac>`; the route changes when a failover moves the session, the
 * key never does, so replicas and node stores are keyed by it.
 */
export function sessionKeyOf(sessionId: string): string {
  const dot = sessionId.indexOf('.');
  return dot === -1 ? sessionId : sessionId.slice(0, dot);
}

import type { IncomingHttpHeaders } from 'node:http';

/*
 * Hop-by-hop headers (RFC 9110 §7.6.1) describe the client↔proxy connection, not the
 * request: forwarding them would, e.g., let a client's `Connection: close` tear down the
 * proxy's kept-alive socket to the node. Proxy-Authorization is for us, never for a node.
 */
const HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'proxy-authorization'] as const;

/** Headers that only we may set toward a node. */
const FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'forwarded'] as const;

/**
 * Rewrites a request's headers in place before it is forwarded: strips hop-by-hop headers
 * and every header listed in `Connection:`, strips client-sent copies of our internal
 * `x-stickylb-*` headers (also spelt with `_`, which some frameworks map to `-`), and sets
 * X-Forwarded-For/-Proto/-Host. Client-sent X-Forwarded-* survive only from a trusted
 * proxy, which gets our hop appended.
 */
export function sanitizeRequestHeaders(
  headers: IncomingHttpHeaders,
  remoteAddress: string,
  isTrustedPeer: boolean,
  isEncrypted: boolean,
  isUpgrade: boolean,
): void {
  const connection = headers.connection;
  if (connection !== undefined) {
    for (const token of connection.split(',')) {
      const name = token.trim().toLowerCase();
      // An upgrade keeps `Connection: upgrade` and `Upgrade`; everything else listed is dropped.
      if (name && !(isUpgrade && name === 'upgrade')) delete headers[name];
    }
    if (!isUpgrade) delete headers.connection;
  }
  if (!isUpgrade) delete headers.upgrade;
  for (const name of HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name];

  for (const name in headers) {
    // Cheap first-character test: this loop runs for every header of every request.
    const first = name.charCodeAt(0);
    if ((first === 120 || first === 88) && isInternalHeaderName(name)) delete headers[name];
  }

  const priorFor = isTrustedPeer ? headers['x-forwarded-for'] : undefined;
  const priorProto = isTrustedPeer ? headers['x-forwarded-proto'] : undefined;
  const priorHost = isTrustedPeer ? headers['x-forwarded-host'] : undefined;
  if (!isTrustedPeer) for (const name of FORWARDED) if (headers[name] !== undefined) delete headers[name];
  headers['x-forwarded-for'] = priorFor ? `${priorFor}, ${remoteAddress}` : remoteAddress;
  headers['x-forwarded-proto'] = priorProto ?? (isEncrypted ? 'https' : 'http');
  const host = priorHost ?? headers.host;
  if (host !== undefined) headers['x-forwarded-host'] = host;
}

/** `x-stickylb-…` in any case, with `-` or `_`. */
export function isInternalHeaderName(name: string): boolean {
  return name.length > 10 && /^x[-_]stickylb[-_]/i.test(name);
}

/** Strips an IPv4-mapped IPv6 prefix so `::ffff:127.0.0.1` compares equal to `127.0.0.1`. */
export function normalizeAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

import type { Config } from '../config/index.js';

/** The URL nodes send replication to: the proxy's replication listener (a wildcard bind is reached on loopback). */
export function replicaEndpointOf(config: Config): string {
  const { host, port } = config.replication.listen;
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

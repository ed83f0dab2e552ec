import { request as httpRequest, type Agent } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Where a node's requests go, parsed once from its URL (not per request, as http-proxy does). */
export interface UpstreamTarget {
  readonly request: typeof httpRequest;
  readonly host: string;
  readonly port: number;
  /** `Host` for a client request that carried none (HTTP/1.0). */
  readonly hostHeader: string;
  readonly agent: Agent | undefined;
}

/** The target of a node URL (`http://host:port/`, checked by the config schema). */
export function upstreamTargetOf(url: string, agent: Agent): UpstreamTarget {
  const parsed = new URL(url);
  const isHttps = parsed.protocol === 'https:';
  return {
    request: isHttps ? httpsRequest : httpRequest,
    host: parsed.hostname.startsWith('[') ? parsed.hostname.slice(1, -1) : parsed.hostname,
    port: Number(parsed.port) || (isHttps ? 443 : 80),
    hostHeader: parsed.host,
    // The shared agent speaks plain HTTP; an https node uses Node's global keep-alive agent.
    agent: isHttps ? undefined : agent,
  };
}

import type { AffinityView, SessionCookie, SessionIdCodec } from '../affinity/index.js';
import type { BalancingPolicy } from '../balancing/index.js';
import { NoHealthyNodeError } from '../errors.js';
import type { NodeRegistry, ProxyNode } from '../nodes/index.js';
import type { SessionStore } from '../session/index.js';

/** Where one request goes and under which session id. */
export interface RouteDecision {
  node: ProxyNode;
  /** The client-facing id passed to the node (and set as cookie when `setCookie`). */
  sessionId: string;
  /** The session's stable key (random part of the id). */
  key: string;
  /** Minted for this request: kept only if the node uses the session. */
  isNew: boolean;
  /** The client must be given `sessionId` (new id, or the session moved to another route). */
  setCookie: boolean;
  /** The client's address, kept when client-IP affinity may remember this session. */
  clientIp: string | undefined;
  /**
   * The session's node cannot serve it (down, or gone from the config): the failover
   * manager must move it, state and all, before the request is forwarded. `node` is then
   * the node it is on (or a placeholder when that node is unknown) and `fromNodeId` its id.
   */
  mustMove: boolean;
  fromNodeId: string;
}

/** Counters of ids the router refused. */
export interface RouterCounters {
  /** Ids that failed verification (malformed, altered, forged, duplicated): treated as none. */
  rejectedIds: number;
}

/**
 * Decides, per request, which node serves it. A verified id routes by its route token
 * (no lookup) unless a failover moved the session; a request without one gets a fresh id
 * on a node chosen by the balancing policy. Cookie beats URL parameter when both are
 * valid: a link carrying someone else's `?sessionId=` must not move a browser that has its
 * own session into that one (session fixation by link).
 */
export class Router {
  readonly counters: RouterCounters = { rejectedIds: 0 };
  readonly #codec: SessionIdCodec;
  readonly #cookie: SessionCookie;
  readonly #registry: NodeRegistry;
  readonly #affinity: AffinityView;
  readonly #policy: BalancingPolicy;
  readonly #clientIps: SessionStore<string> | undefined;

  constructor(options: {
    codec: SessionIdCodec;
    cookie: SessionCookie;
    registry: NodeRegistry;
    affinity: AffinityView;
    policy: BalancingPolicy;
    /** Client IP → session id, for clients that carry no id (off unless configured). */
    clientIps?: SessionStore<string> | undefined;
  }) {
    this.#codec = options.codec;
    this.#cookie = options.cookie;
    this.#registry = options.registry;
    this.#affinity = options.affinity;
    this.#policy = options.policy;
    this.#clientIps = options.clientIps;
  }

  /** Routes a request by its target and Cookie header; throws NoHealthyNodeError when no node can take it. */
  route(url: string, cookieHeader: string | undefined, clientIp: string): RouteDecision {
    let sessionId = this.#cookie.fromCookieHeader(cookieHeader);
    let parsed = sessionId === undefined ? undefined : this.#codec.parse(sessionId);
    if (sessionId !== undefined && parsed === undefined) this.counters.rejectedIds++;
    let fromCookie = parsed !== undefined;
    if (parsed === undefined) {
      sessionId = this.#cookie.fromUrl(url);
      parsed = sessionId === undefined ? undefined : this.#codec.parse(sessionId);
      if (sessionId !== undefined && parsed === undefined) this.counters.rejectedIds++;
    }
    if (parsed === undefined && this.#clientIps !== undefined) {
      sessionId = this.#clientIps.get(clientIp)?.value;
      parsed = sessionId === undefined ? undefined : this.#codec.parse(sessionId);
      fromCookie = false;
    }

    if (parsed !== undefined && sessionId !== undefined) {
      let node = this.#registry.byRoute(parsed.route);
      if (this.#affinity.hasMoved) {
        const movedTo = this.#affinity.movedNodeOf(parsed.key);
        if (movedTo !== undefined) node = this.#registry.get(movedTo);
      }
      if (node !== undefined && node.isServing) {
        const isCurrent = node.route === parsed.route;
        return {
          node,
          sessionId: isCurrent ? sessionId : this.#codec.withRoute(parsed.key, node.route),
          key: parsed.key,
          isNew: false,
          // Re-issue when the id names another node, or when a cookie-capable client came by URL/IP.
          setCookie: !isCurrent || !fromCookie,
          clientIp: undefined,
          mustMove: false,
          fromNodeId: '',
        };
      }
      // The session's node is down or gone: the failover manager moves it first (rare path).
      const fromNodeId = node?.id ?? '';
      return {
        node: node ?? this.pickNode(),
        sessionId,
        key: parsed.key,
        isNew: false,
        setCookie: true,
        clientIp: undefined,
        mustMove: true,
        fromNodeId,
      };
    }

    const node = this.pickNode();
    const id = this.#codec.mint(node.route);
    return {
      node,
      sessionId: id,
      key: id.slice(0, id.indexOf('.')),
      isNew: true,
      setCookie: true,
      clientIp: this.#clientIps === undefined ? undefined : clientIp,
      mustMove: false,
      fromNodeId: '',
    };
  }

  /** Sends a routed request to another node instead (after a move or a refused connection). */
  reroute(decision: RouteDecision, node: ProxyNode): void {
    decision.node = node;
    decision.sessionId = this.#codec.withRoute(decision.key, node.route);
    decision.setCookie = true;
    decision.mustMove = false;
  }

  /** Remembers the session a client IP was given (client-IP affinity). */
  rememberClientIp(clientIp: string, sessionId: string): void {
    if (this.#clientIps === undefined) return;
    if (this.#clientIps.peek(clientIp) === undefined) this.#clientIps.create(clientIp, sessionId);
  }

  /** A node for a new session, by the balancing policy (optionally not `excludingId`). */
  pickNode(excludingId?: string): ProxyNode {
    let candidates = this.#registry.candidates;
    // Rare path (retry, failover target): a filtered copy is fine here.
    if (excludingId !== undefined) candidates = candidates.filter((node) => node.id !== excludingId);
    if (candidates.length === 0) throw new NoHealthyNodeError();
    return this.#policy.pickNode(candidates);
  }
}

import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import fastifyPlugin from 'fastify-plugin';
import { SessionMovedError } from '../errors.js';
import { SESSION_HEADER, SESSION_NEW_HEADER, SESSION_USED_HEADER, sessionKeyOf } from '../protocol.js';
import type { CompartmentData, SessionStore } from '../session/index.js';
import { internalRoutes } from './internal-routes.js';
import { SessionHandle, type SessionWrite } from './session-handle.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** This request's session; created in the store only when first used. */
    readonly session: SessionHandle;
  }
}

/** Options of `sessionPlugin`. */
export interface SessionPluginOptions {
  /** The node's session store; the plugin never starts or stops it. */
  store: SessionStore<CompartmentData>;
  /** Request header carrying the client-facing session id (set by the proxy). */
  headerName?: string;
  /**
   * Called with the request's last write before its response leaves, and awaited: the seam
   * for synchronous replication (a write the client saw acknowledged is already replicated).
   * A rejection turns the response into that error.
   */
  onWrite?: (write: SessionWrite) => Promise<void>;
  /**
   * The replication secret. When set, the plugin also serves the node-internal routes the
   * proxy's failover manager calls (install moved-in sessions, evict moved-away ones).
   */
  internalSecret?: string;
  /**
   * Brings back a session this node should hold but does not: it restarted, and lost its
   * memory, faster than the proxy's health checks noticed, so the proxy still sends the
   * session here. Called before the handler for a request whose session is missing from the
   * store, unless the proxy minted the id for this request (SESSION_NEW_HEADER); it may install
   * the session (`store.put`, e.g. from its replica: SessionRestorer), so the request goes on
   * with the session's state instead of an empty one. Concurrent requests of one session share
   * a call. After a rejection the request goes on, and its first use of the session throws
   * that error (503 for an unreachable replica store): starting the session over would lose it
   * for good, but a request that never uses it (an asset) is served.
   */
  restore?: (key: string) => Promise<void>;
  /** More of this node's numbers for the proxy's admin (e.g. its replication queue), served with the store metrics. */
  nodeMetrics?: () => Record<string, unknown>;
}

/** Ids are base64url parts joined by dots; anything else never reaches the store. */
const SESSION_ID_PATTERN = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,255}$/;
const NO_ID_MESSAGE = 'no session id: requests reach nodes through the stickylb proxy';

const kHandle = Symbol('stickylb.sessionHandle');
const kRestoreFailure = Symbol('stickylb.restoreFailure');
type RequestWithHandle = FastifyRequest & {
  [kHandle]: SessionHandle | null;
  /** Why the session could not be restored: thrown on its first use, not before. */
  [kRestoreFailure]: Error | null;
};

function createHandle(
  store: SessionStore<CompartmentData>,
  header: string | string[] | undefined,
  writeThrough: ((write: SessionWrite) => Promise<void>) | undefined,
  unavailable: Error | null,
): SessionHandle {
  if (header === undefined || header === '') return new SessionHandle(store, { problem: NO_ID_MESSAGE });
  if (typeof header !== 'string' || !SESSION_ID_PATTERN.test(header)) {
    return new SessionHandle(store, { problem: 'malformed session id header' });
  }
  return new SessionHandle(store, { id: header, key: sessionKeyOf(header) }, writeThrough, unavailable);
}

/**
 * For a WebSocket handler, whose writes have no answer to wait on: each is handed over as it is
 * made. One that fails (the replica store unreachable, the session moved to another node) also
 * closes the connection, as a hang-up or an error answer would end an HTTP request: the
 * client reconnects through the proxy, to the session's node.
 */
function writeThroughOf(
  request: FastifyRequest,
  onWrite: ((write: SessionWrite) => Promise<void>) | undefined,
): ((write: SessionWrite) => Promise<void>) | undefined {
  if (onWrite === undefined || !isWebSocketUpgrade(request)) return undefined;
  return (write) =>
    onWrite(write).catch((error: unknown) => {
      request.raw.socket?.destroy();
      throw error;
    });
}

/** A WebSocket handshake: its handler runs after the 101, on a socket that never passes `onSend`. */
function isWebSocketUpgrade(request: FastifyRequest): boolean {
  const upgrade = request.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

const plugin: FastifyPluginCallback<SessionPluginOptions> = (app, options, done) => {
  const { store, onWrite } = options;
  if (options.internalSecret !== undefined) {
    void app.register(internalRoutes, {
      store,
      secret: options.internalSecret,
      nodeMetrics: options.nodeMetrics,
    });
  }
  const headerName = (options.headerName ?? SESSION_HEADER).toLowerCase();

  // The handle is built on first use of `request.session`, so a request that never looks
  // at its session (health checks, static files) allocates nothing and stores nothing.
  app.decorateRequest(kHandle, null);
  app.decorateRequest(kRestoreFailure, null);
  app.decorateRequest('session', {
    getter(this: FastifyRequest): SessionHandle {
      const request = this as RequestWithHandle;
      return (request[kHandle] ??= createHandle(
        store,
        request.headers[headerName],
        writeThroughOf(request, onWrite),
        request[kRestoreFailure],
      ));
    },
  });

  if (options.restore !== undefined) {
    const restore = options.restore;
    // Concurrent requests of one missing session (a page's assets after a restart) share a read.
    const restoring = new Map<string, Promise<void>>();
    app.addHook('onRequest', (request, _reply, done) => {
      const header = request.headers[headerName];
      // The common case costs two header reads and a store lookup: the session is here.
      if (typeof header !== 'string' || request.headers[SESSION_NEW_HEADER] !== undefined) {
        done();
        return;
      }
      const key = sessionKeyOf(header);
      // A restore of this session under way: wait for it, even with the copy already in the
      // store (it may yet drop it, and a write meanwhile would be lost with it).
      let pending = restoring.size > 0 ? restoring.get(key) : undefined;
      if (pending === undefined) {
        if (store.peek(key) !== undefined || !SESSION_ID_PATTERN.test(header)) {
          done();
          return;
        }
        pending = restore(key).finally(() => restoring.delete(key));
        restoring.set(key, pending);
      }
      // A failed restore fails the request only if it uses the session (its handle throws):
      // a page or an asset that never looks at it is served as before.
      pending.then(
        () => done(),
        (error: unknown) => {
          (request as RequestWithHandle)[kRestoreFailure] =
            error instanceof Error ? error : new Error(String(error));
          done();
        },
      );
    });
  }

  app.addHook(
    'onSend',
    (
      request: FastifyRequest,
      reply: FastifyReply,
      payload: unknown,
      next: (error?: Error | null, value?: unknown) => void,
    ) => {
      const handle = (request as RequestWithHandle)[kHandle];
      if (handle === null) {
        next(null, payload);
        return;
      }
      // Tells the proxy the session is in use, so it keeps it (it strips the header).
      // Its value is the session's version after this request: the proxy keeps the last one it
      // saw, to prove later that a failed request left no trace (safe replay).
      if (handle.isUsed) reply.header(SESSION_USED_HEADER, String(handle.storedVersion));
      // Taken before the await: if onWrite fails, the error reply passes here again.
      const write = handle.takePendingWrite();
      if (write === undefined || onWrite === undefined) {
        next(null, payload);
        return;
      }
      onWrite(write).then(
        () => next(null, payload),
        (error: unknown) => {
          if (error instanceof SessionMovedError) {
            // The session moved to another node (failover) while this request ran here: the
            // write was refused, never acknowledged. Hang up rather than answer: the proxy then
            // proves the session unchanged and replays the request on the new owner.
            request.raw.socket?.destroy();
            return;
          }
          next(error instanceof Error ? error : new Error(String(error)));
        },
      );
    },
  );
  done();
};

/**
 * Gives every request of the app `request.session`, backed by the node's session store and
 * keyed by the id the proxy passes in `headerName`. Apps using it know nothing of the proxy.
 */
export const sessionPlugin = fastifyPlugin(plugin, { fastify: '5.x', name: 'stickylb-session' });

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { UnauthorizedError, VersionConflictError } from '../errors.js';
import { SECRET_HEADER } from '../protocol.js';
import { compartmentSizes, type CompartmentData, type SessionStore } from '../session/index.js';

/** A session the proxy installs on this node after moving it here (failover, evacuate, rebalance). */
interface InstalledSession {
  key: string;
  version: number;
  data: CompartmentData;
  lastAccessAt: number;
}

const KEY = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;

/** Sessions sampled to rank compartments by size: bounded work per call, whatever the store holds. */
const COMPARTMENT_SAMPLE = 1000;
const TOP_COMPARTMENTS = 8;

/** The biggest compartments over a sample of sessions: where session memory goes. */
function topCompartments(
  store: SessionStore<CompartmentData>,
): Array<{ path: string; bytes: number; sessions: number }> {
  const byPath = new Map<string, { bytes: number; sessions: number }>();
  let sampled = 0;
  for (const entry of store.entries()) {
    if (++sampled > COMPARTMENT_SAMPLE) break;
    for (const { path, bytes } of compartmentSizes(entry.value)) {
      if (path === '') continue; // the root holds everything: not a compartment of interest
      const total = byPath.get(path) ?? { bytes: 0, sessions: 0 };
      total.bytes += bytes;
      total.sessions++;
      byPath.set(path, total);
    }
  }
  return [...byPath]
    .map(([path, total]) => ({ path, ...total }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, TOP_COMPARTMENTS);
}

/**
 * Node-internal routes the proxy's failover manager calls, under `/_stickylb/` (which the
 * proxy never forwards from clients) and authenticated with the replication secret:
 * install moved-in sessions, evict sessions that moved away while this node was cut off.
 */
export const internalRoutes: FastifyPluginAsync<{
  store: SessionStore<CompartmentData>;
  secret: string;
  nodeMetrics?: (() => Record<string, unknown>) | undefined;
}> = async (app, { store, secret, nodeMetrics }) => {
  const expected = createHash('sha256').update(secret).digest();
  app.addHook('onRequest', async (request: FastifyRequest) => {
    const given = request.headers[SECRET_HEADER];
    const digest = createHash('sha256')
      .update(typeof given === 'string' ? given : '')
      .digest();
    // Constant-time compare of equal-length digests.
    if (typeof given !== 'string' || !timingSafeEqual(digest, expected)) throw new UnauthorizedError();
  });

  app.post<{ Body: { sessions: InstalledSession[] } }>(
    '/_stickylb/sessions/install',
    {
      bodyLimit: 64 * 1024 * 1024,
      schema: {
        body: {
          type: 'object',
          required: ['sessions'],
          additionalProperties: false,
          properties: {
            sessions: {
              type: 'array',
              maxItems: 10_000,
              items: {
                type: 'object',
                required: ['key', 'version', 'data'],
                properties: {
                  key: KEY,
                  version: { type: 'integer', minimum: 1 },
                  data: { type: 'object' },
                  lastAccessAt: { type: 'integer', minimum: 0 },
                },
              },
            },
          },
        },
      },
    },
    async (request) => {
      let installed = 0;
      let stale = 0;
      for (const session of request.body.sessions) {
        try {
          store.put(session.key, session.data, session.version, session.lastAccessAt);
          installed++;
        } catch (error) {
          // This node already holds the same or a newer version: keep it.
          if (!(error instanceof VersionConflictError)) throw error;
          stale++;
        }
      }
      return { installed, stale };
    },
  );

  // The node's store metrics, for the proxy's admin API and dashboard.
  app.get('/_stickylb/metrics', async () => ({
    ...nodeMetrics?.(),
    store: store.metrics(),
    compartments: topCompartments(store),
  }));

  app.post<{ Body: { keys: string[] } }>(
    '/_stickylb/sessions/evict',
    {
      schema: {
        body: {
          type: 'object',
          required: ['keys'],
          additionalProperties: false,
          properties: { keys: { type: 'array', maxItems: 1_000_000, items: KEY } },
        },
      },
    },
    async (request) => {
      let evicted = 0;
      for (const key of request.body.keys) if (store.delete(key)) evicted++;
      return { evicted };
    },
  );
};

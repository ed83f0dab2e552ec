import type { FastifyPluginAsync } from 'fastify';
import { getValue, setValue } from '../../src/session/index.js';

/** The counter lives in the root compartment under this key. */
export const COUNT_KEY = 'count';

function countOf(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

/**
 * Contract routes `GET|POST /api/counter` and `GET /api/session`: the smallest stateful app,
 * what the failover tests and benchmarks drive.
 */
export const counterRoutes: FastifyPluginAsync<{ nodeId: string }> = async (app, { nodeId }) => {
  app.get('/api/counter', async (request) => {
    const count = countOf(request.session.get(COUNT_KEY));
    return { sessionId: request.session.id, node: nodeId, count };
  });

  app.post('/api/counter', async (request) => {
    const count = await request.session.update((data) => {
      const next = countOf(getValue(data, '', COUNT_KEY)) + 1;
      setValue(data, '', COUNT_KEY, next);
      return next;
    });
    return { sessionId: request.session.id, node: nodeId, count };
  });

  app.get('/api/session', async (request) => {
    const { session } = request;
    return { sessionId: session.id, node: nodeId, version: session.version, data: session.data };
  });
};

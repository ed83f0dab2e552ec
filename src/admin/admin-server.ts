import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { ForbiddenError, NotFoundError, StickyError, UnauthorizedError } from '../errors.js';
import type { MoveReport } from '../failover/index.js';
import type { Logger } from '../log.js';
import { isTokenValid, tokenOf } from './admin-auth.js';

/** What the admin API reads and acts on; the StickyLb instance provides it. */
export interface AdminControl {
  state(): AdminState;
  drain(nodeId: string): boolean;
  undrain(nodeId: string): boolean;
  evacuate(nodeId: string): Promise<MoveReport>;
  rebalance(): Promise<MoveReport>;
  hasNode(nodeId: string): boolean;
}

/** `GET /api/state` (contract: nodes[].id/url/state/sessions, sessions.total). */
export interface AdminState {
  nodes: Array<{
    id: string;
    url: string;
    state: 'up' | 'down' | 'draining';
    sessions: number;
    weight: number;
    healthy: boolean;
    draining: boolean;
    inFlight: number;
    requests: number;
  }>;
  sessions: { total: number };
  [extra: string]: unknown;
}

/**
 * The admin listener: JSON API (and, later, dashboard, SSE and metrics). With a token
 * configured every route requires it; state-changing routes are POST only and refuse
 * cross-site requests (Origin / Sec-Fetch-Site), so a page the operator visits cannot
 * drain their nodes.
 */
export async function buildAdminServer(options: {
  control: AdminControl;
  token?: string | undefined;
  logger: Logger;
}): Promise<FastifyInstance> {
  const { control, token } = options;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps FastifyInstance's default generics.
    loggerInstance: options.logger.child({ component: 'admin' }) as FastifyBaseLogger,
    disableRequestLogging: true,
  });

  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (token !== undefined) {
      const query = request.query as Record<string, unknown> | undefined;
      if (!isTokenValid(tokenOf(request.headers.authorization, query?.token), token))
        throw new UnauthorizedError();
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') assertSameOrigin(request);
  });

  app.setErrorHandler(
    (error: Error & { statusCode?: number; code?: string }, _request, reply: FastifyReply) => {
      if (error instanceof StickyError) return reply.code(error.statusCode).send(error.toJSON());
      const status =
        error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
      if (status === 500) options.logger.error({ err: error }, 'admin request failed');
      return reply.code(status).send({ error: error.code ?? 'SLB_ADMIN_ERROR', message: error.message });
    },
  );
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(new NotFoundError().toJSON()));

  app.get('/api/state', async () => control.state());

  const nodeAction =
    (action: (id: string) => boolean) => async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const { id } = request.params;
      if (!control.hasNode(id)) throw new NotFoundError(`no node "${id}"`);
      const changed = action(id);
      return { node: id, changed, state: control.state().nodes.find((node) => node.id === id)?.state };
    };
  app.post(
    '/api/nodes/:id/drain',
    nodeAction((id) => control.drain(id)),
  );
  app.post(
    '/api/nodes/:id/undrain',
    nodeAction((id) => control.undrain(id)),
  );
  // Answers when every session is off the node: then it can be stopped with nothing lost.
  app.post<{ Params: { id: string } }>('/api/nodes/:id/evacuate', async (request) => {
    const { id } = request.params;
    if (!control.hasNode(id)) throw new NotFoundError(`no node "${id}"`);
    const report = await control.evacuate(id);
    return { node: id, state: control.state().nodes.find((node) => node.id === id)?.state, report };
  });
  app.post('/api/rebalance', async () => ({ report: await control.rebalance() }));

  return app;
}

/** Refuses a state-changing request sent by a page of another origin (CSRF). */
function assertSameOrigin(request: FastifyRequest): void {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    throw new ForbiddenError(`cross-site request refused (Sec-Fetch-Site: ${site})`);
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null') {
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      throw new ForbiddenError('malformed Origin header');
    }
    if (host !== request.headers.host)
      throw new ForbiddenError(`cross-origin request from ${origin} refused`);
  } else if (origin === 'null') {
    throw new ForbiddenError('opaque-origin request refused');
  }
}

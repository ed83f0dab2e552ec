import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { BadRequestError, errorAnswer, ForbiddenError, NotFoundError, UnauthorizedError } from '../errors.js';
import type { Logger } from '../log.js';
import { answerClientError } from '../proxy/send-error.js';
import type { AdminControl, AdminState } from './admin-control.js';
import { isBearer, isLoopbackHost, isTokenValid, tokenOf } from './admin-auth.js';
import { createAdminMetrics } from './admin-metrics.js';
import { DASHBOARD_HEADERS, DashboardAssets } from './dashboard-assets.js';
import { EventStream } from './event-stream.js';
import { SessionHistory } from './session-history.js';
import { MAX_TEST_SESSIONS } from './test-sessions.js';

export type { AdminControl, AdminState };

/** Options of the admin listener; intervals in ms (tests shorten them). */
export interface AdminServerOptions {
  control: AdminControl;
  token?: string | undefined;
  logger: Logger;
  /** SSE `state` snapshot period (default 1000). */
  snapshotIntervalMs?: number;
  /** SSE heartbeat comment period (default 15 000). */
  heartbeatMs?: number;
  /** Sessions-per-node timeline sample period (default 2000; 300 samples are kept). */
  historyIntervalMs?: number;
}

/** Status codes of Fastify's own client errors (bad JSON, failed schema, wrong content type), as stable codes. */
/**
 * The admin listener: dashboard page and its assets, JSON API, Server-Sent Events,
 * Prometheus metrics. With a token configured every route requires it (`Authorization:
 * Bearer`, or `?token=` where a browser cannot set headers: EventSource, the page's own
 * assets); state-changing routes are POST only and refuse cross-site requests (Origin /
 * Sec-Fetch-Site) unless they carry the token in `Authorization`, so a page the operator
 * visits cannot drain their nodes.
 */
export async function buildAdminServer(options: AdminServerOptions): Promise<FastifyInstance> {
  const { control, token } = options;
  const app = Fastify({
    // pino's Logger is a FastifyBaseLogger; the cast keeps FastifyInstance's default generics.
    loggerInstance: options.logger.child({ component: 'admin' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 4096,
    // What Fastify or Node's parser refuses before a route runs (a malformed URL escape,
    // headers too large, not HTTP): answered in the same JSON shape as every other error.
    frameworkErrors: (error, _request, reply) => {
      const { status, body } = errorAnswer(error);
      void (reply as FastifyReply).code(status).send(body);
    },
    clientErrorHandler: answerClientError,
  });
  const assets = new DashboardAssets();
  const stream = new EventStream({
    events: control.events,
    snapshot: () => liveState(control),
    snapshotIntervalMs: options.snapshotIntervalMs,
    heartbeatMs: options.heartbeatMs,
  });
  const history = new SessionHistory({
    sample: () => control.sessionCounts(),
    intervalMs: options.historyIntervalMs,
  });
  const metrics = createAdminMetrics(control, { sseClients: () => stream.size });
  history.start();
  // Event streams never end by themselves: end them first, or closing would wait for them.
  app.addHook('preClose', async () => stream.close());
  app.addHook('onClose', async () => history.stop());

  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (token !== undefined) {
      const query = request.query as Record<string, unknown> | undefined;
      if (!isTokenValid(tokenOf(request.headers.authorization, query?.token), token))
        throw new UnauthorizedError();
      // The token came in `Authorization` (tokenOf prefers it): a cross-site page cannot send
      // that header without a CORS preflight this listener never grants, nor without knowing
      // the token, so the request is no CSRF and the Origin check is not needed. Skipping it
      // keeps the dashboard working behind a reverse proxy that rewrites Host (Origin then
      // never matches). A token in the query string or sent automatically gets the check.
      if (isBearer(request.headers.authorization)) return;
    } else assertLoopbackHostHeader(request);
    if (request.method !== 'GET' && request.method !== 'HEAD') assertSameOrigin(request);
  });

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply: FastifyReply) => {
    const { status, body, unexpected } = errorAnswer(error);
    if (unexpected) options.logger.error({ err: error }, 'admin request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => reply.code(404).send(new NotFoundError().toJSON()));

  // Dashboard.
  app.get('/', async (request, reply) => {
    const query = request.query as Record<string, unknown>;
    // Only a query token that is itself the token is echoed (the check above may have passed on
    // the Authorization header, whatever the query said), and only when one is configured.
    const pageToken =
      token !== undefined && typeof query.token === 'string' && isTokenValid(query.token, token)
        ? query.token
        : undefined;
    return reply.headers(DASHBOARD_HEADERS).type('text/html; charset=utf-8').send(assets.index(pageToken));
  });
  app.get<{ Params: { file: string } }>('/assets/:file', async (request, reply) => {
    const asset = assets.file(request.params.file);
    if (asset === undefined) throw new NotFoundError();
    return reply.headers(DASHBOARD_HEADERS).type(asset.contentType).send(asset.body);
  });

  // JSON API.
  app.get('/api/state', async () => {
    await control.refreshState();
    return withBootId(withTotals(control.state()), control);
  });
  app.get('/api/history', async () => ({ intervalMs: history.intervalMs, samples: history.samples() }));
  app.get('/api/events', { exposeHeadRoute: false }, (request, reply) => {
    reply.hijack();
    const query = request.query as Record<string, unknown>;
    const header = request.headers['last-event-id'];
    const lastEventId =
      typeof header === 'string'
        ? header
        : typeof query.lastEventId === 'string'
          ? query.lastEventId
          : undefined;
    stream.attach(request.raw, reply.raw, lastEventId);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.render()),
  );

  const nodeAction =
    (action: (id: string) => boolean) => async (request: FastifyRequest<{ Params: { id: string } }>) => {
      const { id } = request.params;
      if (!control.hasNode(id)) throw new NotFoundError(`no node "${id}"`);
      const changed = action(id);
      return { node: id, changed, state: nodeStateOf(control, id) };
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
    return { node: id, state: nodeStateOf(control, id), report };
  });
  app.post('/api/rebalance', async () => ({ report: await control.rebalance() }));
  // Answers when every session is created; the dashboard watches the counts grow meanwhile.
  app.post<{ Body: { count?: unknown } | undefined }>('/api/test-sessions', async (request) => {
    const count = request.body?.count;
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 1 || count > MAX_TEST_SESSIONS)
      throw new BadRequestError(`count: must be an integer from 1 to ${MAX_TEST_SESSIONS}`);
    return control.createTestSessions(count);
  });
  app.post('/api/sweep', async () => control.sweep());

  return app;
}

/** The state the event stream sends each second: events travel as their own SSE events. */
function liveState(control: AdminControl): Omit<AdminState, 'events'> {
  const { events: _events, ...rest } = withBootId(withTotals(control.state()), control);
  return rest;
}

/** Adds `bootId`: with it a dashboard tells a restarted proxy's event ids from the ones it has seen. */
function withBootId(state: AdminState, control: AdminControl): AdminState {
  state.bootId = control.events.bootId;
  return state;
}

/** Adds `totals`: sums over the nodes. */
export function withTotals(state: AdminState): AdminState {
  const totals = { replicas: state.replication.records, inFlight: 0, requests: 0, requestsPerSec: 0 };
  for (const node of state.nodes) {
    totals.inFlight += node.inFlight;
    totals.requests += node.requests;
    totals.requestsPerSec += node.requestsPerSec;
  }
  totals.requestsPerSec = Math.round(totals.requestsPerSec * 10) / 10;
  state.totals = totals;
  return state;
}

function nodeStateOf(control: AdminControl, nodeId: string): string | undefined {
  return control.state().nodes.find((node) => node.id === nodeId)?.state;
}

/**
 * Without a token the listener is loopback-only, and the only defence is that no one else can
 * reach it. A web page on a name the attacker re-points at 127.0.0.1 (DNS rebinding) is
 * same-origin with it, Origin check passed, and could read the state and drive the admin
 * actions: refuse any Host that does not name a loopback address.
 */
function assertLoopbackHostHeader(request: FastifyRequest): void {
  const host = request.headers.host;
  if (host === undefined) return; // HTTP/1.0 without Host: not a browser
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname.replace(/^\[(.*)\]$/, '$1');
  } catch {
    throw new ForbiddenError('malformed Host header');
  }
  if (!isLoopbackHost(name)) {
    throw new ForbiddenError(`Host ${host} refused: without admin.token only loopback names are served`);
  }
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

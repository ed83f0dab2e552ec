import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from '../../src/log.js';
import { sessionPlugin, type SessionPluginOptions } from '../../src/plugin/index.js';
import { SessionStore, type CompartmentData } from '../../src/session/index.js';
import { counterRoutes } from './counter-routes.js';
import { diagnosticRoutes } from './diagnostic-routes.js';
import { handleError, handleNotFound } from './error-handler.js';
import { PAGE_SCRIPT } from './page-script.js';
import { PAGE_CSP, renderPage } from './page.js';
import { shopRoutes } from './shop-routes.js';
import { websocketRoute } from './websocket-route.js';

/** Options of `buildDemoApp`. */
export interface DemoAppOptions {
  /** The node this app runs as (`nodes[].id`), reported by every route. */
  nodeId: string;
  /** The node's session store; the caller owns it. Omitted: a private store the app starts and stops. */
  store?: SessionStore<CompartmentData>;
  /** Parent logger; the app logs at warn or above (no line per request). Omitted: silent. */
  logger?: Logger;
  /** Awaited after each request's session write (the replication seam of the session plugin). */
  onWrite?: SessionPluginOptions['onWrite'];
  /** Fetches a session missing here after a restart (the session plugin's `restore`). */
  restore?: SessionPluginOptions['restore'];
  /** The replication secret: enables the node-internal routes failover uses. */
  internalSecret?: string;
  /** More numbers for the proxy's admin, served with the store metrics. */
  nodeMetrics?: () => Record<string, unknown>;
}

/** Largest request body the node accepts. */
export const BODY_LIMIT_BYTES = 1_048_576;
/** Longer than the proxy's idle keep-alive to the node, so the proxy never reuses a socket the node is closing. */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;
const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;

/** The stricter of the parent's level and warn: per-request info lines cost throughput. */
function appLoggerOf(logger: Logger): Logger {
  const parent = logger.levels.values[logger.level] ?? 0;
  const warn = logger.levels.values.warn ?? 40;
  return logger.child({}, { level: parent >= warn ? logger.level : 'warn' });
}

/**
 * The demo node application: the contract routes (health, counter, session, page, WebSocket)
 * and a small shop whose checkout enters and leaves session compartments. Ready to `inject`
 * or `listen`; the session id comes from the proxy's header through `sessionPlugin`.
 */
export async function buildDemoApp(options: DemoAppOptions): Promise<FastifyInstance> {
  const { nodeId } = options;
  const loggerInstance: FastifyBaseLogger | undefined = options.logger && appLoggerOf(options.logger);
  const app = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger: false }),
    // No info line per request: at thousands of requests a second they cost real throughput.
    logController: new LogController({ disableRequestLogging: true }),
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Socket inactivity during a request; above keepAliveTimeout so it never cuts an idle keep-alive first.
    connectionTimeout: 120_000,
    // Time to receive a whole request (slow clients), as the proxy's own default.
    requestTimeout: 60_000,
    bodyLimit: BODY_LIMIT_BYTES,
  });

  let store = options.store;
  if (store === undefined) {
    const ownStore = new SessionStore<CompartmentData>({ idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS });
    ownStore.start();
    app.addHook('onClose', async () => ownStore.stop());
    store = ownStore;
  }

  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  await app.register(sessionPlugin, {
    store,
    ...(options.onWrite ? { onWrite: options.onWrite } : {}),
    ...(options.restore ? { restore: options.restore } : {}),
    ...(options.internalSecret ? { internalSecret: options.internalSecret } : {}),
    ...(options.nodeMetrics ? { nodeMetrics: options.nodeMetrics } : {}),
  });
  await app.register(fastifyWebsocket, { options: { maxPayload: BODY_LIMIT_BYTES } });

  // Health must never touch the session: a health check would otherwise create one per probe.
  app.get('/health', async () => ({ status: 'ok', node: nodeId }));

  const page = renderPage(nodeId);
  app.get('/', async (_request, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .header('content-security-policy', PAGE_CSP)
      .send(page),
  );
  app.get('/assets/demo.js', async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(PAGE_SCRIPT),
  );

  await app.register(counterRoutes, { nodeId });
  await app.register(shopRoutes, { nodeId });
  await app.register(websocketRoute, { nodeId });
  await app.register(diagnosticRoutes, { nodeId });
  return app;
}

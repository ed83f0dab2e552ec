import { PassThrough } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';

/**
 * Routes that show what the proxy does to a request, for people poking at the demo with
 * curl and for the integration tests: the headers the node received, a node-set cookie
 * next to the proxy's, and a slow stream to abort mid-response.
 */
export const diagnosticRoutes: FastifyPluginAsync<{ nodeId: string }> = async (app, { nodeId }) => {
  let openStreams = 0;

  // Does not touch the session: shows exactly which headers reached the node.
  app.get('/api/headers', async (request) => ({ node: nodeId, headers: request.headers }));

  // The node sets a cookie of its own; the proxy's SESSIONID must not replace it.
  app.post<{ Body: { theme: string } }>(
    '/api/preferences',
    {
      schema: {
        body: {
          type: 'object',
          required: ['theme'],
          additionalProperties: false,
          properties: { theme: { type: 'string', pattern: '^[a-z]{1,16}$' } },
        },
      },
    },
    async (request, reply) => {
      await request.session.set('theme', request.body.theme);
      reply.header('set-cookie', `theme=${request.body.theme}; Path=/; SameSite=Lax`);
      return { node: nodeId, theme: request.body.theme };
    },
  );

  // A chunk every 100 ms for up to 10 s; a client that leaves must close it at once.
  app.get('/api/stream', async (request, reply) => {
    const stream = new PassThrough();
    let sent = 0;
    openStreams++;
    const timer = setInterval(() => {
      stream.write(`chunk ${++sent}\n`);
      if (sent >= 100) stream.end();
    }, 100);
    stream.write('chunk 0\n');
    const done = (): void => {
      clearInterval(timer);
      openStreams--;
    };
    // The response closes when it finished or when the connection died under it.
    reply.raw.once('close', () => {
      clearInterval(timer);
      stream.destroy();
    });
    stream.once('close', done);
    return reply.type('text/plain; charset=utf-8').send(stream);
  });

  // Off unless STICKYLB_DEMO_CRASH_ROUTE=1: applies a counter write, replicates it, then the
  // node dies (SIGKILL) before answering — a failure no proxy may paper over by replaying.
  if (process.env.STICKYLB_DEMO_CRASH_ROUTE === '1') {
    app.post(
      '/api/counter/crash',
      {
        // Route-level onSend runs after the session plugin's, which has replicated by then.
        onSend: async () => {
          process.kill(process.pid, 'SIGKILL');
        },
      },
      async (request) => {
        const count = await request.session.update((data) => {
          const values = data.values;
          values.count = (typeof values.count === 'number' ? values.count : 0) + 1;
          return values.count;
        });
        return { node: nodeId, count };
      },
    );
  }

  // How many /api/stream responses are still open on this node.
  app.get('/api/stream/open', async () => ({ node: nodeId, open: openStreams }));
};

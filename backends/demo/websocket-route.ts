import type { FastifyPluginAsync } from 'fastify';

/** Echoes waiting for a slow client, in bytes, before the node stops reading from it. */
const ECHO_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Contract route `GET /ws`: the first message names the node and the session, then every
 * message is echoed back — enough to show a WebSocket stays pinned to its node through the
 * proxy. It reads only the session id, so it neither creates nor touches the session.
 */
export const websocketRoute: FastifyPluginAsync<{ nodeId: string }> = async (app, { nodeId }) => {
  app.route({
    method: 'GET',
    url: '/ws',
    // A plain GET (no upgrade) gets a JSON error like every other mistake, not an empty 404.
    handler: async (_request, reply) => {
      reply.code(426).header('upgrade', 'websocket');
      return { error: 'SLB_BAD_REQUEST', message: 'GET /ws needs a WebSocket upgrade' };
    },
    wsHandler: (socket, request) => {
      // A client that resets the connection must cost a log line, never the process.
      socket.on('error', (error) => request.log.debug({ err: error }, 'websocket error'));
      // Backpressure: a client that sends without reading the echoes would otherwise fill
      // this node's memory with them. Above the mark the node stops reading the client (TCP
      // then holds the client back) until the echoes written so far drain below half of it.
      const resumeWhenDrained = (): void => {
        if (socket.isPaused && socket.bufferedAmount < ECHO_HIGH_WATER_MARK / 2) socket.resume();
      };
      socket.on('message', (data, isBinary) => {
        socket.send(data, { binary: isBinary }, resumeWhenDrained);
        if (socket.bufferedAmount > ECHO_HIGH_WATER_MARK) socket.pause();
      });
      socket.send(JSON.stringify({ node: nodeId, sessionId: request.session.id ?? null }));
    },
  });
};

import { Agent, type AgentOptions, type ClientRequest } from 'node:http';
import type { Duplex } from 'node:stream';

/**
 * The keep-alive agent toward the nodes, with one guard Node's own lacks: a pooled socket on
 * which the node sends bytes while no request is out is closed at once. Node reads and drops
 * such bytes, then reuses the socket; bytes arriving just as the next request goes out would
 * be parsed as that request's answer (response desync, RFC 9112 §11.1 on smuggling).
 */
export class UpstreamAgent extends Agent {
  constructor(options: AgentOptions) {
    super(options);
    // After Agent's own 'free' listener, which pools the socket or hands it to a queued request.
    this.on('free', this.#onFree);
  }

  override reuseSocket(socket: Duplex, request: ClientRequest): void {
    socket.off('data', onIdleSocketData);
    super.reuseSocket(socket, request);
  }

  readonly #onFree = (socket: Duplex, options: Parameters<Agent['getName']>[0]): void => {
    const pooled = this.freeSockets[this.getName(options)];
    // Only a socket that went to the pool is idle (LIFO or not, Agent pushes it last).
    if (pooled?.[pooled.length - 1] === socket) socket.on('data', onIdleSocketData);
  };
}

function onIdleSocketData(this: Duplex): void {
  this.destroy();
}

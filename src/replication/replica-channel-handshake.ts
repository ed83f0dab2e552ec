import { connect, type Socket } from 'node:net';
import { ReplicaStoreError } from '../errors.js';

/** Largest HTTP answer head to the upgrade request. */
const MAX_HEAD_BYTES = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

/** What `openReplicaChannel` needs: where, the upgrade request as bytes to send, and how long to wait. */
export interface ReplicaChannelTarget {
  host: string;
  port: number;
  /** The whole HTTP upgrade request, secret included. */
  request: string;
  timeoutMs: number;
}

/**
 * Connects and switches the connection to the replication channel: sends the upgrade
 * request and resolves once a `101` arrived, with the socket and any bytes that followed
 * the answer's head. Rejects with ReplicaStoreError on any other answer (e.g. 401 for a
 * wrong secret), a refused or dropped connection, or no answer within `timeoutMs`.
 */
export function openReplicaChannel(target: ReplicaChannelTarget): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: target.host, port: target.port, noDelay: true });
    let head = Buffer.alloc(0);
    const fail = (error: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(
      () => fail(new ReplicaStoreError(`replica store did not answer within ${target.timeoutMs} ms`)),
      target.timeoutMs,
    );
    socket.on('error', fail);
    socket.on('close', () => fail(new ReplicaStoreError('replica store closed the connection')));
    socket.on('data', (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf(HEAD_END);
      if (end === -1) {
        if (head.length > MAX_HEAD_BYTES) fail(new ReplicaStoreError('replica store answer head too large'));
        return;
      }
      const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'));
      if (/^HTTP\/1\.[01] 101(?: |$)/.exec(statusLine) === null) {
        fail(new ReplicaStoreError(`replica store refused the replication channel: ${statusLine}`));
        return;
      }
      clearTimeout(timer);
      // The transport attaches its own listeners; none of these may act on the switched socket.
      socket.removeAllListeners();
      resolve({ socket, rest: head.subarray(end + HEAD_END.length) });
    });
    socket.write(target.request);
  });
}

/**
 * One round trip between two processes over loopback TCP: what a sync replication write adds
 * to a write's latency at the least (node → replica store in the proxy process → node). It
 * sets the floor under bench/failover's sync ÷ async ratio at one connection, whatever the
 * replication code does, so the bench measures it in the same run.
 */
import { once } from 'node:events';
import { connect } from 'node:net';
import { BenchProcess, percentile, round, waitFor } from './common.js';

/** An echo server in its own process; it prints its port, then echoes until killed. */
const ECHO_SERVER = `
const server = require('node:net').createServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', (chunk) => socket.write(chunk));
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

export interface LoopbackRtt {
  roundTrips: number;
  p50Us: number;
  p99Us: number;
}

const PING_BYTES = 64;

/** `roundTrips` sequential 64-byte ping-pongs with a child process (bounded by `timeoutMs`). */
export async function measureLoopbackRtt(roundTrips = 20_000, timeoutMs = 30_000): Promise<LoopbackRtt> {
  // A BenchProcess, so the bench's exit hook stops it even if the bench is interrupted.
  const echo = new BenchProcess('echo server', process.execPath, ['-e', ECHO_SERVER]);
  try {
    await waitFor('the echo server to print its port', () => /^\d+\n/.test(echo.output), 10_000, echo);
    const port = Number.parseInt(echo.output, 10);
    const client = connect(port, '127.0.0.1');
    client.setNoDelay(true);
    await once(client, 'connect');
    const ping = Buffer.alloc(PING_BYTES);
    const samplesUs: number[] = [];
    let sentAt = 0n;
    let received = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`loopback ping-pong took over ${timeoutMs} ms`)),
          timeoutMs,
        );
        const fail = (error: Error): void => {
          clearTimeout(timer);
          reject(error);
        };
        client.once('error', fail);
        void echo.exited.then(() => fail(new Error('echo server exited')));
        client.on('data', (chunk: Buffer) => {
          // An echo may arrive in pieces: a round trip ends with its last byte.
          received += chunk.length;
          if (received < PING_BYTES) return;
          received -= PING_BYTES;
          samplesUs.push(Number(process.hrtime.bigint() - sentAt) / 1000);
          if (samplesUs.length >= roundTrips) {
            clearTimeout(timer);
            resolve();
            return;
          }
          sentAt = process.hrtime.bigint();
          client.write(ping);
        });
        sentAt = process.hrtime.bigint();
        client.write(ping);
      });
    } finally {
      client.destroy();
    }
    return {
      roundTrips: samplesUs.length,
      p50Us: round(percentile(samplesUs, 50), 1),
      p99Us: round(percentile(samplesUs, 99), 1),
    };
  } finally {
    await echo.stop();
  }
}

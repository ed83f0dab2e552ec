/**
 * One round trip between two processes over loopback TCP: what a sync replication write adds
 * to a write's latency at the least (node → replica store in the proxy process → node). It
 * sets the floor under bench/failover's sync ÷ async ratio at one connection, whatever the
 * replication code does, so the bench measures it in the same run.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { percentile, round } from './common.js';

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

/** `roundTrips` sequential 64-byte ping-pongs with a child process (bounded by `timeoutMs`). */
export async function measureLoopbackRtt(roundTrips = 20_000, timeoutMs = 30_000): Promise<LoopbackRtt> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const socket = connect(Number(line.toString().trim()), '127.0.0.1');
    socket.setNoDelay(true);
    await once(socket, 'connect');
    const ping = Buffer.alloc(64);
    const samplesUs: number[] = [];
    let sentAt = 0n;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      child.once('exit', () => reject(new Error('echo server exited')));
      socket.on('data', () => {
        samplesUs.push(Number(process.hrtime.bigint() - sentAt) / 1000);
        if (samplesUs.length >= roundTrips) return resolve();
        sentAt = process.hrtime.bigint();
        socket.write(ping);
      });
      sentAt = process.hrtime.bigint();
      socket.write(ping);
    });
    socket.destroy();
    return {
      roundTrips: samplesUs.length,
      p50Us: round(percentile(samplesUs, 50), 1),
      p99Us: round(percentile(samplesUs, 99), 1),
    };
  } finally {
    clearTimeout(timer);
    child.kill('SIGKILL');
  }
}

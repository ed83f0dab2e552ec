import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from './free-port.js';

const [ephemeralLow, ephemeralHigh] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
  .trim()
  .split(/\s+/)
  .map(Number) as [number, number];

describe('freePort', () => {
  it('hands out distinct bindable ports outside the ephemeral range', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 20; i++) ports.push(await freePort());
    expect(new Set(ports).size).toBe(ports.length);
    for (const port of ports) expect(port < ephemeralLow || port > ephemeralHigh).toBe(true);
    const server = createServer().listen(ports[0], '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    server.close();
  });

  it('skips a port someone else holds', async () => {
    // Hold the next few ports of this worker's slice: freePort must step past all of them.
    const held = await freePort();
    const squatters = [];
    for (let port = held + 1; port <= held + 3; port++) {
      const server = createServer();
      await new Promise<void>((resolve) =>
        server.once('error', () => resolve()).listen(port, '127.0.0.1', resolve),
      );
      squatters.push(server);
    }
    const port = await freePort();
    expect(port > held + 3 || port < held).toBe(true);
    for (const server of squatters) server.close();
  });

  it('gives ports an outbound connection never takes as its local port', async () => {
    const server = createServer((socket) => socket.end()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port: target } = server.address() as { port: number };
    const socket = connect(target, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    // The kernel picks outbound local ports from the ephemeral range only.
    expect(socket.localPort! >= ephemeralLow && socket.localPort! <= ephemeralHigh).toBe(true);
    expect(await freePort()).not.toBe(socket.localPort);
    socket.destroy();
    server.close();
  });
});

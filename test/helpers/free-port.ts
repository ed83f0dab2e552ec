import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

// Why not "listen on 0, read the port, close": port 0 hands out a port from the kernel's
// ephemeral range, the same range every outbound connection takes its local port from.
// Between the close and the moment a node binds it (or binds it again after a kill -9),
// a client or proxy socket of a test running in parallel can take it: CI failed once with
// EADDRINUSE that way. Ports below (or above) the ephemeral range are never handed out by
// the kernel, and each vitest worker draws from its own slice of them, so two test files
// running at once never pick the same one.

const SLICES = 16;
const LOWEST = 10_000;
const MIN_RANGE = SLICES * 200;

function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low as number, high as number];
  } catch {
    // Not Linux: assume the IANA range below.
  }
  return [49_152, 65_535];
}

/** The slice of non-ephemeral ports this process draws from, or undefined to use port 0. */
function ownSlice(): { first: number; size: number } | undefined {
  const [low, high] = ephemeralRange();
  let first: number;
  let last: number;
  if (low - LOWEST >= MIN_RANGE) [first, last] = [LOWEST, low - 1];
  else if (65_535 - high >= MIN_RANGE) [first, last] = [high + 1, 65_535];
  else return undefined;
  const size = Math.floor((last - first + 1) / SLICES);
  // VITEST_POOL_ID is 1..maxWorkers and unique among workers running at once.
  const slot = Number(process.env.VITEST_POOL_ID ?? process.pid) % SLICES;
  return { first: first + slot * size, size };
}

const slice = ownSlice();
let next = slice === undefined ? 0 : Math.floor(Math.random() * slice.size);

function bindable(port: number): Promise<number | undefined> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(undefined));
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as { port: number };
      server.close(() => done(bound));
    });
  });
}

/**
 * A port free right now on 127.0.0.1 that no outbound connection will take meanwhile:
 * outside the kernel's ephemeral range, from this worker's own slice.
 */
export async function freePort(): Promise<number> {
  if (slice === undefined) {
    const port = await bindable(0);
    if (port === undefined) throw new Error('no free port');
    return port;
  }
  for (let tried = 0; tried < slice.size; tried++) {
    const candidate = slice.first + (next++ % slice.size);
    if ((await bindable(candidate)) !== undefined) return candidate;
  }
  throw new Error(`no free port in ${slice.first}-${slice.first + slice.size - 1}`);
}

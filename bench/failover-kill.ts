/**
 * Failover time for bench/failover: sessions spread over three nodes keep sending requests,
 * one node gets SIGKILL, and each of its sessions is followed to its first successful answer
 * from another node (state checked).
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { percentile, round, sleep } from './common.js';
import type { FailoverSettings } from './failover.js';
import { StickyCluster } from './sticky-cluster.js';

interface Exchange {
  method: 'GET' | 'POST';
  /** performance.now() when sent and when the answer (or error) was complete. */
  start: number;
  end: number;
  status: number;
  node: string | undefined;
  count: number | undefined;
  /** Network error code, or the error code and message of a JSON error answer. */
  error: string | undefined;
}

export interface Distribution {
  p50: number;
  p99: number;
  max: number;
}

export interface FailoverRun {
  killedNode: string;
  sessions: number;
  /** Sessions whose last answer before the kill came from the killed node. */
  victims: number;
  /** Kill → first 2xx from another node, per victim session (ms). */
  failoverMs: Distribution;
  /** Same clock, no failure: a reference instant 1.5 s before the kill → each victim's next 2xx. The floor set by think time and load. */
  controlMs: Distribution;
  /**
   * What a victim's user waited on the failover: from the kill (request already in flight)
   * or from sending (request sent after it) to the first 2xx from another node. Think time
   * is not in it; compare with `latencyBeforeKillMs`, every request's latency before the kill.
   */
  waitMs: Distribution;
  latencyBeforeKillMs: Distribution;
  /** Victims with no 2xx from another node before the run ended. */
  unrecovered: number;
  /** Victims whose first answer after failover had a lower count than one already acknowledged. */
  lostState: number;
  requestsAfterKill: number;
  failedAfterKill: number;
  failedBeforeKill: number;
  /** Failures after the kill by method, status and error code/message. */
  failures: Record<string, number>;
  requestsPerSec: number;
  /** From the proxy's event log: kill → node marked down, and the proactive move it started. */
  detectedDownAfterMs: number | null;
  proactiveMove: { moved: number; durationMs: number } | null;
  proxyRetries: number | null;
}

export interface Session {
  cookie: string;
  log: Exchange[];
}

const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

/** One request as a browser would send it (cookie jar: a re-issued SESSIONID replaces the old one). */
function exchange(baseUrl: string, session: Session, method: 'GET' | 'POST'): Promise<Exchange> {
  const start = performance.now();
  return new Promise((resolve) => {
    const done = (status: number, body: string, error?: string): void => {
      let node: string | undefined;
      let count: number | undefined;
      let failure = error;
      try {
        if (status >= 200 && status < 300)
          ({ node, count } = JSON.parse(body) as { node: string; count: number });
        else if (status !== 0) {
          const answer = JSON.parse(body) as { error?: string; message?: string };
          failure = `${answer.error ?? 'no code'}: ${answer.message ?? ''}`;
        }
      } catch {
        // not JSON
      }
      resolve({ method, start, end: performance.now(), status, node, count, error: failure });
    };
    const req = request(
      `${baseUrl}/api/counter`,
      {
        method,
        agent,
        headers: { cookie: session.cookie, ...(method === 'POST' ? { 'content-length': '0' } : {}) },
        timeout: 10_000,
      },
      (res) => {
        const cookie = res.headers['set-cookie']?.find((line) => line.startsWith('SESSIONID='));
        if (cookie !== undefined) session.cookie = cookie.slice(0, cookie.indexOf(';'));
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => done(res.statusCode ?? 0, body));
        res.on('error', (error: NodeJS.ErrnoException) => done(0, '', error.code ?? error.message));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error: NodeJS.ErrnoException) => done(0, '', error.code ?? error.message));
    req.end();
  });
}

/** Sessions created through the proxy (20 at a time), each with its own cookie. */
export async function createSessions(baseUrl: string, count: number): Promise<Session[]> {
  const sessions: Session[] = [];
  const create = async (): Promise<void> => {
    const response = await fetch(`${baseUrl}/api/counter`, { method: 'POST' });
    const cookie = response.headers.getSetCookie().find((line) => line.startsWith('SESSIONID='));
    await response.arrayBuffer();
    if (!response.ok || cookie === undefined) throw new Error(`session not created: ${response.status}`);
    sessions.push({ cookie: cookie.slice(0, cookie.indexOf(';')), log: [] });
  };
  for (let i = 0; i < count; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, count - i) }, create));
  }
  return sessions;
}

const isOk = (e: Exchange): boolean => e.status >= 200 && e.status < 300;
const distribution = (values: number[]): Distribution => ({
  p50: round(percentile(values, 50)),
  p99: round(percentile(values, 99)),
  max: round(values.length === 0 ? Number.NaN : Math.max(...values)),
});

/** One fresh cluster, one kill: every victim session's failover, from the clients' logs. */
export async function runFailoverOnce(settings: FailoverSettings, repeat: number): Promise<FailoverRun> {
  const cluster = await StickyCluster.start({ label: `bench/failover #${repeat + 1}` });
  try {
    const sessions = await createSessions(cluster.proxyUrl, settings.sessions);
    let isStopping = false;
    const loop = async (session: Session, offset: number): Promise<void> => {
      // Staggered starts, so the sessions do not march in step.
      await sleep(offset);
      for (let n = 1; !isStopping; n++) {
        const method = n % settings.postEvery === 0 ? 'POST' : 'GET';
        session.log.push(await exchange(cluster.proxyUrl, session, method));
        await sleep(settings.thinkMs);
      }
    };
    const started = performance.now();
    const loops = sessions.map((session, index) =>
      loop(session, (index / sessions.length) * settings.thinkMs),
    );
    await sleep(settings.beforeKillMs);
    const victimIndex = repeat % cluster.nodes.length;
    const victim = cluster.nodes[victimIndex];
    const victimId = cluster.nodeIds[victimIndex] as string;
    if (victim === undefined) throw new Error('no node to kill');
    const killWall = Date.now();
    const killAt = performance.now();
    victim.killNow('SIGKILL');
    await sleep(settings.afterKillMs);
    isStopping = true;
    await Promise.all(loops);
    const elapsedSec = (performance.now() - started) / 1000;
    const state = await cluster.state();

    const controlAt = killAt - 1500;
    const failoverMs: number[] = [];
    const controlMs: number[] = [];
    const waitMs: number[] = [];
    const failures: Record<string, number> = {};
    let victims = 0;
    let unrecovered = 0;
    let lostState = 0;
    let requestsAfterKill = 0;
    let failedAfterKill = 0;
    let failedBeforeKill = 0;
    const before: number[] = [];
    for (const { log } of sessions) {
      for (const e of log) {
        if (e.end > killAt) {
          requestsAfterKill++;
          if (!isOk(e)) {
            failedAfterKill++;
            const key = `${e.method} ${e.status === 0 ? '' : `${e.status} `}${e.error ?? ''}`.trim();
            failures[key] = (failures[key] ?? 0) + 1;
          }
        } else if (!isOk(e)) failedBeforeKill++;
        else if (e.end > killAt - 2000) before.push(e.end - e.start);
      }
      const lastBefore = log.filter((e) => e.end <= killAt && isOk(e)).at(-1);
      if (lastBefore?.node !== victimId) continue;
      victims++;
      // Highest count the client saw acknowledged by the killed node (also just after the kill, already in flight).
      const acknowledged = Math.max(
        ...log.filter((e) => isOk(e) && e.node === victimId).map((e) => e.count ?? 0),
      );
      const recovered = log.find((e) => e.end > killAt && isOk(e) && e.node !== victimId);
      if (recovered === undefined) unrecovered++;
      else {
        failoverMs.push(recovered.end - killAt);
        waitMs.push(recovered.end - Math.max(killAt, recovered.start));
        const expected = recovered.method === 'POST' ? acknowledged + 1 : acknowledged;
        if ((recovered.count ?? 0) < expected) lostState++;
      }
      const control = log.find((e) => e.end > controlAt && isOk(e));
      if (control !== undefined) controlMs.push(control.end - controlAt);
    }
    const down = state.events?.find((event) => event.type === 'node:down' && event.at >= killWall - 10);
    const move = state.events?.find((event) => event.type === 'failover:end' && event.at >= killWall - 10);
    return {
      killedNode: victimId,
      sessions: sessions.length,
      victims,
      failoverMs: distribution(failoverMs),
      controlMs: distribution(controlMs),
      waitMs: distribution(waitMs),
      latencyBeforeKillMs: distribution(before),
      unrecovered,
      lostState,
      requestsAfterKill,
      failedAfterKill,
      failedBeforeKill,
      failures,
      requestsPerSec: Math.round(sessions.reduce((sum, s) => sum + s.log.length, 0) / elapsedSec),
      detectedDownAfterMs: down === undefined ? null : down.at - killWall,
      proactiveMove:
        move === undefined ? null : { moved: move.moved ?? 0, durationMs: move.durationMs ?? Number.NaN },
      proxyRetries: state.proxy?.retries ?? null,
    };
  } finally {
    await cluster.close();
  }
}

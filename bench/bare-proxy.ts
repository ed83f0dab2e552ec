/**
 * The floor stickylb must beat: the least a sticky proxy on http-proxy can do. A cookie
 * names the session, a Map pins it to a node (round-robin for new ones), a keep-alive
 * agent reuses node connections. No id signing, header hygiene, retries, health checks,
 * replication or timeouts.
 *
 *   node dist/bench/bare-proxy.js PORT NODE_URL...
 */
import { randomBytes } from 'node:crypto';
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import httpProxy from 'http-proxy';

const [port, ...nodeUrls] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: 512, scheduling: 'lifo' });
const proxy = httpProxy.createProxyServer({});
const nodes = nodeUrls.map((target) => ({ target, agent }));
const sessions = new Map<string, number>();
const COOKIE = /(?:^|;\s*)SESSIONID=([^;]+)/;
let next = 0;

function onProxyError(_error: Error, _req: IncomingMessage, res: ServerResponse | unknown): void {
  const response = res as ServerResponse;
  if (!response.headersSent) response.writeHead(502);
  response.end();
}

createServer((req, res) => {
  let id = COOKIE.exec(req.headers.cookie ?? '')?.[1];
  let index = id === undefined ? undefined : sessions.get(id);
  if (id === undefined || index === undefined) {
    id = randomBytes(16).toString('base64url');
    index = next++ % nodes.length;
    sessions.set(id, index);
    res.setHeader('set-cookie', `SESSIONID=${id}; Path=/; HttpOnly; SameSite=Lax`);
  }
  req.headers['x-stickylb-session'] = id;
  proxy.web(req, res, nodes[index], onProxyError);
}).listen(Number(port), '127.0.0.1', () => console.log(`bare proxy on 127.0.0.1:${port}`));
// An orderly exit (flushes --cpu-prof output when profiling it).
process.on('SIGTERM', () => process.exit(0));

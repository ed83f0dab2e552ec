/**
 * HAProxy and nginx as sticky proxies in front of the same nodes, each one process (one
 * thread / one worker, like one Node process) in the foreground with its files in a temp
 * dir, started only when its binary exists.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BenchProcess, makeTempDir, waitForHttp } from './common.js';

export interface StartedProxy {
  process: BenchProcess;
  url: string;
  config: string;
}

export type StartResult = StartedProxy | { skipped: string };

const hostPortOf = (url: string): string => new URL(url).host;

/**
 * HAProxy routes by the cookie it inserts (`cookie SESSIONID insert indirect nocache`, the
 * classic HAProxy stickiness; it strips the cookie before the node sees it). The demo node
 * still needs a session id, so HAProxy mints one per new client (`uuid`) in a second cookie,
 * APPSESSION, and passes it in the internal header, as stickylb does.
 */
export function haproxyConfig(port: number, nodeUrls: string[]): string {
  const servers = nodeUrls
    .map((url, index) => `  server node-${index + 1} ${hostPortOf(url)} cookie n${index + 1}`)
    .join('\n');
  return `global
  nbthread 1
  maxconn 4096
  log stderr format raw local0 err

defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 5s

frontend bench
  bind 127.0.0.1:${port}
  default_backend nodes

backend nodes
  balance roundrobin
  cookie SESSIONID insert indirect nocache
  http-reuse safe
  acl has_session req.cook(APPSESSION) -m found
  http-request set-var(txn.session) req.cook(APPSESSION) if has_session
  http-request set-var(txn.session) uuid if !has_session
  http-request set-var(txn.minted) bool(true) if !has_session
  http-request set-header x-stickylb-session %[var(txn.session)]
  http-response add-header Set-Cookie "APPSESSION=%[var(txn.session)]; Path=/; HttpOnly; SameSite=Lax" if { var(txn.minted) -m bool }
${servers}
`;
}

/**
 * nginx hashes the SESSIONID cookie onto the nodes (`hash $cookie_SESSIONID consistent`);
 * a client without one gets `$request_id` (128 random bits) as its id, in the cookie and
 * the internal header. Keep-alive to the nodes, and no per-connection request cap (nginx
 * closes client connections after 1000 requests by default; the other proxies do not).
 */
export function nginxConfig(port: number, nodeUrls: string[], dir: string): string {
  const servers = nodeUrls.map((url) => `    server ${hostPortOf(url)};`).join('\n');
  return `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  keepalive_requests 10000000;
  map $cookie_SESSIONID $session_id {
    "" $request_id;
    default $cookie_SESSIONID;
  }
  map $cookie_SESSIONID $new_session_cookie {
    "" "SESSIONID=$request_id; Path=/; HttpOnly; SameSite=Lax";
    default "";
  }
  upstream nodes {
    hash $session_id consistent;
${servers}
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://nodes;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header x-stickylb-session $session_id;
      add_header Set-Cookie $new_session_cookie;
    }
  }
}
`;
}

function hasBinary(binary: string): boolean {
  const result = spawnSync(binary, ['-v'], { encoding: 'utf8' });
  return result.error === undefined;
}

async function startChecked(
  name: string,
  binary: string,
  checkArgs: string[],
  runArgs: string[],
  config: string,
  url: string,
  cwd: string,
): Promise<StartResult> {
  if (!hasBinary(binary)) return { skipped: `${name}: \`${binary}\` not found on PATH` };
  const check = spawnSync(binary, checkArgs, { encoding: 'utf8', cwd });
  if (check.status !== 0) {
    return { skipped: `${name}: config refused: ${`${check.stdout}${check.stderr}`.trim().slice(0, 500)}` };
  }
  const child = new BenchProcess(name, binary, runArgs, { cwd });
  try {
    await waitForHttp(name, `${url}/health`, child);
  } catch (error) {
    await child.stop();
    return { skipped: `${name}: did not start (${(error as Error).message}): ${child.output.slice(-500)}` };
  }
  return { process: child, url, config };
}

export async function startHaproxy(port: number, nodeUrls: string[]): Promise<StartResult> {
  const dir = makeTempDir('stickylb-bench-haproxy-');
  const config = haproxyConfig(port, nodeUrls);
  const file = join(dir, 'haproxy.cfg');
  writeFileSync(file, config);
  // -db: foreground, no daemon; stopped with SIGTERM like every other bench process.
  return startChecked(
    'HAProxy',
    'haproxy',
    ['-c', '-q', '-f', file],
    ['-f', file, '-db'],
    config,
    `http://127.0.0.1:${port}`,
    dir,
  );
}

export async function startNginx(port: number, nodeUrls: string[]): Promise<StartResult> {
  const dir = makeTempDir('stickylb-bench-nginx-');
  mkdirSync(join(dir, 'tmp'));
  // Run as root, nginx's worker drops to `nobody`: it must be able to use its temp paths.
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'tmp'), 0o777);
  const config = nginxConfig(port, nodeUrls, dir);
  const file = join(dir, 'nginx.conf');
  writeFileSync(file, config);
  const common = ['-p', dir, '-e', join(dir, 'error.log'), '-c', file];
  return startChecked(
    'nginx',
    'nginx',
    [...common, '-t', '-q'],
    [...common, '-g', 'daemon off;'],
    config,
    `http://127.0.0.1:${port}`,
    dir,
  );
}

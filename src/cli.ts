#!/usr/bin/env node
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig, type Config } from './config/index.js';
import { ConfigError } from './errors.js';
import { createLogger, type Logger } from './log.js';
import { LocalNodes } from './nodes/index.js';
import { loadSecret } from './secret-file.js';
import { StickyLb } from './stickylb.js';

const USAGE = `usage:
  stickylb start   [--config FILE]          proxy, admin and the local nodes of the config (child processes)
  stickylb proxy   [--config FILE]          proxy and admin only, for nodes started elsewhere
  stickylb backend --id ID [--config FILE]  one demo node (e.g. to bring a killed one back)

--config defaults to config/default.yaml`;

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c', default: 'config/default.yaml' },
      id: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const command = positionals[0];
  if (values.help || command === undefined || command === 'help') {
    console.log(USAGE);
    return;
  }
  const configFile = values.config;
  const config = loadConfig(configFile);
  const logger = createLogger({
    name: `stickylb:${command === 'backend' ? values.id : command}`,
    level: config.log.level,
  });

  switch (command) {
    case 'start':
    case 'proxy':
      await runProxy(command, config, configFile, logger);
      return;
    case 'backend': {
      if (!values.id) throw new UsageError('backend needs --id ID (one of the config nodes)');
      const { runDemoNode } = await import('../backends/demo/server.js');
      await runDemoNode({ config, nodeId: values.id, logger });
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function runProxy(
  command: 'start' | 'proxy',
  config: Config,
  configFile: string,
  logger: Logger,
): Promise<void> {
  const nodes =
    command === 'start'
      ? new LocalNodes({ cliPath: fileURLToPath(import.meta.url), configFile, logger })
      : undefined;
  let lb: StickyLb | undefined = undefined;
  let isStopping = false;
  let isStarted = false;

  // Registered before anything listens: a signal during start-up must still stop everything
  // cleanly (with workers, clients are served before the admin listener is up).
  const stop = async (signal: string): Promise<void> => {
    if (isStopping) {
      logger.warn(`${signal} again: exiting now`);
      process.exit(1);
    }
    isStopping = true;
    if (!isStarted) return; // start-up sees isStopping and stops when it is done
    logger.info(`${signal}: finishing in-flight requests, then stopping`);
    await lb?.close();
    await nodes?.stopAll();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  let isReloadPending = false;
  const reload = (): void => {
    // A SIGHUP during start-up is applied once start-up is done, not half-way through it.
    if (lb === undefined || !isStarted) {
      isReloadPending = true;
      return;
    }
    try {
      const next = loadConfig(configFile);
      const notes = lb.reload(next);
      void nodes?.reload(lb.config);
      logger.info(
        { notes },
        `config reloaded from ${configFile}${notes.length ? `: ${notes.join('; ')}` : ''}`,
      );
    } catch (error) {
      logger.error(`config reload refused, running config kept:\n${(error as Error).message}`);
    }
  };
  process.on('SIGHUP', reload);

  // Generated secrets exist before any node starts, so every process reads the same ones.
  loadSecret(config.session);
  loadSecret(config.replication);
  try {
    await nodes?.start(config.nodes, config.health.path);
  } catch (error) {
    await nodes?.stopAll();
    throw error;
  }
  lb = new StickyLb(config, logger);
  await lb.listen();
  isStarted = true;
  const proxyUrl = `http://${config.proxy.listen.host}:${lb.proxyAddress?.port}`;
  const adminUrl = `http://${config.admin.listen.host}:${lb.adminAddress?.port}`;
  const workers = lb.workers === undefined ? 'in this process' : `${lb.workers.size} workers`;
  logger.info(
    { proxy: proxyUrl, admin: adminUrl, pid: process.pid, workers: lb.workers?.pids },
    `stickylb proxy on ${proxyUrl} (${workers}), admin on ${adminUrl}`,
  );
  if (isStopping) {
    isStopping = false;
    await stop('signal during start-up');
  }
  if (isReloadPending) reload();
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) console.error(error.message);
  else if (
    error instanceof UsageError ||
    (error as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
  ) {
    console.error(`${(error as Error).message}\n\n${USAGE}`);
  } else console.error(error);
  process.exit(1);
});

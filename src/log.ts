import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Shortens a session id for logs: enough to correlate lines, never enough to hijack the
 * session (an id in a log file is a credential in a log file).
 */
export function redactSessionId(id: string | undefined): string {
  if (!id) return '-';
  return id.length <= 6 ? '…' : `${id.slice(0, 6)}…`;
}

/**
 * The one pino factory. Pretty, coloured lines when stdout is a terminal (a person is
 * reading), JSON lines otherwise (a log shipper is). `STICKYLB_LOG=json|pretty` overrides.
 */
export function createLogger(options: { name: string; level?: string }): Logger {
  const base: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.STICKYLB_LOG_LEVEL ?? 'info',
    redact: {
      // Any field that could carry a full session id or a secret.
      paths: ['sessionId', '*.sessionId', 'secret', '*.secret', 'token', '*.token', 'req.headers.cookie'],
      censor: (value: unknown) => (typeof value === 'string' ? redactSessionId(value) : '[redacted]'),
    },
  };
  const mode = process.env.STICKYLB_LOG ?? (process.stdout.isTTY ? 'pretty' : 'json');
  if (mode === 'pretty') {
    return pino({
      ...base,
      transport: {
        target: 'pino-pretty',
        options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
      },
    });
  }
  return pino(base);
}

/** A logger that discards everything, for tests and benches. */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}

import { pino, stdSerializers, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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
 * Fields of an error that carry what was sent, not what went wrong: ioredis puts the failed
 * command on its errors (`command: { name, args }`: AUTH/HELLO args hold the Redis password,
 * script args hold session keys and whole session data), and Node's `ERR_INVALID_URL` puts
 * the URL it could not parse (password included) in `input`.
 */
const SENT_FIELDS = ['command', 'args', 'input'] as const;

/**
 * pino's error serializer without the fields that carry what was sent: the one place every
 * logged error passes through (`err`, `error`, and an error logged as the first argument),
 * so no logger call can leak a password or session data, whoever wrote it.
 */
export function serializeError(error: unknown): unknown {
  const serialized = stdSerializers.err(error as Error) as unknown;
  // Not an error: pino's serializer hands it back as is, and it must not be changed in place.
  if (serialized === error || typeof serialized !== 'object' || serialized === null) return serialized;
  dropSentFields(serialized, Object.getPrototypeOf(serialized) as object);
  return serialized;
}

/**
 * Removes SENT_FIELDS from a serialized error and from the errors serialized inside it
 * (`aggregateErrors`, error-valued fields): those are fresh objects with the serializer's
 * prototype, so the logged error itself is never changed.
 */
function dropSentFields(serialized: object, proto: object): void {
  const record = serialized as Record<string, unknown>;
  for (const field of SENT_FIELDS) delete record[field];
  for (const value of Object.values(record)) {
    const nested = Array.isArray(value) ? (value as unknown[]) : [value];
    for (const item of nested) {
      if (typeof item === 'object' && item !== null && Object.getPrototypeOf(item) === proto) {
        dropSentFields(item, proto);
      }
    }
  }
}

/**
 * The one pino factory. Pretty, coloured lines when stdout is a terminal (a person is
 * reading), JSON lines otherwise (a log shipper is). `STICKYLB_LOG=json|pretty` overrides;
 * `destination`: JSON lines to it instead (tests read what would be logged).
 */
export function createLogger(options: {
  name: string;
  level?: string;
  destination?: DestinationStream;
}): Logger {
  const base: LoggerOptions = {
    name: options.name,
    level: options.level ?? process.env.STICKYLB_LOG_LEVEL ?? 'info',
    serializers: { err: serializeError, error: serializeError },
    redact: {
      // Any field that could carry a full session id or a secret (a Redis command's args: a
      // password or session data, when not under an error the serializer cleaned).
      paths: [
        'sessionId',
        '*.sessionId',
        'secret',
        '*.secret',
        'token',
        '*.token',
        'req.headers.cookie',
        'command.args',
        '*.command.args',
      ],
      censor: (value: unknown) => (typeof value === 'string' ? redactSessionId(value) : '[redacted]'),
    },
  };
  if (options.destination !== undefined) return pino(base, options.destination);
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

import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configSchema, type Config } from './schema.js';

/** Formats one schema issue as `key.path: problem`, the line an operator can act on. */
function formatIssue(issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String).join('.');
  const prefix = path ? `${path}: ` : '';
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => `${path ? `${path}.` : ''}${key}: unknown key`);
    case 'invalid_type':
      // Zod reports a missing key as an invalid_type whose message ends in "received undefined".
      return [
        `${prefix}${/received undefined$/.test(issue.message) ? 'is required' : `must be ${article(issue.expected)}`}`,
      ];
    case 'invalid_value':
      return [`${prefix}must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`];
    default:
      return [`${prefix}${issue.message}`];
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Validates a parsed config object and returns it defaulted and frozen. Throws
 * ConfigError listing every problem, one `key.path: problem` line each.
 */
export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) throw new ConfigError(source, result.error.issues.flatMap(formatIssue));
  return deepFreeze(result.data);
}

/** Reads a YAML (or JSON) config file and validates it. */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [`cannot read file: ${(error as Error).message}`], { cause: error });
  }
  let raw: unknown;
  try {
    raw = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (error) {
    throw new ConfigError(file, [syntaxProblem(file, text, error)], { cause: error });
  }
  const config = parseConfig(raw, file);
  // Nodes started from this file read the replica store's port from it: port 0 (any free
  // port, fine for a proxy embedded in a program) would have the proxy listen where no node looks.
  if (config.replication.store === 'memory' && config.replication.listen.port === 0) {
    throw new ConfigError(file, [
      'replication.listen.port: must be a fixed port (≥ 1) with replication.store memory: the nodes connect to it',
    ]);
  }
  return config;
}

/**
 * Where and what the syntax error is, without the parser's quote of the file: the line it
 * quotes may hold a secret (a password in `redis.url`), and this message is logged.
 */
function syntaxProblem(file: string, text: string, error: unknown): string {
  const message = (error as Error).message;
  if (file.endsWith('.json')) {
    const position = /at position (\d+)/.exec(message)?.[1];
    if (position === undefined) return 'not valid JSON';
    const before = text.slice(0, Number(position)).split('\n');
    return `not valid JSON at line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1}`;
  }
  // yaml's first line is the reason and the place ("… at line 4, column 1:"); the rest quotes the file.
  return `not valid YAML: ${message.split('\n')[0]?.replace(/:$/, '')}`;
}

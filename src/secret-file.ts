import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';

/** As for a secret written in the config (src/config/schema.ts). */
const MIN_SECRET_LENGTH = 16;

/**
 * A secret from the config, or else one generated on first use and kept in `secretFile`
 * (mode 0600, folder 0700). Keeping it means a restarted proxy still accepts the session
 * ids it issued, and a node started by hand (`stickylb backend --id …`) from the same
 * folder shares the replication secret with the proxy without anyone copying it around.
 */
export function loadSecret(options: { secret?: string | undefined; secretFile: string }): string {
  if (options.secret) return options.secret;
  const file = resolve(options.secretFile);
  const stored = readStoredSecret(file);
  if (stored !== undefined) return stored;
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Written whole to a private temp file, then linked into place: the link either creates the
  // file with its full content or fails because another process (nodes start side by side)
  // got there first, in which case its complete secret is used. Never a half-written file.
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(temp, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(temp, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readStoredSecret(file) as string;
  } finally {
    unlinkSync(temp);
  }
  return secret;
}

/**
 * The secret kept in `file`, or undefined when there is none yet. A secret as short as an
 * empty file would sign session ids anyone can forge and open the replication endpoints to
 * anyone, and one others may write lets them choose it: both stop start-up, as a configured
 * secret under 16 characters does.
 */
function readStoredSecret(file: string): string | undefined {
  let stored: string;
  try {
    stored = readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  if (stored.length < MIN_SECRET_LENGTH) {
    throw new ConfigError(file, [
      `secret file holds ${stored.length} characters, a secret needs at least ${MIN_SECRET_LENGTH}: delete the file to have one generated, or write a longer one`,
    ]);
  }
  // Readable by others is allowed: mounted secrets are (Docker 0444, Kubernetes 0644 by
  // default), in containers with one user. Writable by others is not: they could choose the key.
  if (process.platform !== 'win32' && (statSync(file).mode & 0o022) !== 0) {
    throw new ConfigError(file, [`secret file is writable by other users: chmod 600 ${file}`]);
  }
  return stored;
}

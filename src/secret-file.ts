import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * A secret from the config, or else one generated on first use and kept in `secretFile`
 * (mode 0600, folder 0700). Keeping it means a restarted proxy still accepts the session
 * ids it issued, and a node started by hand (`stickylb backend --id …`) from the same
 * folder shares the replication secret with the proxy without anyone copying it around.
 */
export function loadSecret(options: { secret?: string | undefined; secretFile: string }): string {
  if (options.secret) return options.secret;
  const file = resolve(options.secretFile);
  try {
    const stored = readFileSync(file, 'utf8').trim();
    if (stored.length >= 32) return stored;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
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
    return readFileSync(file, 'utf8').trim();
  } finally {
    unlinkSync(temp);
  }
  return secret;
}

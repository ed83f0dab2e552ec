import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSecret } from '../src/secret-file.js';

describe('loadSecret', () => {
  it('prefers the configured secret', () => {
    expect(loadSecret({ secret: 'configured-secret-123', secretFile: '/nonexistent/x' })).toBe(
      'configured-secret-123',
    );
  });

  it('generates a secret once, keeps it in a 0600 file and returns it again', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stickylb-secret-')), 'dir', 'secret');
    const first = loadSecret({ secretFile: file });
    expect(first.length).toBeGreaterThanOrEqual(43);
    expect(loadSecret({ secretFile: file })).toBe(first);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('gives processes racing to create it the same complete secret', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'stickylb-secret-')), 'secret');
    const module = resolve('dist/src/secret-file.js');
    const script = `import(${JSON.stringify(module)}).then((m) => process.stdout.write(m.loadSecret({ secretFile: ${JSON.stringify(file)} })))`;
    const outputs = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<string>((done, fail) => {
            const child = spawn(process.execPath, ['-e', script]);
            let out = '';
            child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
            child.on('exit', (code) => (code === 0 ? done(out) : fail(new Error(`exit ${code}`))));
          }),
      ),
    );
    const stored = readFileSync(file, 'utf8').trim();
    expect(stored.length).toBeGreaterThanOrEqual(43);
    for (const output of outputs) expect(output).toBe(stored);
  });

  it.each([
    ['an empty file', '', 0o600, /holds 0 characters, a secret needs at least 16/],
    ['a short secret', 'short\n', 0o600, /holds 5 characters/],
    [
      'a file anyone can write',
      'a-secret-of-forty-characters-0123456789a\n',
      0o666,
      /writable by other users: chmod 600/,
    ],
    [
      'a file its group can write',
      'a-secret-of-forty-characters-0123456789a\n',
      0o664,
      /writable by other users: chmod 600/,
    ],
  ])('refuses %s, naming the file, instead of using it', (_, content, mode, message) => {
    const file = join(mkdtempSync(join(tmpdir(), 'stickylb-secret-')), 'secret');
    writeFileSync(file, content);
    chmodSync(file, mode); // not left to the umask
    expect(() => loadSecret({ secretFile: file })).toThrow(message);
    expect(() => loadSecret({ secretFile: file })).toThrow(file);
    // Left as it was: nothing overwrites what the operator wrote.
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it.each([0o600, 0o444, 0o644])(
    'uses a secret of 16 or more characters written by hand (mode %o: mounted secrets are readable)',
    (mode) => {
      const file = join(mkdtempSync(join(tmpdir(), 'stickylb-secret-')), 'secret');
      writeFileSync(file, 'sixteen-chars-ok\n');
      chmodSync(file, mode);
      expect(loadSecret({ secretFile: file })).toBe('sixteen-chars-ok');
    },
  );
});

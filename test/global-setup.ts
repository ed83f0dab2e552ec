import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Every temp folder of a test run (configs, secrets, Redis data, browser profiles — from the
 * tests and from the processes they start) goes under one folder, removed when the run ends,
 * so nothing piles up in /tmp however a test exits. `os.tmpdir()` reads TMPDIR on each call,
 * and the test workers and their child processes inherit it.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'stickylb-run-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}

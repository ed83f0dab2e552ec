import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EVENT_TYPES } from './event-types.js';

/** A file the admin listener serves, read once at start-up. */
export interface DashboardAsset {
  contentType: string;
  body: string;
}

const FILES: Record<string, string> = {
  'dashboard.css': 'text/css; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
};

/** The token placeholder in index.html: asset URLs carry `?token=` when the page was opened with one. */
const QUERY_PLACEHOLDER = /__QUERY__/g;
/** Where index.html gets the event types the script listens for (a JSON data block: never run, so the CSP allows it). */
const EVENT_TYPES_PLACEHOLDER = '__EVENT_TYPES__';

/**
 * Headers of every dashboard response. Nothing but the listener itself may be loaded or
 * framed: the page holds buttons that drain nodes, so no other site may overlay it
 * (clickjacking), and the token in its URL must not leak through a Referer.
 */
export const DASHBOARD_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
} as const;

/**
 * The dashboard's page, stylesheet and script. They are plain files beside the sources
 * (`src/admin/assets/`): tsc does not copy them, so the compiled module finds them there.
 */
export class DashboardAssets {
  readonly #index: string;
  readonly #files = new Map<string, DashboardAsset>();

  constructor(directory: string = findAssetDirectory()) {
    // The types are fixed identifiers (no `<`), so the JSON cannot end the script element.
    this.#index = readFileSync(`${directory}/index.html`, 'utf8').replace(
      EVENT_TYPES_PLACEHOLDER,
      JSON.stringify(EVENT_TYPES),
    );
    for (const [name, contentType] of Object.entries(FILES)) {
      this.#files.set(name, { contentType, body: readFileSync(`${directory}/${name}`, 'utf8') });
    }
  }

  /** The page; `token` (already verified) is passed on to the asset URLs. */
  index(token: string | undefined): string {
    const query = token === undefined ? '' : `?token=${encodeURIComponent(token).replace(/'/g, '%27')}`;
    return this.#index.replace(QUERY_PLACEHOLDER, query);
  }

  file(name: string): DashboardAsset | undefined {
    return this.#files.get(name);
  }
}

function findAssetDirectory(): string {
  const candidates = [
    // Running from source (vitest, tsx).
    new URL('./assets', import.meta.url),
    // Running compiled: dist/src/admin/ → src/admin/assets/.
    new URL('../../../src/admin/assets', import.meta.url),
  ];
  for (const candidate of candidates) {
    const path = fileURLToPath(candidate);
    if (existsSync(`${path}/index.html`)) return path;
  }
  throw new Error(
    `dashboard assets not found (looked in ${candidates.map((c) => fileURLToPath(c)).join(', ')})`,
  );
}

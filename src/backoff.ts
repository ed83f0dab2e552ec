/**
 * Exponential backoff after `failures` failures in a row: no wait after the first (it may be
 * a blip), then `firstMs`, doubling with each failure, capped at `maxMs`.
 */
export function backoffMs(failures: number, firstMs: number, maxMs: number): number {
  return failures <= 1 ? 0 : Math.min(maxMs, firstMs * 2 ** (failures - 2));
}

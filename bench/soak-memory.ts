/**
 * Where the soak's control-plane RSS goes. RSS alone cannot tell a leak from V8 sizing its
 * heap: the committed heap (heapTotal) grows and shrinks in steps of several MiB while the
 * live heap stays level, and those steps are most of the RSS curve. So each sample also
 * splits the control plane's RSS into anonymous memory (heap, malloc) and file-backed pages
 * (the node binary), and reads from admin /metrics the committed and used V8 heap, external
 * memory, ArrayBuffers and libuv handles by type. Off-heap = anonymous RSS − heapTotal: what
 * sockets, parsers, Buffers and malloc arenas hold. A leak of channels, pools or sockets
 * grows that, or the handle counts; V8's sizing does not.
 */
import { readFileSync } from 'node:fs';
import { round } from './common.js';

/** One sample of the control plane's memory (bytes and KiB as named; null: not read this time). */
export interface ControlPlaneMemory {
  rssAnonKiB: number | null;
  rssFileKiB: number | null;
  heapTotalBytes: number | null;
  heapUsedBytes: number | null;
  externalBytes: number | null;
  arrayBuffersBytes: number | null;
  /** Committed bytes of each V8 heap space (new, old, code, …): which one the steps come from. */
  heapSpaceBytes: Record<string, number>;
  /** `nodejs_active_handles` by type (Socket, Server, Pipe, …): a leaked socket shows here. */
  handles: Record<string, number>;
}

/** One `Name:   N kB` line of /proc/PID/status. */
export function statusKiB(pid: number, field: string): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** The value of an unlabelled metric in Prometheus text, or null. */
function metricOf(text: string, name: string): number | null {
  const match = new RegExp(`^${name} ([0-9.e+]+)`, 'm').exec(text);
  return match ? Number(match[1]) : null;
}

/** The control plane's memory now: /proc/PID/status and the admin listener's /metrics. */
export async function sampleControlPlane(pid: number, adminUrl: string): Promise<ControlPlaneMemory> {
  const sample: ControlPlaneMemory = {
    rssAnonKiB: statusKiB(pid, 'RssAnon'),
    rssFileKiB: statusKiB(pid, 'RssFile'),
    heapTotalBytes: null,
    heapUsedBytes: null,
    externalBytes: null,
    arrayBuffersBytes: null,
    heapSpaceBytes: {},
    handles: {},
  };
  try {
    const text = await (await fetch(`${adminUrl}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    sample.heapTotalBytes = metricOf(text, 'nodejs_heap_size_total_bytes');
    sample.heapUsedBytes = metricOf(text, 'nodejs_heap_size_used_bytes');
    sample.externalBytes = metricOf(text, 'nodejs_external_memory_bytes');
    sample.arrayBuffersBytes = metricOf(text, 'stickylb_array_buffers_bytes');
    for (const match of text.matchAll(/^nodejs_heap_space_size_total_bytes\{space="(\w+)"\} (\d+)/gm)) {
      sample.heapSpaceBytes[match[1] as string] = Number(match[2]);
    }
    for (const match of text.matchAll(/^nodejs_active_handles\{type="(\w+)"\} (\d+)/gm)) {
      sample.handles[match[1] as string] = Number(match[2]);
    }
  } catch {
    // the admin listener was busy: a gap in these series
  }
  return sample;
}

/** One series of the control plane over the run's first, middle and last third. */
export interface ThirdsRow {
  series: string;
  first: number;
  middle: number;
  last: number;
}

const MIB = 2 ** 20;

/**
 * Means per third of the control plane's memory series (MiB), and handles as the most seen
 * at once. The V8 heap used is the least seen in each third: samples land anywhere in the
 * GC cycle, and the floor is the nearest to the live heap.
 */
export function controlPlaneThirds(
  samples: ReadonlyArray<{ atSec: number; controlPlane?: ControlPlaneMemory }>,
  durationSec: number,
): ThirdsRow[] {
  const third = durationSec / 3;
  const bounds: Array<[number, number]> = [
    [0, third],
    [third, 2 * third],
    [2 * third, Infinity],
  ];
  const row = (
    series: string,
    read: (memory: ControlPlaneMemory) => number | null,
    reduce: (values: number[]) => number = mean,
  ): ThirdsRow => {
    const [first, middle, last] = bounds.map(([from, to]) => {
      const values = samples
        .filter((sample) => sample.atSec >= from && sample.atSec < to && sample.controlPlane !== undefined)
        .map((sample) => read(sample.controlPlane as ControlPlaneMemory))
        .filter((value): value is number => value !== null);
      return values.length === 0 ? Number.NaN : round(reduce(values), 1);
    }) as [number, number, number];
    return { series, first, middle, last };
  };
  const offHeap = (memory: ControlPlaneMemory): number | null =>
    memory.rssAnonKiB === null || memory.heapTotalBytes === null
      ? null
      : (memory.rssAnonKiB * 1024 - memory.heapTotalBytes) / MIB;
  const handleTypes = [
    ...new Set(samples.flatMap((sample) => Object.keys(sample.controlPlane?.handles ?? {}))),
  ];
  return [
    row('RSS anonymous (MiB)', (memory) => kib(memory.rssAnonKiB)),
    row('RSS file-backed (MiB)', (memory) => kib(memory.rssFileKiB)),
    row('V8 heap committed, heapTotal (MiB)', (memory) => bytes(memory.heapTotalBytes)),
    row('V8 new space committed (MiB)', (memory) => bytes(memory.heapSpaceBytes.new ?? null)),
    row('V8 old space committed (MiB)', (memory) => bytes(memory.heapSpaceBytes.old ?? null)),
    row(
      'V8 heap used, floor (MiB)',
      (memory) => bytes(memory.heapUsedBytes),
      (values) => Math.min(...values),
    ),
    row('off-heap: RSS anonymous − heapTotal (MiB)', offHeap),
    row('external (MiB)', (memory) => bytes(memory.externalBytes)),
    row('ArrayBuffers (MiB)', (memory) => bytes(memory.arrayBuffersBytes)),
    ...handleTypes.sort().map((type) =>
      row(
        `${type} handles (most at once)`,
        (memory) => memory.handles[type] ?? 0,
        (values) => Math.max(...values),
      ),
    ),
  ];
}

const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
const kib = (value: number | null): number | null => (value === null ? null : value / 1024);
const bytes = (value: number | null): number | null => (value === null ? null : value / MIB);

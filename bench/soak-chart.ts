/**
 * A hand-written SVG line chart (no dependency): RSS of each process over time. A process
 * that was killed and restarted (a node) keeps its colour; its line breaks at the restart.
 */

/** One line: the samples of one named process, `pid` telling restarts apart. */
export interface ChartSeries {
  name: string;
  points: Array<{ minute: number; value: number; pid: number }>;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const WIDTH = 900;
const HEIGHT = 460;
const MARGIN = { left: 64, right: 190, top: 36, bottom: 48 };

const escapeXml = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round axis step giving about `count` ticks over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const unit = raw / power;
  return (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * power;
}

/** The chart as an SVG document; `title` on top, `yLabel` along the y axis. */
export function renderLineChart(series: ChartSeries[], title: string, yLabel: string): string {
  const all = series.flatMap((line) => line.points);
  const maxMinute = Math.max(1e-9, ...all.map((point) => point.minute));
  const yStep = niceStep(Math.max(1, ...all.map((point) => point.value)), 6);
  const maxValue = yStep * Math.ceil(Math.max(1, ...all.map((point) => point.value)) / yStep);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (minute: number): number => MARGIN.left + (minute / maxMinute) * plotWidth;
  const y = (value: number): number => MARGIN.top + plotHeight - (value / maxValue) * plotHeight;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
  ];
  for (let value = 0; value <= maxValue + 1e-9; value += yStep) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(value).toFixed(1)}" y2="${y(value).toFixed(1)}" stroke="#e5e5e5"/>`,
      `<text x="${MARGIN.left - 6}" y="${(y(value) + 4).toFixed(1)}" text-anchor="end">${round(value)}</text>`,
    );
  }
  const xStep = niceStep(maxMinute, 10);
  for (let minute = 0; minute <= maxMinute + 1e-9; minute += xStep) {
    parts.push(
      `<line x1="${x(minute).toFixed(1)}" x2="${x(minute).toFixed(1)}" y1="${MARGIN.top + plotHeight}" y2="${MARGIN.top + plotHeight + 4}" stroke="#333"/>`,
      `<text x="${x(minute).toFixed(1)}" y="${MARGIN.top + plotHeight + 18}" text-anchor="middle">${round(minute)}</text>`,
    );
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 10}" text-anchor="middle">minutes</text>`,
    `<text transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  series.forEach((line, index) => {
    const colour = COLOURS[index % COLOURS.length] as string;
    // One polyline per pid: a restarted process starts a new segment.
    let segment: string[] = [];
    let pid: number | undefined;
    const flush = (): void => {
      if (segment.length > 1)
        parts.push(
          `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${segment.join(' ')}"/>`,
        );
      segment = [];
    };
    for (const point of line.points) {
      if (pid !== undefined && point.pid !== pid) flush();
      pid = point.pid;
      segment.push(`${x(point.minute).toFixed(1)},${y(point.value).toFixed(1)}`);
    }
    flush();
    const legendY = MARGIN.top + 10 + index * 18;
    parts.push(
      `<line x1="${WIDTH - MARGIN.right + 14}" x2="${WIDTH - MARGIN.right + 34}" y1="${legendY}" y2="${legendY}" stroke="${colour}" stroke-width="3"/>`,
      `<text x="${WIDTH - MARGIN.right + 40}" y="${legendY + 4}">${escapeXml(line.name)}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function round(value: number): string {
  return String(Number(value.toFixed(2)));
}

/* global URLSearchParams, ResizeObserver */
// The stickylb dashboard. It only ever receives aggregates (counts per node, never a list of
// sessions), so it stays light with any number of sessions; DOM and charts are redrawn at most
// once per animation frame, whatever the rate of updates.

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get('token');
const authQuery = token ? `?token=${encodeURIComponent(token)}` : '';
const authHeaders = token ? { authorization: `Bearer ${token}` } : {};

const PALETTE = ['#2f6fde', '#e8793a', '#2a9d8f', '#d64545', '#8e63ce', '#c9a227', '#4aa3c8', '#c2559b'];
const TIMELINE_MS = 10 * 60 * 1000;
const MAX_EVENTS = 200;
/**
 * Event types the stream sends (EventSource needs a listener per named event): the server's
 * list (src/admin/event-types.ts), written into the page, so the two cannot drift apart.
 */
const EVENT_TYPES = JSON.parse($('event-types').textContent);

const fmt = new Intl.NumberFormat('en-US');
const fmt1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const fmt2 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** Everything the page shows; the render pass reads it. */
const view = {
  state: undefined,
  /** Timeline samples {at, nodes: {id: sessions}}, oldest first. */
  samples: [],
  /** Log events by id. */
  events: new Map(),
  lastEventId: 0,
  /** The proxy run the event ids belong to: they restart at 1 when the proxy restarts. */
  bootId: undefined,
  colors: new Map(),
  eventsDirty: true,
};

// ---------------------------------------------------------------------------------------------
// Data

function colorOf(nodeId) {
  let color = view.colors.get(nodeId);
  if (color === undefined) {
    color = PALETTE[view.colors.size % PALETTE.length];
    view.colors.set(nodeId, color);
  }
  return color;
}

async function api(method, path, body) {
  const headers = { ...authHeaders };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const json = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(json.message || `${response.status} ${response.statusText}`);
  return json;
}

/** Forgets the events of an earlier proxy run: its ids would hide the new run's. */
function adoptBoot(bootId) {
  if (bootId === undefined || bootId === view.bootId) return;
  if (view.bootId !== undefined) {
    view.events.clear();
    view.lastEventId = 0;
    view.eventsDirty = true;
  }
  view.bootId = bootId;
}

function addEvent(event) {
  if (view.events.has(event.id)) return;
  view.events.set(event.id, event);
  if (event.id > view.lastEventId) view.lastEventId = event.id;
  if (view.events.size > MAX_EVENTS) {
    const oldest = Math.min(...view.events.keys());
    view.events.delete(oldest);
  }
  view.eventsDirty = true;
}

function onState(state) {
  adoptBoot(state.bootId);
  view.state = state;
  const nodes = {};
  for (const node of state.nodes) nodes[node.id] = node.sessions;
  const last = view.samples[view.samples.length - 1];
  if (last === undefined || state.at > last.at) view.samples.push({ at: state.at, nodes });
  const cutoff = state.at - TIMELINE_MS;
  while (view.samples.length > 0 && view.samples[0].at < cutoff) view.samples.shift();
  // An event may have come and gone while the stream reconnected: fetch the recent ones.
  if (state.lastEventId > view.lastEventId) catchUpEvents();
  schedule();
}

let catchingUp = false;
async function catchUpEvents() {
  if (catchingUp) return;
  catchingUp = true;
  try {
    const state = await api('GET', '/api/state');
    adoptBoot(state.bootId);
    for (const event of state.events) addEvent(event);
    // Events older than the buffer are gone for good: do not ask again.
    view.lastEventId = Math.max(view.lastEventId, state.lastEventId);
    schedule();
  } catch {
    // The stream's next snapshot tries again.
  } finally {
    catchingUp = false;
  }
}

function connect() {
  const source = new EventSource(`/api/events${authQuery}`);
  const connection = $('connection');
  source.addEventListener('open', () => {
    connection.textContent = 'live';
    connection.className = 'pill pill-live';
  });
  source.addEventListener('error', () => {
    connection.textContent = 'reconnecting…';
    connection.className = 'pill pill-wait';
  });
  source.addEventListener('state', (message) => onState(JSON.parse(message.data)));
  const onLogEvent = (message) => {
    // The SSE id is `<bootId>-<id>`: a replay after a proxy restart starts a new run.
    adoptBoot(message.lastEventId.slice(0, message.lastEventId.lastIndexOf('-')) || undefined);
    const event = JSON.parse(message.data);
    // A gap: an event went by unseen (a type this page has no listener for): fetch the recent ones.
    if (event.id > view.lastEventId + 1) catchUpEvents();
    addEvent(event);
    schedule();
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, onLogEvent);
}

async function start() {
  bindControls();
  new ResizeObserver(() => schedule()).observe($('timeline').parentElement);
  try {
    const [history, state] = await Promise.all([api('GET', '/api/history'), api('GET', '/api/state')]);
    view.samples = history.samples.slice();
    adoptBoot(state.bootId);
    for (const event of state.events) addEvent(event);
    onState(state);
  } catch (error) {
    toast(`could not load the state: ${error.message}`, true);
  }
  connect();
}

// ---------------------------------------------------------------------------------------------
// Actions

function bindControls() {
  for (const button of document.querySelectorAll('[data-create]')) {
    button.addEventListener('click', () => createSessions(Number(button.dataset.create)));
  }
  $('sweep').addEventListener('click', () =>
    run($('sweep'), async () => {
      const report = await api('POST', '/api/sweep');
      return `swept ${fmt.format(report.affinity.expired)} expired sessions`;
    }),
  );
  $('rebalance').addEventListener('click', () =>
    run($('rebalance'), async () => {
      const { report } = await api('POST', '/api/rebalance');
      return `rebalance: ${fmt.format(report.moved + report.lost)} sessions moved`;
    }),
  );
  // One listener for every row's buttons (rows come and go with the config).
  document.querySelector('#nodes tbody').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    if (button === null) return;
    const { action, node } = button.dataset;
    run(button, async () => {
      const result = await api('POST', `/api/nodes/${encodeURIComponent(node)}/${action}`);
      if (action === 'evacuate')
        return `${node}: ${fmt.format(result.report.moved + result.report.lost)} sessions moved`;
      return `${node} is ${result.state}`;
    });
  });
}

async function createSessions(count) {
  const buttons = document.querySelectorAll('[data-create]');
  for (const button of buttons) button.disabled = true;
  toast(`creating ${fmt.format(count)} sessions through the proxy…`);
  try {
    const report = await api('POST', '/api/test-sessions', { count });
    toast(`${fmt.format(report.created)} sessions created in ${fmt1.format(report.durationMs / 1000)} s`);
  } catch (error) {
    toast(error.message, true);
  } finally {
    for (const button of buttons) button.disabled = false;
  }
}

async function run(button, action) {
  button.disabled = true;
  try {
    toast(await action());
  } catch (error) {
    toast(error.message, true);
  } finally {
    button.disabled = false;
  }
}

let toastTimer;
function toast(text, isError = false) {
  const element = $('toast');
  element.textContent = text;
  element.className = `toast is-shown${isError ? ' is-error' : ''}`;
  window.clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (element.className = 'toast'), 4000);
}

// ---------------------------------------------------------------------------------------------
// Rendering, at most once per frame

let isScheduled = false;
function schedule() {
  if (isScheduled) return;
  isScheduled = true;
  requestAnimationFrame(() => {
    isScheduled = false;
    render();
  });
}

function render() {
  const state = view.state;
  if (state !== undefined) {
    renderTotals(state);
    renderDistribution(state);
    renderTable(state);
    renderStats(state);
  }
  renderTimeline();
  if (view.eventsDirty) renderEvents();
}

function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

function renderTotals(state) {
  const totals = state.totals ?? {};
  setText($('total-sessions'), fmt.format(state.sessions.total));
  setText($('total-replicas'), fmt.format(totals.replicas ?? 0));
  setText($('total-rps'), fmt1.format(totals.requestsPerSec ?? 0));
  setText($('total-in-flight'), fmt.format(totals.inFlight ?? 0));
  setText($('total-failovers'), fmt.format(state.failover.failovers));
  setText($('total-moved'), fmt.format(state.failover.moved + state.failover.lost));
  renderRedis(state.redis);
}

/** Distributed mode only: a pill that turns red while Redis is unreachable. */
function renderRedis(redis) {
  const pill = $('redis');
  pill.hidden = redis === undefined;
  if (redis === undefined) return;
  setText(pill, redis.state === 'up' ? 'redis up' : 'redis down');
  pill.className = redis.state === 'up' ? 'pill pill-live' : 'pill pill-down';
  pill.title =
    redis.state === 'up'
      ? `${redis.url}: shared affinity and replicas`
      : `${redis.url} unreachable since ${new Date(redis.since).toLocaleTimeString()}: known sessions are still served; writes fail and no session can move (${redis.lastError ?? ''})`;
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(name, attributes = {}) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  return element;
}

/** Horizontal bars, one per node: rows are built once and then only resized. */
const bars = new Map();
function renderDistribution(state) {
  const chart = $('distribution');
  const width = chart.clientWidth;
  const height = chart.clientHeight;
  if (width === 0 || height === 0) return;
  const ids = state.nodes.map((node) => node.id).join(',');
  if (chart.dataset.nodes !== ids) {
    chart.replaceChildren();
    bars.clear();
    for (const node of state.nodes) {
      const group = svg('g', { 'data-node': node.id });
      const label = svg('text', { class: 'bar-label', 'dominant-baseline': 'middle', 'font-size': 12 });
      label.textContent = node.id;
      const track = svg('rect', { fill: '#eef0f3', rx: 3 });
      const bar = svg('rect', { fill: colorOf(node.id), rx: 3 });
      const value = svg('text', { 'dominant-baseline': 'middle', 'font-size': 12, 'font-weight': 600 });
      group.append(track, bar, label, value);
      chart.append(group);
      bars.set(node.id, { group, label, track, bar, value });
    }
    chart.dataset.nodes = ids;
  }
  const total = state.sessions.total;
  const max = Math.max(1, ...state.nodes.map((node) => node.sessions));
  const labelWidth = 70;
  const valueWidth = 110;
  const barSpace = Math.max(20, width - labelWidth - valueWidth);
  const rowHeight = Math.min(38, height / Math.max(1, state.nodes.length));
  state.nodes.forEach((node, index) => {
    const row = bars.get(node.id);
    const y = index * rowHeight + rowHeight / 2;
    const barHeight = Math.max(8, rowHeight * 0.55);
    row.label.setAttribute('x', 0);
    row.label.setAttribute('y', y);
    row.track.setAttribute('x', labelWidth);
    row.track.setAttribute('y', y - barHeight / 2);
    row.track.setAttribute('width', barSpace);
    row.track.setAttribute('height', barHeight);
    row.bar.setAttribute('x', labelWidth);
    row.bar.setAttribute('y', y - barHeight / 2);
    row.bar.setAttribute('width', Math.max(node.sessions > 0 ? 2 : 0, (barSpace * node.sessions) / max));
    row.bar.setAttribute('height', barHeight);
    row.bar.setAttribute('fill', node.state === 'down' ? '#c4c9d2' : colorOf(node.id));
    row.value.setAttribute('x', labelWidth + barSpace + 8);
    row.value.setAttribute('y', y);
    const share = total > 0 ? ` · ${Math.round((100 * node.sessions) / total)}%` : '';
    const text =
      node.state === 'down' ? `${fmt.format(node.sessions)} · down` : `${fmt.format(node.sessions)}${share}`;
    if (row.value.textContent !== text) row.value.textContent = text;
    row.value.setAttribute('fill', node.state === 'down' ? '#d64545' : '#1d2330');
  });
}

/** Table rows by node id; cells are updated in place, only when their text changes. */
const rows = new Map();
const FIELDS = ['sessions', 'replicas', 'inFlight', 'requestsPerSec', 'p50', 'p99', 'weight'];
function renderTable(state) {
  const tbody = document.querySelector('#nodes tbody');
  const ids = state.nodes.map((node) => node.id).join(',');
  if (tbody.dataset.nodes !== ids) {
    tbody.replaceChildren();
    rows.clear();
    for (const node of state.nodes) {
      const tr = document.createElement('tr');
      tr.dataset.node = node.id;
      const cells = {};
      const idCell = document.createElement('td');
      const swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colorOf(node.id);
      idCell.append(swatch, node.id);
      const stateCell = document.createElement('td');
      cells.state = document.createElement('span');
      cells.state.dataset.field = 'state';
      stateCell.append(cells.state);
      tr.append(idCell, stateCell);
      for (const field of FIELDS) {
        const td = document.createElement('td');
        td.className = 'num';
        td.dataset.field = field;
        cells[field] = td;
        tr.append(td);
      }
      cells.check = document.createElement('td');
      cells.check.dataset.field = 'check';
      const actions = document.createElement('td');
      const box = document.createElement('div');
      box.className = 'actions';
      cells.drain = button(node.draining ? 'Undrain' : 'Drain', node.id, node.draining ? 'undrain' : 'drain');
      cells.evacuate = button('Evacuate', node.id, 'evacuate');
      box.append(cells.drain, cells.evacuate);
      actions.append(box);
      tr.append(cells.check, actions);
      tbody.append(tr);
      rows.set(node.id, { tr, cells });
    }
    tbody.dataset.nodes = ids;
  }
  for (const node of state.nodes) {
    const { tr, cells } = rows.get(node.id);
    tr.className = node.state === 'down' ? 'is-down' : '';
    setText(cells.state, node.state);
    cells.state.className = `state state-${node.state}`;
    // Sessions a move is installing here show as "+N" until they are counted as the node's.
    const incoming = node.incoming > 0 ? ` +${fmt.format(node.incoming)}` : '';
    setText(cells.sessions, fmt.format(node.sessions) + incoming);
    // null: not counted yet (the replica store not reachable yet).
    setText(cells.replicas, node.replicas === null ? '–' : fmt.format(node.replicas));
    setText(cells.inFlight, fmt.format(node.inFlight));
    setText(cells.requestsPerSec, fmt1.format(node.requestsPerSec ?? 0));
    setText(cells.p50, node.latencyMs ? fmt2.format(node.latencyMs.p50) : '–');
    setText(cells.p99, node.latencyMs ? fmt2.format(node.latencyMs.p99) : '–');
    setText(cells.weight, String(node.weight));
    const check = node.lastCheck;
    setText(
      cells.check,
      check === undefined || check === null
        ? '–'
        : check.ok
          ? `ok · ${fmt1.format(check.latencyMs)} ms`
          : (check.error ?? `HTTP ${check.status}`),
    );
    cells.check.className = check && !check.ok ? 'check check-bad' : 'check';
    cells.check.title = check && !check.ok ? cells.check.textContent : '';
    const drainAction = node.draining ? 'undrain' : 'drain';
    if (cells.drain.dataset.action !== drainAction) {
      cells.drain.dataset.action = drainAction;
      cells.drain.textContent = node.draining ? 'Undrain' : 'Drain';
      cells.drain.setAttribute('aria-label', `${node.draining ? 'Undrain' : 'Drain'} ${node.id}`);
    }
  }
}

function button(text, nodeId, action) {
  const element = document.createElement('button');
  element.type = 'button';
  element.textContent = text;
  element.dataset.node = nodeId;
  element.dataset.action = action;
  element.setAttribute('aria-label', `${text} ${nodeId}`);
  return element;
}

function renderStats(state) {
  const affinity = state.affinity;
  const replication = state.replication;
  const proxy = state.proxy;
  fillStats($('stats-affinity'), 'Affinity table', [
    ['active', fmt.format(affinity.active)],
    ['idle', fmt.format(affinity.idle)],
    ['expired (total)', fmt.format(affinity.expiredTotal)],
    ['evicted (total)', fmt.format(affinity.evictedTotal)],
    ['sweeps', fmt.format(affinity.sweepRuns)],
    ['last sweep', `${fmt2.format(affinity.lastSweepMs)} ms`],
    ['longest pause', `${fmt2.format(affinity.longestSweepSliceMs)} ms`],
    ['bytes / session', fmt.format(affinity.bytesPerSession)],
  ]);
  fillStats($('stats-replication'), 'Replica store', [
    ['replicas', fmt.format(replication.records)],
    ['writes', fmt.format(replication.writes)],
    ['write batches', fmt.format(replication.writeCalls)],
    ['stale refused', fmt.format(replication.staleRejected)],
    ['not-owner refused', fmt.format(replication.notOwnerRejected)],
    ['transfers', fmt.format(replication.transfers)],
    ['expired', fmt.format(replication.expired)],
  ]);
  fillStats($('stats-proxy'), 'Proxy', [
    ['requests', fmt.format(proxy.requests)],
    ['upstream errors', fmt.format(proxy.upstreamErrors)],
    ['upstream timeouts', fmt.format(proxy.upstreamTimeouts)],
    ['no healthy node', fmt.format(proxy.noHealthyNode)],
    ['retries', fmt.format(proxy.retries)],
    ['client aborts', fmt.format(proxy.clientAborts)],
    ['rejected ids', fmt.format(proxy.rejectedIds ?? 0)],
  ]);
}

function fillStats(list, title, entries) {
  if (list.childElementCount !== entries.length * 2 + 1) {
    list.replaceChildren();
    const head = document.createElement('dt');
    head.className = 'head';
    head.textContent = title;
    list.append(head);
    for (const [label] of entries) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      list.append(dt, document.createElement('dd'));
    }
  }
  entries.forEach(([, value], index) => setText(list.children[2 + index * 2], value));
}

function renderTimeline() {
  const canvas = $('timeline');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const context = canvas.getContext('2d');
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  context.clearRect(0, 0, width, height);
  const samples = view.samples;
  const now = samples.length > 0 ? samples[samples.length - 1].at : Date.now();
  const ids = view.state ? view.state.nodes.map((node) => node.id) : [];
  let max = 1;
  for (const sample of samples) for (const id of ids) max = Math.max(max, sample.nodes[id] ?? 0);
  const top = niceCeiling(max);
  const left = 48;
  const right = 8;
  const bottom = 20;
  const legend = 18;
  const plotWidth = width - left - right;
  const plotHeight = height - bottom - legend;
  const x = (at) => left + plotWidth * (1 - (now - at) / TIMELINE_MS);
  const y = (value) => legend + plotHeight * (1 - value / top);

  context.font = '11px system-ui, sans-serif';
  context.lineWidth = 1;
  context.strokeStyle = '#e3e6eb';
  context.fillStyle = '#667085';
  context.textAlign = 'right';
  context.textBaseline = 'middle';
  for (let i = 0; i <= 4; i++) {
    const value = (top * i) / 4;
    context.beginPath();
    context.moveTo(left, Math.round(y(value)) + 0.5);
    context.lineTo(width - right, Math.round(y(value)) + 0.5);
    context.stroke();
    context.fillText(compact(value), left - 6, y(value));
  }
  context.textBaseline = 'top';
  for (let minutes = 10; minutes >= 0; minutes -= 2) {
    // The end labels stay inside the plot.
    context.textAlign = minutes === 10 ? 'left' : minutes === 0 ? 'right' : 'center';
    context.fillText(
      minutes === 0 ? 'now' : `-${minutes} min`,
      x(now - minutes * 60_000),
      legend + plotHeight + 5,
    );
  }

  context.lineWidth = 2;
  context.lineJoin = 'round';
  for (const id of ids) {
    context.strokeStyle = colorOf(id);
    context.beginPath();
    let isDrawing = false;
    for (const sample of samples) {
      const value = sample.nodes[id];
      if (value === undefined) {
        isDrawing = false;
        continue;
      }
      if (isDrawing) context.lineTo(x(sample.at), y(value));
      else context.moveTo(x(sample.at), y(value));
      isDrawing = true;
    }
    context.stroke();
  }

  // Legend along the top.
  context.textAlign = 'left';
  context.textBaseline = 'middle';
  let legendX = left;
  for (const id of ids) {
    context.fillStyle = colorOf(id);
    context.fillRect(legendX, 4, 10, 10);
    context.fillStyle = '#1d2330';
    context.fillText(id, legendX + 14, 9);
    legendX += context.measureText(id).width + 30;
  }
}

function niceCeiling(value) {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function compact(value) {
  if (value >= 1_000_000) return `${fmt1.format(value / 1_000_000)}M`;
  if (value >= 1000) return `${fmt1.format(value / 1000)}k`;
  return fmt1.format(value);
}

function renderEvents() {
  view.eventsDirty = false;
  const list = $('events');
  // Items are matched by event id, and a restarted proxy's ids start again at 1: start afresh.
  if (list.dataset.boot !== (view.bootId ?? '')) {
    list.replaceChildren();
    list.dataset.boot = view.bootId ?? '';
  }
  const ids = [...view.events.keys()].sort((a, b) => b - a);
  const shown = new Set(ids);
  for (const item of [...list.children]) if (!shown.has(Number(item.dataset.id))) item.remove();
  const present = new Set([...list.children].map((item) => Number(item.dataset.id)));
  // Insert missing ones in order, newest first.
  let cursor = list.firstElementChild;
  for (const id of ids) {
    if (present.has(id)) {
      cursor = cursor?.nextElementSibling ?? null;
      continue;
    }
    const item = eventItem(view.events.get(id));
    list.insertBefore(item, cursor);
  }
}

function eventItem(event) {
  const item = document.createElement('li');
  item.dataset.id = String(event.id);
  item.dataset.type = event.type;
  item.className = `ev-${event.type.replace(/[^a-z0-9]+/gi, '-')}`;
  const time = document.createElement('time');
  const at = new Date(event.at);
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString('en-GB');
  const message = document.createElement('span');
  message.className = 'msg';
  message.textContent = event.message;
  item.append(time, message);
  return item;
}

start();

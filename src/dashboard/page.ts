/** What the page needs from the server, all of it safe to show to whoever may load the page. */
export interface PageSettings {
  /** The CSP nonce of this response's script and style. */
  nonce: string;
  title: string;
  refreshMs: number;
  /** The CSRF token actions send back; null when the dashboard is read-only. */
  csrf: string | null;
  promptForToken: boolean;
  showPayloads: boolean;
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * The whole page: HTML, CSS and the script that draws it from `api/snapshot`, with SVG charts.
 * Self-contained (no fetch of any other asset), so it ships inside the package's JavaScript and
 * its Content-Security-Policy can forbid everything else. Every value from the database is put
 * into the page as text (`textContent`), never as markup.
 */
export function dashboardPage(settings: PageSettings): string {
  const config = JSON.stringify({
    refreshMs: settings.refreshMs,
    csrf: settings.csrf,
    promptForToken: settings.promptForToken,
    showPayloads: settings.showPayloads,
  }).replace(/</g, '\\u003c');
  const title = escapeHtml(settings.title);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} dashboard</title>
<style nonce="${settings.nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>${title} <span class="sub">operations</span></h1>
  <span id="mode" class="badge"></span>
  <span id="updated" class="muted"></span>
  <label id="token-box" hidden>Action token <input id="token" type="password" autocomplete="off"></label>
</header>
<div id="status" role="status"></div>
<main>
  <section id="outbox"><h2>Outbox</h2><div class="body"></div></section>
  <section id="barrier"><h2>Barrier table</h2><div class="body"></div></section>
  <section id="idempotency"><h2>Idempotency keys</h2><div class="body"></div></section>
</main>
<dialog id="message"><pre></pre><form method="dialog"><button>Close</button></form></dialog>
<script nonce="${settings.nonce}">const CONFIG = ${config};
${SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
:root { --fg:#1d2330; --muted:#6b7280; --line:#e5e7eb; --bg:#f7f8fa; --card:#fff; --accent:#2563eb; --warn:#b45309; --bad:#b91c1c; --ok:#15803d; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:16px; align-items:center; flex-wrap:wrap; padding:12px 24px; background:var(--card); border-bottom:1px solid var(--line); }
h1 { font-size:18px; margin:0; } h1 .sub { font-weight:400; color:var(--muted); }
h2 { font-size:16px; margin:0 0 12px; } h3 { font-size:13px; margin:16px 0 6px; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
main { display:grid; gap:16px; padding:16px 24px; grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px; }
section#outbox { grid-column:1 / -1; }
.badge { padding:2px 8px; border-radius:10px; font-size:12px; background:#eef2ff; color:var(--accent); }
.badge.ro { background:#f3f4f6; color:var(--muted); }
.muted, .note { color:var(--muted); } .note { font-size:12px; margin:4px 0 0; }
.tiles { display:flex; flex-wrap:wrap; gap:10px; }
.tile { min-width:130px; padding:8px 12px; border:1px solid var(--line); border-radius:6px; }
.tile b { display:block; font-size:20px; } .tile span { font-size:12px; color:var(--muted); }
.tile.warn b { color:var(--warn); } .tile.bad b { color:var(--bad); }
.charts { display:grid; gap:16px; grid-template-columns:repeat(auto-fit, minmax(300px, 1fr)); }
svg { width:100%; height:auto; display:block; } svg text { font-size:10px; fill:var(--muted); }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; padding:4px 6px; border-bottom:1px solid var(--line); vertical-align:top; }
td.err { color:var(--bad); max-width:420px; overflow-wrap:anywhere; } td.id { font-family:ui-monospace, monospace; font-size:12px; }
button { font:inherit; padding:2px 10px; border:1px solid var(--accent); color:var(--accent); background:#fff; border-radius:4px; cursor:pointer; }
button.danger { border-color:var(--bad); color:var(--bad); }
#status { padding:0 24px; min-height:20px; } #status.error { color:var(--bad); } #status.done { color:var(--ok); }
.missing { color:var(--warn); }
`;

// Plain ES2020 for any current browser; no framework. Runs under a CSP without 'unsafe-inline'
// handlers, so every listener is attached here.
const SCRIPT = String.raw`
const samples = [];
const HISTORY = 120;
const $ = (selector) => document.querySelector(selector);
const el = (tag, attrs, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === 'on') for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
};
const SVG = 'http://www.w3.org/2000/svg';
const svg = (tag, attrs, ...children) => {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, String(value));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
};
const number = (n) => Number(n).toLocaleString('en');
const counted = (c) => (c.capped ? 'at least ' : '') + number(c.count);
function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 90) return Math.round(seconds) + ' s';
  if (seconds < 5400) return Math.round(seconds / 60) + ' min';
  if (seconds < 172800) return (seconds / 3600).toFixed(1) + ' h';
  return (seconds / 86400).toFixed(1) + ' d';
}
const tile = (label, value, level) => el('div', { class: 'tile ' + (level || '') }, el('b', {}, value), el('span', {}, label));
function say(text, kind) {
  const status = $('#status');
  status.textContent = text;
  status.className = kind || '';
}

// Axis labels must fit under a bar: 1m, 15m, 6h, 1d.
const short = (seconds) => (seconds < 3600 ? seconds / 60 + 'm' : seconds < 86400 ? seconds / 3600 + 'h' : seconds / 86400 + 'd');
function bucketLabels(bounds) {
  const labels = ['<' + short(bounds[0])];
  for (let i = 1; i < bounds.length; i++) labels.push(short(bounds[i - 1]) + '–' + short(bounds[i]));
  labels.push('≥' + short(bounds[bounds.length - 1]));
  return labels;
}

function histogram(title, counts, labels) {
  const width = 360, height = 150, left = 8, bottom = 28, top = 14;
  const max = Math.max(1, ...counts);
  const slot = (width - left * 2) / counts.length;
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': title });
  counts.forEach((n, i) => {
    const h = ((height - bottom - top) * n) / max;
    const x = left + i * slot + 4;
    chart.append(svg('rect', { x, y: height - bottom - h, width: slot - 8, height: Math.max(h, n > 0 ? 1 : 0), fill: i >= 4 ? '#b45309' : '#2563eb', rx: 2 }));
    chart.append(svg('text', { x: x + (slot - 8) / 2, y: height - bottom - h - 3, 'text-anchor': 'middle' }, n > 0 ? number(n) : ''));
    chart.append(svg('text', { x: x + (slot - 8) / 2, y: height - 10, 'text-anchor': 'middle' }, labels[i]));
  });
  return el('div', {}, el('h3', {}, title), chart);
}

function backlogChart() {
  const width = 360, height = 150, left = 40, bottom = 20, top = 10;
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'pending backlog over time' });
  const max = Math.max(1, ...samples.map((p) => p.pending));
  chart.append(svg('line', { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: '#e5e7eb' }));
  chart.append(svg('text', { x: left - 4, y: top + 4, 'text-anchor': 'end' }, number(max)));
  chart.append(svg('text', { x: left - 4, y: height - bottom, 'text-anchor': 'end' }, '0'));
  if (samples.length > 1) {
    const t0 = samples[0].at, t1 = samples[samples.length - 1].at;
    const x = (t) => left + ((width - left) * (t - t0)) / Math.max(1, t1 - t0);
    const y = (n) => height - bottom - ((height - bottom - top) * n) / max;
    const points = samples.map((p) => x(p.at).toFixed(1) + ',' + y(p.pending).toFixed(1)).join(' ');
    chart.append(svg('polyline', { points, fill: 'none', stroke: '#2563eb', 'stroke-width': 2 }));
    chart.append(svg('text', { x: width, y: height - 4, 'text-anchor': 'end' }, 'last ' + age((t1 - t0) / 1000)));
  }
  return el('div', {}, el('h3', {}, 'Backlog (pending)'), chart,
    el('p', { class: 'note' }, 'Sampled by this page every ' + age(CONFIG.refreshMs / 1000) + ' while it is open. The database keeps no history: reloading starts the chart again.'));
}

async function call(path, method) {
  const headers = {};
  if (method === 'POST') {
    headers['x-txbarrier-csrf'] = CONFIG.csrf || '';
    const token = $('#token').value;
    if (token) headers.authorization = 'Bearer ' + token;
  }
  const response = await fetch(path, { method, headers, credentials: 'same-origin' });
  const body = await response.json().catch(() => ({ message: response.statusText }));
  if (!response.ok) throw new Error(body.message || 'HTTP ' + response.status);
  return body;
}

async function act(what, query, confirmText) {
  if (confirmText && !confirm(confirmText)) return;
  try {
    const result = await call('api/actions/' + what + '?' + new URLSearchParams(query), 'POST');
    say(what + ': ' + JSON.stringify(result), 'done');
  } catch (error) {
    say(what + ' refused: ' + error.message, 'error');
  }
  await refresh();
}

async function show(id) {
  try {
    const message = await call('api/message?' + new URLSearchParams({ id }), 'GET');
    const dialog = $('#message');
    dialog.querySelector('pre').textContent = JSON.stringify(message, null, 2);
    dialog.showModal();
  } catch (error) {
    say('cannot open ' + id + ': ' + error.message, 'error');
  }
}

function messages(list, actions, empty) {
  if (list.length === 0) return el('p', { class: 'muted' }, empty);
  return el('table', {},
    el('tr', {}, ['id', 'topic', 'key', 'attempts', 'enqueued', 'last error', ''].map((h) => el('th', {}, h))),
    list.map((m) => el('tr', { 'data-id': m.id },
      el('td', { class: 'id' }, m.id), el('td', {}, m.topic), el('td', {}, m.key || '—'), el('td', {}, m.attempts),
      el('td', {}, m.createdAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z')), el('td', { class: 'err' }, m.lastError || ''),
      el('td', {}, actions(m)))));
}

function missing(section, data) {
  section.replaceChildren(el('p', { class: 'missing' }, 'Table ' + data.table + ' not found in this database.'));
}

function drawOutbox(data, snapshot) {
  const body = $('#outbox .body');
  if (!data) return void $('#outbox').remove();
  if (data.missing) return missing(body, data);
  const labels = bucketLabels(snapshot.ageBounds);
  const p = data.pending, k = data.parked;
  const canAct = snapshot.actions;
  const view = (m) => (CONFIG.showPayloads ? el('button', { on: { click: () => show(m.id) } }, 'View') : null);
  body.replaceChildren(
    el('div', { class: 'tiles' },
      tile('pending', counted(p)),
      tile('oldest pending', age(p.oldestSeconds), p.oldestSeconds > 300 ? 'warn' : ''),
      tile('in flight (leased)', number(p.leased)),
      tile('waiting for a retry', number(p.held - p.leased), p.held - p.leased > 0 ? 'warn' : ''),
      tile('parked', counted(k), k.count > 0 ? 'bad' : ''),
      tile('sent in the last ' + age(data.sent.windowSeconds), number(data.sent.recent))),
    el('p', { class: 'note' }, 'Counts stop at ' + number(snapshot.countLimit) + ' rows ("at least"); ages and histograms are of the oldest ' +
      number(snapshot.countLimit) + ' of each status. "Sent" counts among the newest ' + number(data.sent.examined) + ' sent messages the relay has not pruned yet.'),
    el('div', { class: 'charts' }, backlogChart(), histogram('Pending by age', p.ages, labels), histogram('Parked by age', k.ages, labels)),
    el('h3', {}, 'Parked (oldest first): the relay gave up on these'),
    messages(k.messages, (m) => [canAct ? el('button', { on: { click: () => act('requeue', { id: m.id }) } }, 'Requeue') : null, view(m)], 'No parked messages.'),
    el('h3', {}, 'Pending (oldest first)'),
    messages(p.messages, (m) => [canAct ? el('button', { class: 'danger', on: { click: () => act('park', { id: m.id }, 'Park ' + m.id + '? The relay stops trying it (and every later message of its key) until it is requeued.') } }, 'Park') : null, view(m)], 'Nothing waiting.'));
}

function drawBarrier(data, snapshot) {
  const body = $('#barrier .body');
  if (!data) return void $('#barrier').remove();
  if (data.missing) return missing(body, data);
  const rows = data.rows.kind === 'exact' ? number(data.rows.count) : data.rows.kind === 'estimate' ? '≈ ' + number(data.rows.count) : 'at least ' + number(data.rows.count);
  const rowsLabel = data.rows.kind === 'estimate' ? 'rows (estimate from the engine\'s statistics)' : 'rows';
  const over = data.oldestSeconds !== null && data.oldestSeconds > data.retentionSeconds;
  body.replaceChildren(
    el('div', { class: 'tiles' },
      tile(rowsLabel, rows),
      tile('oldest row', age(data.oldestSeconds), over ? 'warn' : ''),
      tile('retention', age(data.retentionSeconds)),
      tile('a prune would delete', counted(data.prunable), data.prunable.count > 0 ? 'warn' : '')),
    el('p', { class: 'note' }, over ? 'The oldest row is past the retention: prune has not run lately.' : 'Every row is within the retention.'),
    el('p', { class: 'note' }, 'Dry run: counted now with the same condition as prune; nothing was deleted.'),
    el('h3', {}, 'Consumers: rows among the newest ' + number(data.consumers.examined)),
    data.consumers.keys.length === 0
      ? el('p', { class: 'muted' }, 'No consumer keys (consumer/source) among them.')
      : el('table', {}, el('tr', {}, el('th', {}, 'consumer / source'), el('th', {}, 'rows')),
          data.consumers.keys.map((k) => el('tr', {}, el('td', { class: 'id' }, k.key), el('td', {}, number(k.rows))))),
    snapshot.actions && data.prunable.count > 0
      ? el('button', { class: 'danger', on: { click: () => act('prune', { table: 'barrier', dryRun: snapshot.dryRun }, 'Delete ' + counted(data.prunable) + ' barrier rows older than ' + age(data.retentionSeconds) + '?') } }, 'Prune')
      : null);
}

function drawIdempotency(data, snapshot) {
  const body = $('#idempotency .body');
  if (!data) return void $('#idempotency').remove();
  if (data.missing) return missing(body, data);
  const capped = data.live.capped ? ' (of the ' + number(data.live.count) + ' expiring first)' : '';
  body.replaceChildren(
    el('div', { class: 'tiles' },
      tile('completed' + capped, number(data.live.completed)),
      tile('in progress', number(data.live.inProgress)),
      tile('stuck (no response after ' + age(data.stuckAfterSeconds) + ')', number(data.live.stuck), data.live.stuck > 0 ? 'bad' : ''),
      tile('expired, awaiting prune', counted(data.expired), data.expired.count > 0 ? 'warn' : '')),
    el('p', { class: 'note' }, 'A key commits with its response, so one in progress is only seen if something wrote it without one.'),
    snapshot.actions && data.expired.count > 0
      ? el('button', { class: 'danger', on: { click: () => act('prune', { table: 'idempotency', dryRun: snapshot.dryRun }, 'Delete ' + counted(data.expired) + ' expired keys?') } }, 'Prune expired')
      : null);
}

async function refresh() {
  let snapshot;
  try {
    snapshot = await call('api/snapshot', 'GET');
  } catch (error) {
    return say('cannot read the database: ' + error.message, 'error');
  }
  if (snapshot.outbox && !snapshot.outbox.missing) {
    samples.push({ at: Date.parse(snapshot.at), pending: snapshot.outbox.pending.count });
    if (samples.length > HISTORY) samples.shift();
  }
  const mode = $('#mode');
  mode.textContent = snapshot.actions ? 'actions enabled' : 'read-only';
  mode.className = 'badge' + (snapshot.actions ? '' : ' ro');
  $('#token-box').hidden = !(snapshot.actions && CONFIG.promptForToken);
  $('#updated').textContent = 'updated ' + new Date(snapshot.at).toLocaleTimeString();
  drawOutbox(snapshot.outbox, snapshot);
  drawBarrier(snapshot.barrier, snapshot);
  drawIdempotency(snapshot.idempotency, snapshot);
  document.body.dataset.loaded = snapshot.at;
}

refresh();
setInterval(refresh, CONFIG.refreshMs);
`;

// The page of `ckpt serve --ui` and `ckpt view` (docs/web-page.md). Plain JavaScript, no
// framework: it reads the server's JSON API (/api/ui/...) and builds the page with DOM calls.
// Every name that comes from a checkpoint is set as text (textContent, attribute values), never
// parsed as markup, so a tensor named like an HTML tag shows as that text and runs nothing.
// What the page shows is kept in the URL's fragment (#view=tree&ckpt=...&tensor=...), so a
// view can be linked, reloaded, and opened by a headless browser in a test.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#3465a4', '#cc0000', '#4e9a06', '#f57900', '#75507b', '#c4a000', '#06989a', '#555753'];

const byId = (id) => document.getElementById(id);

// An element with attributes (class, data-*, href, ...) and children (nodes or text).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// Numbers as the API sends them: JSON numbers, or "NaN" / "Infinity" / "-Infinity".
function fmt(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (Number.isInteger(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e-4 && a < 1e6 ? String(Number(v.toPrecision(6))) : v.toExponential(4);
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  return (i === 0 ? String(x) : x.toFixed(1)) + ' ' + units[i];
}

const shapeText = (shape) => '[' + shape.join(', ') + ']';

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

// A link to a view of the page: the parameters go into the fragment, encoded.
function viewHref(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  return '#' + p.toString();
}

async function api(what, params = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, v);
  const response = await fetch('/api/ui/' + what + '?' + p.toString(), { headers: { Accept: 'application/json' } });
  let body;
  try {
    body = await response.json();
  } catch (e) {
    throw new Error(what + ': the server answered ' + response.status + ' without JSON');
  }
  if (!response.ok) throw new Error(body.error || what + ': ' + response.status);
  return body;
}

// Shown on the page, and logged, so a browser's console (and the browser tests) see it too.
function showError(message) {
  if (message) console.error('ckpt page: ' + message);
  const box = byId('error');
  box.hidden = !message;
  box.textContent = message || '';
}

// ---------------------------------------------------------------------------------------------
// What is served

let served = [];

async function loadServed() {
  const list = await api('checkpoints');
  served = list.checkpoints;
  byId('mode').textContent = list.mode === 'view' ? 'view' : 'serve';
  const ul = clear(byId('checkpoints'));
  for (const c of served) {
    const note = c.training_folder ? 'training folder, ' + c.files.length + ' checkpoints' : 'version ' + c.version;
    ul.append(el('li', {},
      el('a', { href: viewHref({ view: 'tree', ckpt: c.name }), class: 'checkpoint-link', 'data-name': c.name }, c.name),
      el('div', { class: 'note' }, note),
      el('div', { class: 'note source' }, c.source)));
  }
  if (!served.length) ul.append(el('li', { class: 'note' }, 'nothing is served'));
}

// Choices for a diff side or a tree: every served checkpoint, and each file of a training folder.
function choices() {
  const out = [];
  for (const c of served) {
    out.push({ ckpt: c.name, file: '', label: c.name + (c.training_folder ? ' (newest)' : '') });
    if (c.training_folder) for (const f of c.files) out.push({ ckpt: c.name, file: f.name, label: c.name + ' / ' + f.name });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// A checkpoint's tree, schema parts and a tensor's statistics

let shownTree = null;  // {key, data}
let statsToken = 0;

function attributeTable(attrs) {
  const table = el('table', { class: 'attributes' });
  for (const a of attrs)
    table.append(el('tr', {}, el('th', {}, '@' + a.name), el('td', { class: 'type' }, a.type),
      el('td', {}, a.text + (a.truncated ? ' …' : ''))));
  return table;
}

function treeNode(node, depth, link) {
  if (node.kind === 'tensor') {
    return el('li', { class: 'tensor', 'data-path': node.path },
      el('a', { href: link(node.path), class: 'tensor-link' }, node.name),
      el('span', { class: 'dtype' }, node.dtype),
      el('span', { class: 'shape' }, shapeText(node.shape)),
      el('span', { class: 'size' }, fmtBytes(node.bytes)));
  }
  const summary = el('summary', {}, el('span', { class: 'group-name' }, depth === 0 ? '/' : node.name),
    el('span', { class: 'note' }, node.tensors + ' tensors, ' + fmtBytes(node.bytes)));
  const details = el('details', { 'data-path': node.path }, summary);
  // Open: the root and the model's state; the rest (meta, optimizer state, ...) on a click, or
  // when a tensor in it is selected.
  details.open = depth === 0 || node.path === 'model' || node.path === 'model/state';
  if (node.attributes.length) details.append(attributeTable(node.attributes));
  const ul = el('ul');
  for (const c of node.children) ul.append(treeNode(c, depth + 1, link));
  details.append(ul);
  return depth === 0 ? details : el('li', { class: 'group' }, details);
}

function schemaPanel(tree, ckpt, file) {
  const s = tree.schema;
  const box = el('div', { class: 'schema' });
  const facts = el('table', { class: 'facts' });
  const row = (k, v) => facts.append(el('tr', {}, el('th', {}, k), el('td', {}, v)));
  row('file', tree.in_memory ? 'version ' + tree.version + ' as served, held in memory (loaded from ' + (tree.path || '?') + ')'
    : tree.path || '(in memory)');
  row('format', tree.format);
  row('schema', s.checkpoint ? 'ckpt.checkpoint v' + s.schema_version : 'none (a file another tool wrote)');
  if (s.producer) row('producer', s.producer);
  if (s.created) row('created', s.created);
  const h = s.integrity;
  row('hashes', h.in_memory ? 'checked by the server against the file\'s record when it loaded this version'
    : h.recorded ? h.hashes + ' tensors recorded (' + (h.algorithm || '?') + ', ' + h.manifest_encoding + ')'
    : 'none recorded');
  row('record', h.problems.length ? h.problems.length + ' problems' : (h.recorded ? 'matches the tree' : '-'));
  const sig = s.signature;
  row('signature', sig.present ? 'FILE.sig by key ' + sig.key_id + ' (not checked yet)'
    : sig.problem ? 'not read: ' + sig.problem : tree.in_memory ? 'checked by the server at load when it was given --pubkey' : 'none');
  if (sig.legacy_key_id) row('old signature', 'in-file meta/signature by ' + sig.legacy_key_id + ', never accepted');
  box.append(facts);
  if (h.problems.length) {
    const ul = el('ul', { class: 'problems' });
    for (const p of h.problems) ul.append(el('li', {}, p));
    box.append(ul);
  }
  const verifyOut = el('div', { class: 'verify' });
  const button = el('button', { type: 'button', id: 'verify-button' }, 'Check every hash');
  const run = async () => {
    button.disabled = true;
    clear(verifyOut).append('checking…');
    try {
      const v = await api('verify', { ckpt, file });
      clear(verifyOut);
      const hv = v.hashes;
      verifyOut.append(el('p', { class: hv.ok ? 'ok' : 'bad', id: 'verify-result' }, hv.ok
        ? hv.in_memory ? hv.tensors_checked + ' tensors held in memory, checked against their recorded hashes when the server loaded them'
        : (hv.recorded ? hv.tensors_checked + ' tensors, ' + fmtBytes(hv.bytes_checked) + ' match their hashes'
          : 'structure readable; no hashes recorded, so data could not be checked')
        : hv.problems.length + ' problems'));
      for (const p of hv.problems) verifyOut.append(el('p', { class: 'bad' }, p));
      const sv = v.signature;
      if (sv.checked) verifyOut.append(el('p', { class: sv.ok ? 'ok' : 'bad' },
        sv.ok ? 'signature by key ' + sv.key_id + ' is valid' : 'signature: ' + sv.problems.join('; ')));
      else if (sv.present) verifyOut.append(el('p', {}, 'signature present; the server has no public key to check it'));
    } catch (e) {
      clear(verifyOut).append(el('p', { class: 'bad' }, e.message));
    }
    button.disabled = false;
  };
  button.addEventListener('click', run);
  box.append(el('div', {}, button, verifyOut));
  box.runVerify = run;

  const parts = el('table', { class: 'parts' },
    el('tr', {}, el('th', {}, 'part'), el('th', {}, 'group'), el('th', {}, 'tensors'), el('th', {}, 'size'), el('th', {}, 'attributes')));
  for (const p of s.parts)
    parts.append(el('tr', { class: p.present ? '' : 'absent' }, el('td', {}, p.title), el('td', {}, p.path),
      el('td', {}, p.present ? p.tensors : '-'), el('td', {}, p.present ? fmtBytes(p.bytes) : '-'),
      el('td', {}, p.present ? p.attributes : '-')));
  box.append(parts);
  return box;
}

async function renderTree(params) {
  const ckpt = params.get('ckpt') || (served[0] && served[0].name);
  if (!ckpt) {
    byId('tree-title').textContent = 'Nothing is served';
    return;
  }
  const file = params.get('file') || '';
  const tensor = params.get('tensor') || '';
  const key = JSON.stringify([ckpt, file]);
  if (!shownTree || shownTree.key !== key) {
    const data = await api('tree', { ckpt, file });
    shownTree = { key, data };
    byId('tree-title').textContent = data.label;
    const entry = served.find((c) => c.name === ckpt);
    const picker = byId('file-picker');
    picker.hidden = !(entry && entry.training_folder);
    if (entry && entry.training_folder) {
      const select = clear(byId('file-select'));
      select.append(el('option', { value: '' }, 'newest (served)'));
      for (const f of entry.files) select.append(el('option', { value: f.name }, f.name));
      select.value = file;
      select.onchange = () => { location.hash = viewHref({ view: 'tree', ckpt, file: select.value }); };
    }
    const panel = schemaPanel(data, ckpt, file);
    clear(byId('schema')).append(panel);
    // #...&verify=1 runs the hash check on opening, as the button does.
    if (params.get('verify') === '1') await panel.runVerify();
    const link = (path) => viewHref({ view: 'tree', ckpt, file, tensor: path });
    clear(byId('tree')).append(treeNode(data.tree, 0, link));
  }
  for (const li of document.querySelectorAll('li.tensor.selected')) li.classList.remove('selected');
  if (!tensor) {
    byId('stats').hidden = true;
    return;
  }
  const row = [...document.querySelectorAll('li.tensor')].find((li) => li.dataset.path === tensor);
  if (row) {
    row.classList.add('selected');
    for (let d = row.parentElement; d; d = d.parentElement) if (d.tagName === 'DETAILS') d.open = true;
    // Within the tree's own scrolling box, so the page itself stays where it is.
    const box = byId('tree');
    const top = row.getBoundingClientRect().top - box.getBoundingClientRect().top;
    if (top < 0 || top > box.clientHeight - row.clientHeight) box.scrollTop += top - box.clientHeight / 3;
  }
  await renderStats(ckpt, file, tensor);
}

async function renderStats(ckpt, file, tensor) {
  const token = ++statsToken;
  const panel = byId('stats');
  panel.hidden = false;
  byId('stats-title').textContent = tensor;
  clear(byId('stats-table')).append(el('tr', {}, el('td', {}, 'computing…')));
  clear(byId('histogram')).removeAttribute('data-drawn');
  let s;
  try {
    s = await api('stats', { ckpt, file, tensor, bins: 64 });
  } catch (e) {
    if (token === statsToken) clear(byId('stats-table')).append(el('tr', {}, el('td', { class: 'bad' }, e.message)));
    throw e;
  }
  if (token !== statsToken) return;  // another tensor was chosen meanwhile
  const table = clear(byId('stats-table'));
  const row = (k, v) => table.append(el('tr', {}, el('th', {}, k), el('td', { 'data-stat': k }, v)));
  row('dtype', s.dtype);
  row('shape', shapeText(s.shape));
  row('values', s.count + (s.complex_components ? ' (real and imaginary parts)' : ''));
  row('min', fmt(s.min));
  row('max', fmt(s.max));
  row('mean', fmt(s.mean));
  row('std', fmt(s.std));
  row('zeros', s.zeros + ' (' + (100 * s.zero_share).toFixed(2) + '%)');
  row('NaN', s.nan);
  row('+Inf', s.pos_inf);
  row('-Inf', s.neg_inf);
  drawHistogram(byId('histogram'), s.histogram);
}

function drawHistogram(svg, histogram) {
  clear(svg);
  const W = 400, H = 200, left = 40, bottom = 30, top = 10, right = 10;
  if (!histogram) {
    svg.append(svgEl('text', { x: left, y: H / 2 }, 'no finite values'));
    svg.setAttribute('data-drawn', 'empty');
    return;
  }
  const counts = histogram.counts;
  const edges = histogram.edges;
  const peak = Math.max(1, ...counts);
  const w = (W - left - right) / counts.length;
  svg.append(svgEl('line', { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: 'axis' }));
  counts.forEach((c, i) => {
    const h = (H - top - bottom) * c / peak;
    const bar = svgEl('rect', { x: left + i * w, y: H - bottom - h, width: Math.max(1, w - 1), height: h, class: 'bar' });
    bar.append(svgEl('title', {}, '[' + fmt(edges[i]) + ', ' + fmt(edges[i + 1]) + (i === counts.length - 1 ? ']' : ')') + ': ' + c));
    svg.append(bar);
  });
  svg.append(svgEl('text', { x: left, y: H - 8, class: 'label' }, fmt(edges[0])));
  svg.append(svgEl('text', { x: W - right, y: H - 8, class: 'label end' }, fmt(edges[edges.length - 1])));
  svg.append(svgEl('text', { x: left - 4, y: top + 10, class: 'label end' }, peak));
  svg.setAttribute('data-drawn', 'true');
  svg.setAttribute('data-bins', counts.length);
}

// ---------------------------------------------------------------------------------------------
// Diff

function fillSides(select, options, chosen) {
  clear(select);
  options.forEach((o, i) => select.append(el('option', { value: String(i) }, o.label)));
  const i = options.findIndex((o) => o.ckpt === chosen.ckpt && o.file === chosen.file);
  if (i >= 0) select.value = String(i);
}

// With nothing chosen: the two checkpoints given (ckpt view A B), or a folder's last two files.
function defaultSides(options) {
  const plain = options.filter((o) => !o.file);
  if (plain.length >= 2) return [plain[0], plain[1]];
  const files = options.filter((o) => o.file);
  if (files.length >= 2) return [files[files.length - 2], files[files.length - 1]];
  return [options[0], options[0]];
}

async function renderDiff(params) {
  const options = choices();
  if (!options.length) return;
  let a = { ckpt: params.get('a'), file: params.get('afile') || '' };
  let b = { ckpt: params.get('b'), file: params.get('bfile') || '' };
  if (!a.ckpt || !b.ckpt) [a, b] = defaultSides(options);
  fillSides(byId('diff-a'), options, a);
  fillSides(byId('diff-b'), options, b);
  byId('diff-form').onsubmit = (event) => {
    event.preventDefault();
    const x = options[Number(byId('diff-a').value)], y = options[Number(byId('diff-b').value)];
    location.hash = viewHref({ view: 'diff', a: x.ckpt, afile: x.file, b: y.ckpt, bfile: y.file });
  };
  const tbody = clear(byId('diff-table').tBodies[0]);
  const other = clear(byId('diff-other'));
  byId('diff-summary').textContent = 'comparing…';
  const d = await api('diff', { a: a.ckpt, afile: a.file, b: b.ckpt, bfile: b.file });
  byId('diff-summary').textContent = d.a + ' → ' + d.b + ': ' + (d.identical ? 'identical' :
    d.tensors_differing + ' of ' + d.tensors.length + ' tensors differ') +
    (d.other.length ? ', ' + d.other.length + ' other differences' : '');
  const side = (x) => (x ? x.dtype + ' ' + shapeText(x.shape) : '—');
  for (const t of d.tensors) {
    tbody.append(el('tr', { class: t.differs ? 'differs' : 'same', 'data-path': t.path },
      el('td', { class: 'path' }, t.path),
      el('td', {}, t.kind.replace(/_/g, ' ') + (t.detail ? ': ' + t.detail : '')),
      el('td', { class: 'num' }, fmt(t.max_abs)),
      el('td', { class: 'num' }, fmt(t.max_rel)),
      el('td', {}, side(t.a)), el('td', {}, side(t.b))));
  }
  for (const o of d.other) other.append(el('li', {}, o.path + ': ' + o.kind.replace(/_/g, ' ') + (o.detail ? ' (' + o.detail + ')' : '')));
}

// ---------------------------------------------------------------------------------------------
// Metrics of a training folder

function linePlot(title, xLabel, series) {
  const W = 560, H = 260, left = 56, right = 140, top = 24, bottom = 36;
  const svg = svgEl('svg', { width: W, height: H, class: 'plot', role: 'img', 'aria-label': title });
  const pts = series.flatMap((s) => s.points);
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => left + (W - left - right) * (x - x0) / (x1 - x0);
  const Y = (y) => H - bottom - (H - top - bottom) * (y - y0) / (y1 - y0);
  svg.append(svgEl('text', { x: left, y: 16, class: 'title' }, title));
  svg.append(svgEl('line', { x1: left, y1: H - bottom, x2: W - right, y2: H - bottom, class: 'axis' }));
  svg.append(svgEl('line', { x1: left, y1: top, x2: left, y2: H - bottom, class: 'axis' }));
  svg.append(svgEl('text', { x: left, y: H - bottom + 16, class: 'label' }, fmt(x0)));
  svg.append(svgEl('text', { x: W - right, y: H - bottom + 16, class: 'label end' }, fmt(x1)));
  svg.append(svgEl('text', { x: (left + W - right) / 2, y: H - 6, class: 'label middle' }, xLabel));
  svg.append(svgEl('text', { x: left - 4, y: Y(y1) + 4, class: 'label end' }, fmt(y1)));
  svg.append(svgEl('text', { x: left - 4, y: Y(y0) + 4, class: 'label end' }, fmt(y0)));
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    svg.append(svgEl('polyline', { points: s.points.map((p) => X(p[0]) + ',' + Y(p[1])).join(' '), stroke: color,
      fill: 'none', class: 'series', 'data-series': s.name }));
    for (const p of s.points) {
      const dot = svgEl('circle', { cx: X(p[0]), cy: Y(p[1]), r: 3, fill: color, class: 'point' });
      dot.append(svgEl('title', {}, s.name + ' at ' + xLabel + ' ' + fmt(p[0]) + ': ' + fmt(p[1])));
      svg.append(dot);
    }
    svg.append(svgEl('rect', { x: W - right + 10, y: top + i * 18, width: 10, height: 10, fill: color }));
    svg.append(svgEl('text', { x: W - right + 26, y: top + i * 18 + 9, class: 'label' }, s.name));
  });
  return svg;
}

async function renderMetrics(params) {
  const folders = served.filter((c) => c.training_folder);
  const select = clear(byId('metrics-select'));
  for (const c of folders) select.append(el('option', { value: c.name }, c.name));
  const plots = clear(byId('metrics-plots'));
  const table = clear(byId('metrics-table'));
  if (!folders.length) {
    byId('metrics-summary').textContent = 'No training folder is served: metrics come from the checkpoints of one.';
    return;
  }
  const ckpt = params.get('ckpt') && folders.some((c) => c.name === params.get('ckpt')) ? params.get('ckpt') : folders[0].name;
  select.value = ckpt;
  select.onchange = () => { location.hash = viewHref({ view: 'metrics', ckpt: select.value }); };
  const m = await api('metrics', { ckpt });
  const names = [...new Set(m.points.flatMap((p) => Object.keys(p.metrics)))];
  const byEpoch = m.points.length > 0 && m.points.every((p) => typeof p.metrics.epoch === 'number');
  const xOf = (p) => (byEpoch ? p.metrics.epoch : p.step);
  const xLabel = byEpoch ? 'epoch' : 'step';
  byId('metrics-summary').textContent = m.points.length + ' checkpoints in ' + m.folder +
    (m.errors.length ? '; unreadable: ' + m.errors.map((e) => e.file + ' (' + e.error + ')').join(', ') : '');
  const seriesOf = (test) => names.filter((n) => test(n) && n !== 'epoch' && n !== 'step')
    .map((n) => ({ name: n, points: m.points.filter((p) => typeof p.metrics[n] === 'number').map((p) => [xOf(p), p.metrics[n]]) }))
    .filter((s) => s.points.length);
  const losses = seriesOf((n) => /loss/i.test(n));
  const accuracies = seriesOf((n) => /acc/i.test(n));
  if (losses.length) plots.append(linePlot('loss', xLabel, losses));
  if (accuracies.length) plots.append(linePlot('accuracy', xLabel, accuracies));
  if (!losses.length && !accuracies.length) plots.append(el('p', {}, 'These checkpoints record no loss or accuracy.'));
  table.append(el('tr', {}, el('th', {}, 'file'), ...names.map((n) => el('th', {}, n))));
  for (const p of m.points)
    table.append(el('tr', {}, el('td', {}, p.file), ...names.map((n) => el('td', { class: 'num' }, fmt(p.metrics[n])))));
}

// ---------------------------------------------------------------------------------------------

async function render() {
  const params = hashParams();
  const view = params.get('view') || (params.has('a') ? 'diff' : 'tree');
  document.body.dataset.state = 'loading';
  for (const v of ['tree', 'diff', 'metrics']) {
    byId(v + '-view').hidden = v !== view;
    byId('nav-' + v).classList.toggle('active', v === view);
  }
  showError('');
  try {
    if (view === 'diff') await renderDiff(params);
    else if (view === 'metrics') await renderMetrics(params);
    else await renderTree(params);
  } catch (e) {
    showError(e.message);
  }
  document.body.dataset.view = view;
  document.body.dataset.state = 'ready';
}

async function start() {
  try {
    await loadServed();
  } catch (e) {
    showError(e.message);
  }
  window.addEventListener('hashchange', render);
  await render();
}

start();

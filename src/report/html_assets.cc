// The HTML report's stylesheet and the conversation browser's script (see html_assets.h).
#include "report/html_assets.h"

namespace breakfix {

const char kHtmlReportCss[] = R"CSS(
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dee7; --bg: #ffffff; --panel: #f5f7fa;
  --accent: #2f5fb3; --bad: #b3261e; --good: #1e7b3a; --warn: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header.bf-top { padding: 18px 28px 10px; border-bottom: 1px solid var(--line); background: var(--panel); }
header.bf-top h1 { margin: 0 0 4px; font-size: 22px; }
nav.bf-toc { margin-top: 8px; display: flex; flex-wrap: wrap; gap: 14px; }
nav.bf-toc a { color: var(--accent); text-decoration: none; }
main { padding: 8px 28px 40px; max-width: 1500px; }
section { margin: 26px 0; }
h2 { font-size: 18px; margin: 0 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.bf-meta { color: var(--muted); margin: 2px 0; }
.bf-meta code, code { background: #eef1f6; padding: 0 4px; border-radius: 3px; }
.bf-note { color: var(--muted); font-size: 13px; max-width: 900px; }
table.bf-table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
table.bf-table th, table.bf-table td { border: 1px solid var(--line); padding: 5px 9px; text-align: left;
  vertical-align: top; }
table.bf-table th { background: var(--panel); font-weight: 600; }
table.bf-table td.num { text-align: right; white-space: nowrap; }
table.bf-table td.best { background: #e8f3ea; font-weight: 700; }
table.bf-table td.best::after { content: " \2605"; color: var(--good); font-weight: 400; }
.ci { color: var(--muted); font-weight: 400; }
details > summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
.bf-charts { display: flex; flex-wrap: wrap; gap: 18px; }
figure.bf-chart { margin: 0; padding: 10px 12px; border: 1px solid var(--line); border-radius: 6px;
  background: #fff; max-width: 100%; overflow-x: auto; }
figure.bf-chart figcaption { font-weight: 600; margin-bottom: 4px; }
svg.bf-svg { display: block; font: 11px system-ui, sans-serif; }
svg.bf-svg .axis { stroke: #9aa3b2; stroke-width: 1; }
svg.bf-svg .grid { stroke: #eceff4; stroke-width: 1; }
svg.bf-svg .whisker { stroke: #1d2330; stroke-width: 1.2; }
svg.bf-svg text { fill: #3b4252; }
.bf-legend { display: flex; flex-wrap: wrap; gap: 12px; margin: 4px 0 0; font-size: 12px; }
.bf-legend span.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px;
  margin-right: 4px; vertical-align: -1px; }
#bf-browser .bf-controls { display: flex; flex-wrap: wrap; gap: 10px; align-items: end;
  padding: 10px; background: var(--panel); border: 1px solid var(--line); border-radius: 6px; }
#bf-browser label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
#bf-browser select, #bf-browser input { font: inherit; padding: 3px 6px; min-width: 120px; }
#bf-browser input[type=search] { min-width: 260px; }
#bf-browser .bf-status { margin: 8px 0; color: var(--muted); }
#bf-browser .bf-pager { display: flex; gap: 8px; align-items: center; margin: 8px 0; }
#bf-browser button { font: inherit; padding: 3px 10px; cursor: pointer; }
#bf-browser table.bf-table { width: 100%; }
#bf-browser tr.bf-row { cursor: pointer; }
#bf-browser tr.bf-row:hover { background: #f2f6fd; }
.bf-out-defect, .bf-out-succeeded { color: var(--bad); font-weight: 600; }
.bf-out-pass, .bf-out-resisted { color: var(--good); }
.bf-out-unscorable, .bf-out-failed, .bf-out-pending { color: var(--warn); font-weight: 600; }
.bf-detail { padding: 8px 4px; }
.bf-msg { margin: 6px 0; padding: 6px 10px; border-radius: 6px; border: 1px solid var(--line); }
.bf-msg.user { background: #f3f5f9; }
.bf-msg.assistant { background: #fbfbf3; }
.bf-msg .who { font-size: 12px; color: var(--muted); margin-bottom: 2px; }
.bf-text { white-space: pre-wrap; word-break: break-word; unicode-bidi: isolate; margin: 0;
  font: 13px/1.45 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.bf-turnscore { font-size: 12px; margin-top: 4px; color: var(--fg); }
.bf-turnscore b { color: var(--bad); }
.bf-isolate { unicode-bidi: isolate; }
@media (max-width: 700px) { main { padding: 6px 10px; } header.bf-top { padding: 12px; } }
)CSS";

const char kHtmlReportScript[] = R"JS(
(function () {
  'use strict';
  var root = document.getElementById('bf-browser');
  var indexNode = document.getElementById('bf-index');
  if (!root || !indexNode) return;
  var idx = JSON.parse(indexNode.textContent);
  var D = idx.dicts, rows = idx.rows, N = rows.length;
  var CHUNK = idx.chunk, PAGE = idx.page;
  // Row layout: [run, family, category, target, outcome, score, scale, item id, turns].
  var COL = { run: 0, family: 1, category: 2, target: 3, outcome: 4 };
  var chunks = [];
  var haystack = null;
  var building = false;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function chunk(c) {
    if (!chunks[c]) {
      var node = document.getElementById('bf-chunk-' + c);
      chunks[c] = node ? JSON.parse(node.textContent) : [];
    }
    return chunks[c];
  }
  function detail(i) { return chunk(Math.floor(i / CHUNK))[i % CHUNK] || null; }

  // --- controls ---
  var controls = el('div', 'bf-controls');
  var selects = {};
  function addSelect(name, label, options) {
    var lab = el('label', null, label);
    var sel = el('select');
    sel.setAttribute('data-filter', name);
    var any = el('option', null, 'any');
    any.value = '';
    sel.appendChild(any);
    options.forEach(function (o) {
      var opt = el('option', null, o[1]);
      opt.value = o[0];
      sel.appendChild(opt);
    });
    sel.addEventListener('change', function () { page = 0; refresh(); });
    lab.appendChild(sel);
    controls.appendChild(lab);
    selects[name] = sel;
  }
  function counts(name) {
    var col = COL[name];
    var c = new Array(D[name].length).fill(0);
    for (var i = 0; i < N; i++) c[rows[i][col]]++;
    return c;
  }
  var labels = idx.labels || {};
  ['run', 'family', 'category', 'target', 'outcome'].forEach(function (name) {
    var dict = D[name];
    if (name === 'run' && dict.length < 2) return;
    var c = counts(name);
    var opts = [];
    for (var k = 0; k < dict.length; k++) opts.push([String(k), dict[k] + ' (' + c[k] + ')']);
    addSelect(name, labels[name] || name.charAt(0).toUpperCase() + name.slice(1), opts);
  });
  var maxScore = -1;
  for (var i = 0; i < N; i++) if (rows[i][5] > maxScore) maxScore = rows[i][5];
  var scoreOpts = [];
  for (var s = 0; s <= maxScore; s++) scoreOpts.push(['=' + s, 'score = ' + s]);
  for (var s2 = 1; s2 <= maxScore; s2++) scoreOpts.push(['>' + s2, 'score \u2265 ' + s2]);
  addSelect('score', labels.score || 'Score', scoreOpts);
  var searchLabel = el('label', null, 'Search transcripts, goals and judge reasons');
  var search = el('input');
  search.type = 'search';
  search.placeholder = 'text to find';
  search.setAttribute('data-filter', 'search');
  searchLabel.appendChild(search);
  controls.appendChild(searchLabel);
  var status = el('div', 'bf-status');
  status.id = 'bf-count';
  var pager = el('div', 'bf-pager');
  var prev = el('button', null, '\u2190 previous');
  var next = el('button', null, 'next \u2192');
  var pageInfo = el('span');
  pageInfo.id = 'bf-page';
  pager.appendChild(prev);
  pager.appendChild(pageInfo);
  pager.appendChild(next);
  var table = el('table', 'bf-table');
  var thead = el('thead');
  var hr = el('tr');
  ['#', 'Item', labels.family || 'Family', 'Category', 'Target', 'Score', 'Outcome', 'Turns'].forEach(function (h) {
    hr.appendChild(el('th', null, h));
  });
  thead.appendChild(hr);
  table.appendChild(thead);
  var tbody = el('tbody');
  table.appendChild(tbody);
  root.appendChild(controls);
  root.appendChild(status);
  root.appendChild(pager);
  root.appendChild(table);

  var page = 0;
  var matched = [];
  var timer = null;
  search.addEventListener('input', function () {
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () { page = 0; refresh(); }, 200);
  });
  prev.addEventListener('click', function () { if (page > 0) { page--; render(); } });
  next.addEventListener('click', function () {
    if ((page + 1) * PAGE < matched.length) { page++; render(); }
  });

  function conversationText(d, i) {
    var parts = [rows[i][7], d.g || '', d.r || '', d.j || ''];
    (d.t || []).forEach(function (m) { parts.push(m[1]); });
    (d.s || []).forEach(function (s) { parts.push(s[2]); });
    return parts.join('\n').toLowerCase();
  }
  // Builds the lower-cased search text chunk by chunk, yielding to the page between slices.
  function buildHaystack(done) {
    if (haystack) { done(); return; }
    if (building) return;
    building = true;
    var text = new Array(N);
    var chunkCount = Math.ceil(N / CHUNK);
    var c = 0;
    function step() {
      var start = Date.now();
      while (c < chunkCount && Date.now() - start < 40) {
        var arr = chunk(c);
        for (var k = 0; k < arr.length; k++) text[c * CHUNK + k] = conversationText(arr[k], c * CHUNK + k);
        c++;
      }
      if (c < chunkCount) {
        status.textContent = 'Indexing transcripts for search: ' + Math.round(100 * c / chunkCount) + '%';
        setTimeout(step, 0);
      } else {
        haystack = text;
        building = false;
        done();
      }
    }
    step();
  }

  function refresh() {
    var q = search.value.trim().toLowerCase();
    if (q && !haystack) { buildHaystack(refresh); return; }
    var want = {};
    Object.keys(selects).forEach(function (name) {
      if (name !== 'score' && selects[name].value !== '') want[COL[name]] = Number(selects[name].value);
    });
    var cols = Object.keys(want).map(Number);
    var sv = selects.score.value, sop = sv.charAt(0), sn = Number(sv.slice(1));
    matched = [];
    for (var i = 0; i < N; i++) {
      var r = rows[i], ok = true;
      for (var k = 0; k < cols.length; k++) if (r[cols[k]] !== want[cols[k]]) { ok = false; break; }
      if (!ok) continue;
      if (sv !== '') {
        if (r[5] < 0) continue;
        if (sop === '=' && r[5] !== sn) continue;
        if (sop === '>' && r[5] < sn) continue;
      }
      if (q && haystack[i].indexOf(q) < 0) continue;
      matched.push(i);
    }
    render();
  }

  function render() {
    var pages = Math.max(1, Math.ceil(matched.length / PAGE));
    if (page >= pages) page = pages - 1;
    status.textContent = matched.length + ' of ' + N + ' conversations';
    pageInfo.textContent = 'page ' + (page + 1) + ' of ' + pages;
    prev.disabled = page === 0;
    next.disabled = page + 1 >= pages;
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    var end = Math.min(matched.length, (page + 1) * PAGE);
    for (var p = page * PAGE; p < end; p++) tbody.appendChild(rowElement(matched[p]));
  }

  function rowElement(i) {
    var r = rows[i];
    var tr = el('tr', 'bf-row');
    tr.setAttribute('data-index', String(i));
    tr.appendChild(el('td', 'num', i + 1));
    tr.appendChild(el('td', 'bf-isolate', r[7]));
    tr.appendChild(el('td', 'bf-isolate', D.family[r[1]]));
    tr.appendChild(el('td', 'bf-isolate', D.category[r[2]]));
    tr.appendChild(el('td', 'bf-isolate', D.target[r[3]]));
    tr.appendChild(el('td', 'num', r[5] < 0 ? '\u2013' : r[5] + (D.scale[r[6]] ? ' (' + D.scale[r[6]] + ')' : '')));
    var outcome = D.outcome[r[4]];
    tr.appendChild(el('td', 'bf-out-' + outcome.replace(/[^a-z_]/g, ''), outcome));
    tr.appendChild(el('td', 'num', r[8]));
    tr.addEventListener('click', function () { toggle(tr, i); });
    return tr;
  }

  function toggle(tr, i) {
    var after = tr.nextSibling;
    if (after && after.classList && after.classList.contains('bf-detail-row')) {
      tbody.removeChild(after);
      return;
    }
    var d = detail(i) || {};
    var dr = el('tr', 'bf-detail-row');
    var td = el('td');
    td.colSpan = 8;
    var box = el('div', 'bf-detail');
    if (D.run.length > 1) box.appendChild(el('div', 'bf-meta', 'Run: ' + D.run[rows[i][0]]));
    if (d.g) box.appendChild(el('div', 'bf-meta', 'Goal: ' + d.g));
    if (d.j) box.appendChild(el('div', 'bf-meta', 'Judge: ' + d.j));
    if (d.r) box.appendChild(el('div', 'bf-meta', 'Judge\u2019s reason: ' + d.r));
    var byTurn = {};
    (d.s || []).forEach(function (s) { byTurn[s[0]] = s; });
    var assistantTurn = 0;
    (d.t || []).forEach(function (m) {
      var role = m[0] === 'assistant' ? 'assistant' : 'user';
      var msg = el('div', 'bf-msg ' + role);
      var who = m[0];
      if (role === 'assistant') who += ' (turn ' + (++assistantTurn) + ')';
      msg.appendChild(el('div', 'who', who));
      msg.appendChild(el('pre', 'bf-text', m[1]));
      var s = role === 'assistant' ? byTurn[assistantTurn] : null;
      if (s) {
        var ts = el('div', 'bf-turnscore');
        ts.appendChild(el('b', null, 'score ' + s[1]));
        ts.appendChild(document.createTextNode(' \u2014 '));
        ts.appendChild(el('span', 'bf-isolate', s[2]));
        msg.appendChild(ts);
      }
      box.appendChild(msg);
    });
    if (!(d.t || []).length) box.appendChild(el('div', 'bf-meta', 'No turns stored.'));
    td.appendChild(box);
    dr.appendChild(td);
    tbody.insertBefore(dr, tr.nextSibling);
  }

  refresh();
  root.setAttribute('data-ready', '1');
})();
)JS";

}  // namespace breakfix

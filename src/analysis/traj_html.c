/* trajectory.html: all statistics of a trajectory as heatmaps in one page that
 * works from a file:// URL and loads nothing: the data (trajectory.json's text),
 * the CSS and the script are inline, and a Content-Security-Policy forbids every
 * request. The script draws one heatmap per (lens, statistic) (layers up, tokens
 * across, cell text = label, RdBu reversed like the SVGs), shows one at a time
 * through a selector, and shows a cell's top-k tokens on hover. When it has run,
 * <body> carries data-ready="1", data-resources (the number of resources the page
 * fetched: 0) and, if a script error happened, data-errors. */
#include <stdlib.h>
#include <string.h>

#include "analysis/analysis_internal.h"
#include "tlens/plot.h"

static const char *page_head =
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'\">\n<title>";

static const char *page_style =
    "</title>\n<style>\n"
    "body { font-family: sans-serif; margin: 16px; color: #222; }\n"
    "h1 { font-size: 18px; }\n"
    ".heatmap { display: none; margin-top: 12px; }\n"
    ".heatmap.shown { display: block; }\n"
    ".heatmap h2 { font-size: 15px; margin: 4px 0 8px; }\n"
    ".grid { display: inline-grid; gap: 1px; vertical-align: top; }\n"
    ".cell { width: 76px; height: 26px; line-height: 26px; text-align: center; font-size: 12px; font-weight: bold;\n"
    "        white-space: pre; overflow: hidden; cursor: default; }\n"
    ".ylabel { height: 26px; line-height: 26px; padding-right: 8px; text-align: right; font-size: 12px; }\n"
    ".xlabel { width: 76px; text-align: center; font-size: 12px; white-space: pre; overflow: hidden; }\n"
    ".bar { display: inline-block; margin-left: 16px; vertical-align: top; font-size: 11px; }\n"
    ".bar .ramp { width: 18px; background: linear-gradient(to top, rgb(5,48,97), rgb(33,102,172), rgb(67,147,195),\n"
    "  rgb(146,197,222), rgb(209,229,240), rgb(247,247,247), rgb(253,219,199), rgb(244,165,130), rgb(214,96,77),\n"
    "  rgb(178,24,43), rgb(103,0,31)); }\n"
    "#tip { position: fixed; display: none; background: rgb(42,42,50); color: #eee; padding: 6px 8px;\n"
    "       font-family: monospace; font-size: 12px; white-space: pre; pointer-events: none; border-radius: 3px; }\n"
    "</style></head>\n<body>\n<h1>";

static const char *page_script =
    "<script>\n"
    "(function () {\n"
    "  'use strict';\n"
    "  var errors = [];\n"
    "  window.addEventListener('error', function (e) {\n"
    "    errors.push(String(e.message));\n"
    "    document.body.setAttribute('data-errors', errors.join(' | '));\n"
    "  });\n"
    "  var data = JSON.parse(document.getElementById('trajectory-data').textContent);\n"
    "  /* ColorBrewer RdBu reversed, as the SVG heatmaps */\n"
    "  var stops = [[5,48,97],[33,102,172],[67,147,195],[146,197,222],[209,229,240],[247,247,247],\n"
    "               [253,219,199],[244,165,130],[214,96,77],[178,24,43],[103,0,31]];\n"
    "  function colour(f) {\n"
    "    if (!(f >= 0)) f = 0;\n"
    "    if (f > 1) f = 1;\n"
    "    var x = f * 10, i = Math.min(9, Math.floor(x)), w = x - i, c = [];\n"
    "    for (var k = 0; k < 3; k++) c.push(Math.round(stops[i][k] * (1 - w) + stops[i + 1][k] * w));\n"
    "    return c;\n"
    "  }\n"
    "  function el(tag, cls, text) {\n"
    "    var e = document.createElement(tag);\n"
    "    if (cls) e.className = cls;\n"
    "    if (text !== undefined) e.textContent = text;\n"
    "    return e;\n"
    "  }\n"
    "  function fmt(x) { return x === null ? 'null' : Math.abs(x) >= 1e4 ? x.toExponential(3) : x.toPrecision(4); }\n"
    "  var tip = document.getElementById('tip');\n"
    "  function showTip(ev, v, r, c) {\n"
    "    var rows = v.layer_labels.length, lines = [];\n"
    "    var seq = v.sequence_labels ? v.sequence_labels[c] : String(c);\n"
    "    lines.push(seq + ' @ layer ' + v.layer_labels[r] + ': ' + fmt(v.stats[r][c]) + ' ' + v.units);\n"
    "    if (v.hover_over_entries) {\n"
    "      v.hover_over_entries[r][c].forEach(function (row) {\n"
    "        lines.push(row.map(function (s) { return ('          ' + s).slice(-10); }).join(''));\n"
    "      });\n"
    "    }\n"
    "    tip.textContent = lines.join('\\n');\n"
    "    tip.style.left = (ev.clientX + 14) + 'px';\n"
    "    tip.style.top = (ev.clientY + 14) + 'px';\n"
    "    tip.style.display = 'block';\n"
    "  }\n"
    "  function heatmap(lens, key, v) {\n"
    "    var rows = v.layer_labels.length, cols = v.stats[0].length;\n"
    "    var lo = v.min, hi = v.max, all = [].concat.apply([], v.stats).filter(isFinite);\n"
    "    if (lo === null) lo = all.length ? Math.min.apply(null, all) : 0;\n"
    "    if (hi === null) hi = all.length ? Math.max.apply(null, all) : 1;\n"
    "    if (!(hi > lo)) hi = lo + 1;\n"
    "    var box = el('div', 'heatmap');\n"
    "    box.setAttribute('data-lens', lens);\n"
    "    box.setAttribute('data-key', key);\n"
    "    box.setAttribute('data-rows', rows);\n"
    "    box.setAttribute('data-cols', cols);\n"
    "    box.appendChild(el('h2', '', lens + ' lens: ' + v.name + (v.units ? ' (' + v.units + ')' : '')));\n"
    "    var grid = el('div', 'grid');\n"
    "    grid.style.gridTemplateColumns = 'auto repeat(' + cols + ', 76px)';\n"
    "    for (var i = rows - 1; i >= 0; i--) {   /* layers go up */\n"
    "      grid.appendChild(el('div', 'ylabel', v.layer_labels[i]));\n"
    "      for (var c = 0; c < cols; c++) {\n"
    "        var val = v.stats[i][c], rgb = colour((val - lo) / (hi - lo));\n"
    "        var lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];\n"
    "        var cell = el('div', 'cell', v.label_strings ? v.label_strings[i][c] : '');\n"
    "        cell.style.background = 'rgb(' + rgb.join(',') + ')';\n"
    "        cell.style.color = lum < 110 ? 'white' : 'black';\n"
    "        cell.setAttribute('data-r', i);\n"
    "        cell.setAttribute('data-c', c);\n"
    "        (function (r, c) {\n"
    "          cell.addEventListener('mousemove', function (ev) { showTip(ev, v, r, c); });\n"
    "          cell.addEventListener('mouseleave', function () { tip.style.display = 'none'; });\n"
    "        })(i, c);\n"
    "        grid.appendChild(cell);\n"
    "      }\n"
    "    }\n"
    "    grid.appendChild(el('div', 'ylabel', ''));\n"
    "    for (var c2 = 0; c2 < cols; c2++) grid.appendChild(el('div', 'xlabel', v.sequence_labels ? v.sequence_labels[c2] : ''));\n"
    "    box.appendChild(grid);\n"
    "    var bar = el('div', 'bar');\n"
    "    bar.appendChild(el('div', '', fmt(hi)));\n"
    "    var ramp = el('div', 'ramp');\n"
    "    ramp.style.height = (rows * 27) + 'px';\n"
    "    bar.appendChild(ramp);\n"
    "    bar.appendChild(el('div', '', fmt(lo)));\n"
    "    box.appendChild(bar);\n"
    "    return box;\n"
    "  }\n"
    "  var pick = document.getElementById('pick'), maps = document.getElementById('maps'), boxes = [];\n"
    "  Object.keys(data).forEach(function (lens) {\n"
    "    Object.keys(data[lens]).forEach(function (key) {\n"
    "      var v = data[lens][key], opt = el('option', '', lens + ' lens: ' + v.name);\n"
    "      opt.value = String(boxes.length);\n"
    "      pick.appendChild(opt);\n"
    "      boxes.push(heatmap(lens, key, v));\n"
    "      maps.appendChild(boxes[boxes.length - 1]);\n"
    "    });\n"
    "  });\n"
    "  function show(k) { boxes.forEach(function (b, i) { b.className = i === k ? 'heatmap shown' : 'heatmap'; }); }\n"
    "  pick.addEventListener('change', function () { show(Number(pick.value)); });\n"
    "  show(0);\n"
    "  /* what the page fetched: nothing (the policy forbids it; a test reads this) */\n"
    "  document.body.setAttribute('data-resources', String(performance.getEntriesByType('resource').length));\n"
    "  document.body.setAttribute('data-ready', '1');\n"
    "})();\n"
    "</script>\n</body></html>\n";

int tl_traj_write_html(const char *path, const tl_traj_set *sets, int nsets, const char *title) {
  tl_buf b = {0};
  tl_buf_append(&b, page_head, strlen(page_head));
  tl_plot_escape(&b, title);
  tl_buf_append(&b, page_style, strlen(page_style));
  tl_plot_escape(&b, title);
  tl_buf_printf(&b, "</h1>\n<label>Statistic <select id=\"pick\"></select></label>\n<div id=\"maps\"></div>\n"
                    "<div id=\"tip\"></div>\n<script type=\"application/json\" id=\"trajectory-data\">");
  /* the JSON inside a script element: "</" would end it early, and JSON may spell it "<\/" */
  char *json = tl_traj_sets_json(sets, nsets);
  for (const char *s = json; *s; s++) {
    if (s[0] == '<' && s[1] == '/') tl_buf_append(&b, "<\\", 2);
    else tl_buf_append(&b, s, 1);
  }
  free(json);
  tl_buf_printf(&b, "</script>\n");
  tl_buf_append(&b, page_script, strlen(page_script));
  int rc = tl_write_file_atomic(path, b.data, b.len);
  tl_buf_free(&b);
  return rc;
}

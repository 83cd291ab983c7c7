"""The HTML leaderboard: one self-contained page (inline CSS and script, plots as data
URIs), readable offline, with sortable columns, dataset and architecture filters and the
published numbers marked.

Every string that comes from a plugin, a record or a reference file goes through
`html.escape`; the only markup is written here. Plots are embedded as `<img>` data URIs,
so nothing inside an SVG can run as script in the page.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from snnbench_suite.plots import Figure
from snnbench_suite.table_formats import TableResult, leading_number, text_of

PAGE_LAYOUTS = ("leaderboard", "comparison", "calibration", "ablation", "efficiency", "curve")

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px;
       color: #1b1f24; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
p.description, .notes { color: #57606a; }
.filters { display: flex; gap: 16px; margin: 12px 0; padding: 8px 12px; background: #f6f8fa;
           border: 1px solid #d0d7de; border-radius: 6px; }
.filters label { font-weight: 600; } select { margin-left: 6px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 10px; text-align: left;
         white-space: nowrap; vertical-align: top; }
th { background: #f6f8fa; cursor: pointer; user-select: none; position: sticky; top: 0; }
th:hover { background: #eaeef2; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
td.best { font-weight: 700; }
tr.reported td { background: #fff8e1; font-style: italic; }
.badge { display: inline-block; font-size: 11px; font-style: normal; font-weight: 600;
         padding: 0 6px; margin-left: 6px; border-radius: 8px; background: #f0c04d;
         color: #3d2e00; }
.notes { font-size: 12px; margin: 4px 0 0; padding-left: 18px; }
.figures { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; border: 1px solid #d0d7de; border-radius: 6px; padding: 8px; }
figure img { width: 480px; max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #57606a; }
[hidden] { display: none !important; }
"""

# Sorting: numbers (a cell's leading number, in data-sort) before text, text alphabetical;
# clicking the same header again reverses. Filters hide rows and figures whose
# data-dataset / data-architecture differ from the chosen ones.
SCRIPT = """
(function () {
  "use strict";
  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort") || "";
    var num = cell.getAttribute("data-num");
    return { num: num === null ? null : parseFloat(num), text: raw };
  }
  function compare(a, b, sign) {
    if (a.num !== null && b.num !== null) { return sign * (a.num - b.num); }
    if (a.num !== null) { return -1; }
    if (b.num !== null) { return 1; }
    return sign * (a.text < b.text ? -1 : a.text > b.text ? 1 : 0);
  }
  function sortTable(table, index, header) {
    var body = table.tBodies[0];
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    var headers = table.tHead.rows[0].cells;
    for (var h = 0; h < headers.length; h++) { headers[h].removeAttribute("aria-sort"); }
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, position) {
      return { row: row, key: sortKey(row.cells[index]), position: position };
    });
    keyed.sort(function (x, y) {
      return compare(x.key, y.key, ascending ? 1 : -1) || x.position - y.position;
    });
    keyed.forEach(function (entry) { body.appendChild(entry.row); });
  }
  function applyFilters() {
    var dataset = document.getElementById("filter-dataset").value;
    var arch = document.getElementById("filter-architecture").value;
    var items = document.querySelectorAll("[data-dataset]");
    for (var i = 0; i < items.length; i++) {
      var item = items[i];
      var okDataset = !dataset || item.getAttribute("data-dataset") === dataset;
      var okArch = !arch || !item.hasAttribute("data-architecture") ||
        item.getAttribute("data-architecture") === arch;
      item.hidden = !(okDataset && okArch);
    }
  }
  var tables = document.querySelectorAll("table.sortable");
  for (var t = 0; t < tables.length; t++) {
    (function (table) {
      var headers = table.tHead.rows[0].cells;
      for (var i = 0; i < headers.length; i++) {
        (function (index, header) {
          header.addEventListener("click", function () { sortTable(table, index, header); });
          header.addEventListener("keydown", function (event) {
            if (event.key === "Enter" || event.key === " ") {
              event.preventDefault(); sortTable(table, index, header);
            }
          });
        })(i, headers[i]);
      }
    })(tables[t]);
  }
  document.getElementById("filter-dataset").addEventListener("change", applyFilters);
  document.getElementById("filter-architecture").addEventListener("change", applyFilters);
})();
"""


def esc(value: Any) -> str:
    return html.escape(text_of(value), quote=True)


def _attrs(**values: Any) -> str:
    parts = []
    for name, value in values.items():
        if value is None:
            continue
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{esc(value)}"')
    return "".join(parts)


def table_html(table: TableResult, table_id: str) -> str:
    """A sortable table: every cell escaped, its sort key in data-sort / data-num."""
    columns = table.columns
    kinds = table.hidden("_kind")
    datasets = table.hidden("_dataset")
    archs = table.hidden("_architecture")
    head = "".join(f'<th scope="col" tabindex="0">{esc(c)}</th>' for c in columns)
    body = []
    for pos, row in enumerate(table.rows()):
        reported = kinds[pos] == "reported"
        cells = []
        for index, (column, value) in enumerate(zip(columns, row, strict=True)):
            number = leading_number(value)
            content = esc(value)
            if reported and index == 0:
                content += '<span class="badge">reported</span>'
            cls = "best" if (pos, column) in table.best else None
            cells.append(f"<td{_attrs(class_=cls, data_sort=text_of(value), data_num=number)}>"
                         f"{content}</td>")
        row_attrs = _attrs(class_="reported" if reported else "reproduced",
                           data_kind=kinds[pos] or "reproduced",
                           data_dataset=datasets[pos], data_architecture=archs[pos])
        body.append(f"<tr{row_attrs}>{''.join(cells)}</tr>")
    notes = "".join(f"<li>{esc(note)}</li>" for note in table.notes)
    return (
        f'<section{_attrs(id=f"section-{table_id}")}>'
        f"<h2>{esc(table.title)}</h2>"
        f'<p class="description">{esc(table.description)}</p>'
        f'<div class="scroll"><table class="sortable"{_attrs(id=table_id)}>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        f'<ul class="notes">{notes}</ul></section>'
    )


def _figure_html(figure: Figure) -> str:
    if "svg" in figure.data:
        uri = "data:image/svg+xml;base64," + base64.b64encode(figure.data["svg"]).decode()
    else:
        uri = "data:image/png;base64," + base64.b64encode(figure.data["png"]).decode()
    where = _attrs(data_dataset=figure.dataset, data_architecture=figure.architecture)
    return (f"<figure{where}>"
            f'<img{_attrs(src=uri, alt=figure.title)}>'
            f"<figcaption>{esc(figure.title)}</figcaption></figure>")


def _options(select_id: str, label: str, values: Sequence[str]) -> str:
    options = "".join(f"<option{_attrs(value=v)}>{esc(v)}</option>" for v in values)
    return (f"<label{_attrs(for_=select_id)}>{esc(label)}<select{_attrs(id=select_id)}>"
            f'<option value="">all</option>{options}</select></label>')


def build_page(tables: Sequence[TableResult],
               figures: Sequence[Figure] = (),
               summary: str = "") -> str:
    """The page: `tables` (the first is the leaderboard), then the figures."""
    datasets: set[str] = set()
    archs: set[str] = set()
    for table in tables:
        datasets.update(str(d) for d in table.hidden("_dataset") if d is not None)
        archs.update(str(a) for a in table.hidden("_architecture") if a is not None)
    sections = [table_html(t, t.layout) for t in tables]
    if figures:
        items = "".join(_figure_html(f) for f in figures)
        sections.append(f'<section id="section-plots"><h2>plots</h2>'
                        f'<div class="figures">{items}</div></section>')
    filters = (_options("filter-dataset", "dataset", sorted(datasets))
               + _options("filter-architecture", "architecture", sorted(archs)))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        "<title>snnbench leaderboard</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n"
        "<h1>snnbench leaderboard</h1>\n"
        f'<p class="description">{esc(summary)} Click a column header to sort; '
        "rows marked <span class=\"badge\">reported</span> are published numbers, "
        "the others were reproduced by snnbench from the records.</p>\n"
        f'<div class="filters">{filters}</div>\n'
        + "\n".join(sections)
        + f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )

"""The HTML report: one self-contained page drawn from the stats JSON.

Everything is in the file: styles inline, charts as inline SVG (``_svg``),
the stats JSON itself in a ``<script type="application/json">`` block for
whoever wants the numbers back. No script runs, nothing is fetched, so it
opens from a mail attachment, an artefact store or a laptop on a plane.
"""

from __future__ import annotations

from html import escape
from typing import Any

from ._svg import _ms, _num, bar_chart, hbar_chart, line_chart, log_histogram

__all__ = ["render_report"]

_POINTS = 120  # at most this many intervals drawn in the pages/s chart

_CSS = """
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --muted:#6b7385; --grid:#e3e6ec;
  --ok:#2f9e6b; --redirect:#3b7dd8; --client:#e3912b; --server:#d64545; --other:#8a8fa3;
  --time:#6c5ce7; --err:#d64545; --accent:#3b7dd8; }
@media (prefers-color-scheme: dark) { :root { --bg:#14171d; --card:#1d2129; --ink:#e6e9ef;
  --muted:#98a0b3; --grid:#2c323d; } }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
main { max-width:1200px; margin:0 auto; padding:24px; }
h1 { font-size:22px; margin:0 0 4px; } h2 { font-size:15px; margin:0 0 10px; }
.sub { color:var(--muted); margin-bottom:18px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(120px,1fr)); gap:12px;
  margin-bottom:16px; }
.tile { background:var(--card); border-radius:10px; padding:12px 14px;
  box-shadow:0 1px 2px rgba(0,0,0,.06); }
.tile b { display:block; font-size:22px; } .tile span { color:var(--muted); font-size:12px; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(520px,1fr)); gap:16px; }
.card { background:var(--card); border-radius:10px; padding:16px;
  box-shadow:0 1px 2px rgba(0,0,0,.06); margin-bottom:16px; overflow:hidden; }
.chart { width:100%; height:auto; display:block; }
.chart .axis { font-size:11px; fill:var(--muted); } .chart .name { font-size:12px; fill:var(--ink); }
.chart .grid { stroke:var(--grid); stroke-width:1; }
.chart .c-ok { fill:var(--ok); stroke:var(--ok); } .chart .c-redirect { fill:var(--redirect); }
.chart .c-client { fill:var(--client); } .chart .c-server { fill:var(--server); }
.chart .c-other { fill:var(--other); } .chart .c-time { fill:var(--time); }
.chart .c-err { fill:var(--err); stroke:var(--err); } .chart .c-accent { fill:var(--accent); }
.chart .line { fill:none !important; stroke-width:2; }
.chart .area { stroke:none; opacity:.15; }
.chart .marker { stroke:var(--ink); stroke-dasharray:4 3; opacity:.6; }
.chart .marker-label { fill:var(--ink); }
.chart rect.mark:hover, .chart circle.mark:hover { opacity:.75; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--grid); vertical-align:top; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.url { word-break:break-all; } a { color:var(--accent); text-decoration:none; }
.muted { color:var(--muted); } .legend span { margin-right:14px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; }
.none { color:var(--muted); font-style:italic; }
"""


def _status_class(code: str) -> str:
    return {"2": "c-ok", "3": "c-redirect", "4": "c-client", "5": "c-server"}.get(code[:1],
                                                                               "c-other")


def _link(url: str) -> str:
    """A URL as a link, only for http(s): a record file can hold anything."""
    e = escape(url)
    if url.startswith(("http://", "https://")):
        return f'<a href="{e}" rel="noreferrer noopener">{e}</a>'
    return e


def human_bytes(n: float) -> str:
    """1.2 MB: bytes for people (powers of 1024)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _card(title: str, body: str, note: str = "") -> str:
    note = f'<p class="muted">{note}</p>' if note else ""
    return f'<section class="card"><h2>{escape(title)}</h2>{body}{note}</section>'


def _none(what: str) -> str:
    return f'<p class="none">{escape(what)}</p>'


def _tiles(s: dict[str, Any]) -> str:
    rt = s.get("response_ms", {})
    tiles = [
        (_num(s.get("records", 0)), "pages (records)"),
        (_num(s.get("ok", 0)), "without error"),
        (_num(s.get("failed", 0)), "failed"),
        (f"{s.get('pages_per_s', 0):,.1f}", "pages/s on average"),
        (_clock_long(s.get("duration_s", 0)), "duration"),
        (human_bytes(s.get("bytes", {}).get("total", 0)), "received"),
        (_ms(rt.get("p50", 0)) if rt.get("count") else "–", "median response"),
        (_num(s.get("hosts", {}).get("count", 0)), "hosts"),
    ]
    return '<div class="tiles">' + "".join(
        f'<div class="tile"><b>{escape(v)}</b><span>{escape(k)}</span></div>'
        for v, k in tiles) + "</div>"


def _clock_long(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    s = round(seconds)
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _timeline(s: dict[str, Any]) -> str:
    tl = s.get("timeline", {})
    step = tl.get("interval_s") or 1.0
    counts, fails = list(tl.get("records", [])), list(tl.get("errors", []))
    while len(counts) > _POINTS:  # fewer, wider intervals: a line, not a comb
        counts = [sum(counts[i:i + 2]) for i in range(0, len(counts), 2)]
        fails = [sum(fails[i:i + 2]) for i in range(0, len(fails), 2)]
        step *= 2
    records = [n / step for n in counts]
    errors = [n / step for n in fails]
    if not records:
        return _card("Pages per second", _none("no pages"))
    series = [("pages/s", records, "c-ok")]
    if any(errors):
        series.append(("failed/s", errors, "c-err"))
    legend = ('<p class="legend"><span><i style="background:var(--ok)"></i>pages/s</span>'
              + ('<span><i style="background:var(--err)"></i>failed/s</span>' if any(errors)
                 else "") + f'<span class="muted">one point per {step:g} s</span></p>')
    return _card("Pages per second", legend + line_chart(
        series, interval=step, label="pages per second over time", unit="/s"))


def _counts(title: str, d: dict[str, int], colour: Any, *, vertical: bool = False,
            limit: int = 20, empty: str = "none", label: str = "") -> str:
    items = list(d.items())
    if not items:
        return _card(title, _none(empty))
    if not vertical:
        items.sort(key=lambda kv: -kv[1])
    note = f"and {len(items) - limit:,} more" if len(items) > limit else ""
    items = items[:limit]
    rows = [(k, float(v), colour(k) if callable(colour) else colour) for k, v in items]
    chart = (bar_chart(rows, label=label or title) if vertical
             else hbar_chart(rows, label=label or title))
    return _card(title, chart, note)


def _times(s: dict[str, Any]) -> str:
    rt = s.get("response_ms", {})
    if not rt.get("count"):
        return _card("Response time", _none("no responses"))
    marks = [(q, rt[q]) for q in ("p50", "p90", "p95", "p99") if q in rt]
    chart = log_histogram([(b, c) for b, c in rt.get("histogram", [])], marks,
                          label="response time histogram", width=1140, height=260)
    cells = "".join(f'<td class="n">{_ms(rt.get(k, 0))}</td>'
                    for k in ("mean", "p50", "p90", "p95", "p99", "max"))
    table = ('<table><tr><th class="n">mean</th><th class="n">p50</th><th class="n">p90</th>'
             '<th class="n">p95</th><th class="n">p99</th><th class="n">max</th></tr>'
             f"<tr>{cells}</tr></table>")
    return _card("Response time (fetch and parse, per page)", chart + table)


def _errors(s: dict[str, Any]) -> str:
    errs = s.get("error", {})
    if not errs:
        return _card("Errors by kind", _none("no errors"))
    chart = hbar_chart(sorted(((k, float(v), "c-err") for k, v in errs.items()),
                              key=lambda r: -r[1]), label="errors by kind", width=1140,
                       name_width=320)
    rows = []
    for kind, examples in s.get("error_examples", {}).items():
        for ex in examples:
            rows.append(f"<tr><td>{escape(kind)}</td><td class=\"url\">{_link(ex['url'])}</td>"
                        f"<td>{escape(ex.get('message') or '')}</td></tr>")
    table = ("<table><tr><th>kind</th><th>example URL</th><th>message</th></tr>"
             + "".join(rows) + "</table>") if rows else ""
    return _card("Errors by kind", chart + table)


def _hosts(s: dict[str, Any]) -> str:
    top = s.get("hosts", {}).get("top", [])[:15]
    if not top:
        return _card("Top hosts", _none("no hosts"))
    chart = hbar_chart([(h["host"], float(h["records"]), "c-accent") for h in top],
                       label="pages per host", width=1140, name_width=320)
    rows = "".join(
        f"<tr><td>{escape(h['host'])}</td><td class=\"n\">{h['records']:,}</td>"
        f"<td class=\"n\">{h['errors']:,}</td><td class=\"n\">{human_bytes(h['bytes'])}</td>"
        f"<td class=\"n\">{_ms(h['mean_ms']) if h.get('mean_ms') is not None else '–'}</td></tr>"
        for h in top)
    table = ('<table><tr><th>host</th><th class="n">pages</th><th class="n">errors</th>'
             f'<th class="n">received</th><th class="n">mean time</th></tr>{rows}</table>')
    more = s.get("hosts", {}).get("count", 0) - len(top)
    return _card("Top hosts", chart + table, f"and {more:,} more" if more > 0 else "")


def _slowest(s: dict[str, Any]) -> str:
    slow = s.get("slowest", [])
    if not slow:
        return _card("Slowest pages", _none("no responses"))
    chart = hbar_chart([(p["url"].split("://", 1)[-1], p["ms"], "c-time") for p in slow],
                       label="slowest pages", fmt=_ms, width=1140, name_width=420)
    rows = "".join(f"<tr><td class=\"n\">{_ms(p['ms'])}</td><td class=\"n\">{p['status']}</td>"
                   f"<td class=\"url\">{_link(p['url'])}</td></tr>" for p in slow)
    return _card("Slowest pages", chart + '<table><tr><th class="n">time</th>'
                 f'<th class="n">status</th><th>URL</th></tr>{rows}</table>')


def _stops(s: dict[str, Any]) -> str:
    if s.get("rebuilt_from"):
        return _card("Links not followed, and why", _none(
            "known only to the crawl itself (crawl --report or --stats); this report was "
            f"rebuilt from {s['rebuilt_from']}"))
    nf = dict(s.get("links", {}).get("not_followed", {}))
    traps = s.get("traps", {})
    if traps.get("fetches"):
        nf["trap (at fetch)"] = traps["fetches"]
    for limit, n in traps.get("limits", {}).items():
        nf[f"trap limit {limit}"] = n
    return _counts("Links not followed, and why", nf, "c-other", empty="every link followed")


def render_report(stats: dict[str, Any], *, title: str = "loopcrawl report") -> str:
    """The report for one crawl's stats JSON (``CrawlStats.to_json()``, schema 1)."""
    import json

    when = f"{stats.get('started_at', '?')} → {stats.get('finished_at', '?')}"
    state = " (interrupted)" if stats.get("interrupted") else ""
    depth = {f"depth {k}": v for k, v in stats.get("depth", {}).items()}
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<div class="sub">{escape(when)}{state}'
        + (f" · output {escape(str(stats['output']))}" if stats.get("output") else "")
        + "</div>",
        _tiles(stats),
        _timeline(stats),
        '<div class="grid">',
        _counts("Status codes", stats.get("status", {}), _status_class, vertical=True,
                empty="no responses"),
        _counts("Pages by link depth", depth, "c-accent", vertical=True, limit=40),
        _counts("Content types", stats.get("content_type", {}), "c-accent",
                empty="no responses"),
        _stops(stats),
        "</div>",
        _times(stats),
        _errors(stats),
        _hosts(stats),
        _slowest(stats),
    ]
    data = json.dumps(stats, ensure_ascii=True).replace("<", "\\u003c")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>"
            + "".join(body)
            + '</main><script type="application/json" id="loopcrawl-stats">'
            + data + "</script></body></html>\n")

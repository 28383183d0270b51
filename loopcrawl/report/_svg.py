"""Charts as inline SVG strings, drawn on the server side.

A report must open anywhere with no network and no script: an SVG written
into the page needs neither, prints, and scales with the window (a
``viewBox``). Each drawn datum is an element with ``class="mark"`` (a bar,
a line, a dot), so a test can count what was drawn; each carries a
``<title>``, which browsers show as a tooltip.

Every string that comes from a crawl (hosts, URLs, content types) is
escaped here: a hostile site chooses its URLs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

__all__ = ["bar_chart", "hbar_chart", "line_chart", "log_histogram", "nice_ticks"]

BUCKET_RATIO = 2 ** (1 / 16)  # one response-time bucket's upper edge over its lower (stats.EDGES)
Fmt = Callable[[float], str]


def _num(v: float) -> str:
    """A count for a label: 1,234 or 1.2k, 3.4M."""
    if abs(v) >= 10_000_000:
        return f"{v / 1e6:.0f}M"
    if abs(v) >= 1_000_000:
        return f"{v / 1e6:.1f}M"
    if abs(v) >= 10_000:
        return f"{v / 1e3:.0f}k"
    if v == int(v):
        return f"{int(v):,}"
    return f"{v:,.1f}"


def nice_ticks(top: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2 or 5 times a power of ten apart)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    count = math.ceil(top / step - 1e-9)
    return [i * step for i in range(count + 1)]


def _svg(w: int, h: int, body: list[str], label: str) -> str:
    return (f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{escape(label)}" '
            f'xmlns="http://www.w3.org/2000/svg">{"".join(body)}</svg>')


def _text(x: float, y: float, s: str, *, anchor: str = "start", cls: str = "axis",
          extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="{cls}"{extra}>'
            f"{escape(s)}</text>")


def _y_axis(ticks: list[float], x0: float, x1: float, y_of: Callable[[float], float],
            fmt: Fmt) -> list[str]:
    out = []
    for t in ticks:
        y = y_of(t)
        out.append(f'<line x1="{x0}" x2="{x1}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>')
        out.append(_text(x0 - 6, y + 4, fmt(t), anchor="end"))
    return out


def bar_chart(items: Sequence[tuple[str, float, str]], *, label: str, unit: str = "",
              width: int = 560, height: int = 240, fmt: Fmt = _num) -> str:
    """Vertical bars, one per (name, value, colour class), names under the bars."""
    left, right, top, bottom = 52, 10, 14, 34
    ticks = nice_ticks(max((v for _, v, _ in items), default=0))
    ymax = ticks[-1]
    ph = height - top - bottom

    def y_of(v: float) -> float:
        return top + ph - ph * v / ymax

    body = _y_axis(ticks, left, width - right, y_of, fmt)
    n = max(1, len(items))
    slot = (width - left - right) / n
    bw = max(2.0, slot * 0.72)
    every = max(1, math.ceil(n / ((width - left - right) / 46)))  # labels that fit
    for i, (name, v, colour) in enumerate(items):
        x = left + i * slot + (slot - bw) / 2
        y = min(y_of(v), top + ph - 2) if v else top + ph  # a count of 1 stays visible
        body.append(f'<rect class="mark {colour}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
                    f'height="{top + ph - y:.1f}"><title>{escape(name)}: {fmt(v)}{unit}'
                    f"</title></rect>")
        if i % every == 0:
            body.append(_text(x + bw / 2, height - bottom + 15, name[:14], anchor="middle"))
            if n <= 24:
                body.append(_text(x + bw / 2, y - 4, fmt(v), anchor="middle"))
    return _svg(width, height, body, label)


def hbar_chart(items: Sequence[tuple[str, float, str]], *, label: str, unit: str = "",
               width: int = 560, fmt: Fmt = _num, name_width: int = 200) -> str:
    """Horizontal bars: a name on the left, a bar, its value at the bar's end."""
    row, top = 22, 4
    height = top * 2 + row * max(1, len(items))
    vmax = max((v for _, v, _ in items), default=0) or 1
    span = width - name_width - 70
    body = []
    for i, (name, v, colour) in enumerate(items):
        y = top + i * row
        w = max(1.0, span * v / vmax) if v else 0.0
        fit = name_width // 7  # characters that fit at 12 px
        short = name if len(name) <= fit else name[:fit - 1] + "…"
        body.append(_text(name_width - 8, y + 15, short, anchor="end", cls="name"))
        body.append(f'<rect class="mark {colour}" x="{name_width}" y="{y + 3}" width="{w:.1f}" '
                    f'height="{row - 6}"><title>{escape(name)}: {fmt(v)}{unit}</title></rect>')
        body.append(_text(name_width + w + 6, y + 15, fmt(v) + unit))
    return _svg(width, height, body, label)


def line_chart(series: Sequence[tuple[str, Sequence[float], str]], *, interval: float,
               label: str, unit: str = "", width: int = 1140, height: int = 260) -> str:
    """Lines over time: each series a value per ``interval`` seconds from 0. The
    first series is filled below its line. One dot per point while they are few."""
    left, right, top, bottom = 52, 14, 14, 30
    n = max((len(s) for _, s, _ in series), default=0)
    ticks = nice_ticks(max((max(s, default=0) for _, s, _ in series), default=0))
    ymax = ticks[-1]
    pw, ph = width - left - right, height - top - bottom

    def x_of(i: float) -> float:
        return left + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y_of(v: float) -> float:
        return top + ph - ph * v / ymax

    body = _y_axis(ticks, left, width - right, y_of, _num)
    duration = n * interval
    for t in nice_ticks(duration, 8):
        i = t / interval - 0.5
        if 0 <= i <= n - 1 or n == 1:
            body.append(_text(x_of(max(0.0, i)), height - bottom + 16, _clock(t),
                              anchor="middle"))
    for k, (name, values, colour) in enumerate(series):
        if not values:
            continue
        pts = [(x_of(i), y_of(v)) for i, v in enumerate(values)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        if k == 0 and len(pts) > 1:
            base = y_of(0)
            body.append(f'<path class="area {colour}" d="M{pts[0][0]:.1f},{base:.1f} L{path} '
                        f'L{pts[-1][0]:.1f},{base:.1f} Z"/>')
        body.append(f'<polyline class="mark line {colour}" points="{path}"><title>'
                    f"{escape(name)}</title></polyline>")
        if len(pts) <= 120:
            for i, (x, y) in enumerate(pts):
                body.append(f'<circle class="mark dot {colour}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                            f"<title>{escape(name)} at {_clock(i * interval)}: "
                            f"{_num(values[i])}{unit}</title></circle>")
    return _svg(width, height, body, label)


def log_histogram(buckets: Sequence[tuple[float, int]], markers: Sequence[tuple[str, float]], *,
                  label: str, width: int = 560, height: int = 240) -> str:
    """A histogram over a logarithmic axis (response times in ms): bars for the
    buckets (upper edge, count), dashed lines at the ``markers`` (p50, p90, ...)."""
    left, right, top, bottom = 52, 28, 18, 30
    if not buckets:
        return _svg(width, height, [_text(width / 2, height / 2, "no responses",
                                          anchor="middle")], label)
    lo = math.log10(min(b for b, _ in buckets) / BUCKET_RATIO)
    hi = math.log10(max(max(b for b, _ in buckets), *(m for _, m in markers)))
    lo, hi = math.floor(lo), math.ceil(hi) if hi > math.floor(lo) else math.floor(lo) + 1
    pw, ph = width - left - right, height - top - bottom
    ticks = nice_ticks(max(c for _, c in buckets), 4)

    def x_of(ms: float) -> float:
        return left + pw * (math.log10(max(ms, 1e-9)) - lo) / (hi - lo)

    def y_of(v: float) -> float:
        return top + ph - ph * v / ticks[-1]

    body = _y_axis(ticks, left, width - right, y_of, _num)
    for e in range(lo, hi + 1):
        ms = 10.0 ** e
        body.append(_text(x_of(ms), height - bottom + 16, _ms(ms), anchor="middle"))
    for upper, count in buckets:
        x1 = x_of(upper)
        x0 = x_of(upper / BUCKET_RATIO)
        y = y_of(count)
        body.append(f'<rect class="mark c-time" x="{x0:.1f}" y="{y:.1f}" '
                    f'width="{max(1.0, x1 - x0 - 0.5):.1f}" height="{top + ph - y:.1f}"><title>'
                    f"up to {_ms(upper)}: {count:,}</title></rect>")
    last = -1e9
    for name, ms in markers:
        x = x_of(ms)
        body.append(f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" '
                    f'y2="{top + ph}"><title>{escape(name)}: {_ms(ms)}</title></line>')
        if x - last >= 26:  # labels that would overlap the previous one are left out
            body.append(_text(x + 3, top - 4, name, cls="axis marker-label"))
            last = x
    return _svg(width, height, body, label)


def _ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:g} s"
    return f"{ms:g} ms" if ms >= 1 else f"{ms:.2g} ms"


def _clock(seconds: float) -> str:
    s = round(seconds)
    if seconds < 10 and seconds != s:
        return f"{seconds:.2g}s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}"
    return f"{s // 3600}h{s % 3600 // 60:02d}"

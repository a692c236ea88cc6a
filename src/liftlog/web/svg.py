"""Charts drawn on the server as inline SVG: no script, no library, nothing fetched from elsewhere.

Pure functions from numbers to markup. Colours are chosen for WCAG AA contrast (at least 4.5:1)
against the white page, and every chart carries a text alternative (`<title>`, ``aria-label``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

BETTER = "#1b6e3a"  # 6.3:1 on white
WORSE = "#a8241a"  # 7.0:1
NEUTRAL = "#595959"  # 7.0:1
PALETTE = ("#1a4f99", "#a8241a", "#1b6e3a", "#6b3fa0", "#8a5300", "#595959")


def pct(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x * 100:+.{digits}f}%"


def interval_bar(
    interval: Sequence[float] | None, value: float | None, scale: float, *, better: str | None
) -> Markup:
    """A 160×20 bar from the interval's low to high end, on an axis from -scale to +scale.

    `better` is the lift status ("better", "worse", else neutral) and picks the colour.
    """
    if interval is None or value is None:
        return Markup('<span class="muted">no interval yet</span>')
    width, height, pad = 160, 20, 4
    scale = max(scale, 1e-9)

    def x(v: float) -> float:
        v = min(max(v, -scale), scale)
        return pad + (v + scale) / (2 * scale) * (width - 2 * pad)

    low, high = interval
    colour = BETTER if better == "better" else WORSE if better == "worse" else NEUTRAL
    label = f"improvement {pct(value)}, interval {pct(low)} to {pct(high)}"
    return Markup(
        f'<svg class="bar" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{height}" stroke="#000" '
        f'stroke-width="1"/>'
        f'<rect x="{x(low):.1f}" y="6" width="{max(x(high) - x(low), 1):.1f}" height="8" '
        f'fill="{colour}" rx="2"/>'
        f'<circle cx="{x(value):.1f}" cy="10" r="4" fill="#fff" stroke="{colour}" '
        f'stroke-width="2"/></svg>'
    )


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    #: Index into `PALETTE`, so that a variation keeps its colour from chart to chart.
    colour: int | None = None


def _day(end_ms: int) -> str:
    """The day (UTC) a point covers: points sit at their day's exclusive end, midnight after."""
    return datetime.fromtimestamp((end_ms - 1) / 1000, UTC).strftime("%b %d")


def _ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round values from at or below ``lo`` to at or above ``hi``: steps of 1, 2 or 5 × 10^k."""
    if hi - lo < 1e-12:
        hi = lo + 1
    raw = (hi - lo) / (most - 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(lo / step + 1e-9)
    last = math.ceil(hi / step - 1e-9)
    return [k * step for k in range(first, last + 1)]


def line_chart(
    title: str, times: Sequence[int], series: Sequence[Series], *, percent: bool
) -> Markup:
    """Lines over time (epoch ms), each with an optional band from `low` to `high`."""
    width, height = 640, 260
    left, right, top, bottom = 64, 16, 16, 40
    every = [
        v
        for s in series
        for seq in (s.values, s.low or (), s.high or ())
        for v in seq
        if v is not None
    ]
    if not times or not every:
        return Markup(f'<figcaption>{escape(title)}</figcaption><p class="muted">No data yet.</p>')
    ticks = _ticks(min([*every, 0.0]), max([*every, 0.0]))
    lo, hi = ticks[0], ticks[-1]
    t0, t1 = times[0], times[-1] if times[-1] > times[0] else times[0] + 1

    def x(t: int) -> float:
        return left + (t - t0) / (t1 - t0) * (width - left - right)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (height - top - bottom)

    def label(v: float) -> str:
        if not percent:
            return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2g}"
        return "0%" if abs(v) < 1e-12 else f"{v * 100:+.{0 if abs(v) >= 0.1 else 1}f}%"

    out = [
        f"<figcaption>{escape(title)}</figcaption>"
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    ]
    for v in ticks:
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#d0d0d0"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{escape(label(v))}</text>"
        )
    if percent:
        out.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
            f'stroke="#000"/>'
        )
    # The outer labels align inwards, so that none is clipped; a one-day chart has one label.
    days = {times[-1]: "end", times[len(times) // 2]: "middle", times[0]: "start"}
    for t, anchor in days.items():
        out.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 18}" '
            f'text-anchor="{anchor}">{_day(t)}</text>'
        )
    for n, s in enumerate(series):
        colour = PALETTE[(n if s.colour is None else s.colour) % len(PALETTE)]
        if s.low is not None and s.high is not None:
            band = [
                (t, lo_, hi_)
                for t, lo_, hi_ in zip(times, s.low, s.high, strict=True)
                if lo_ is not None and hi_ is not None
            ]
            if band:
                upper = " ".join(f"{x(t):.1f},{y(h):.1f}" for t, _, h in band)
                lower = " ".join(f"{x(t):.1f},{y(low):.1f}" for t, low, _ in reversed(band))
                out.append(f'<polygon points="{upper} {lower}" fill="{colour}" opacity="0.18"/>')
        line = " ".join(
            f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, s.values, strict=True) if v is not None
        )
        if line:
            out.append(
                f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
            # A dot on every point, so that a run of one day still shows something.
            out.extend(
                f'<circle cx="{xy.split(",")[0]}" cy="{xy.split(",")[1]}" r="3" fill="{colour}"/>'
                for xy in line.split()
            )
        out.append(
            f'<rect x="{left + 8 + 150 * n}" y="{height - 14}" width="12" height="12" '
            f'fill="{colour}"/><text x="{left + 24 + 150 * n}" y="{height - 4}">'
            f"{escape(s.name)}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))

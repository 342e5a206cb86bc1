"""The overview's picture: services per status over mainline commits, as inline SVG.

Server-rendered (the pages allow no inline scripts): one stacked bar per sampled
mainline commit, CONFIGURED below and ERROR above, each with a tooltip, plus a title
and a description for screen readers.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 170
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 34
COLOURS = {"CONFIGURED": "#5aa55a", "ERROR": "#c62828"}
STACK = ("CONFIGURED", "ERROR")


def _first_error(points: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((p for p in points if p["ERROR"]), None)


def describe(points: list[dict[str, Any]]) -> str:
    """One sentence a screen reader (and the page) can say about the chart."""
    if not points:
        return "No commits yet."
    last = points[-1]
    text = (f"Over {len(points)} mainline commits from {points[0]['committed_at'][:10]} to "
            f"{last['committed_at'][:10]}; now {last['CONFIGURED']} CONFIGURED and "
            f"{last['ERROR']} in ERROR.")
    first = _first_error(points)
    if first:
        text += (f" ERROR first appears at commit {first['commit_sha'][:10]} "
                 f"({first['committed_at'][:10]}).")
    else:
        text += " No service was in ERROR."
    return text


def render(points: list[dict[str, Any]], commit_link: Any = None) -> Markup:
    """Stacked bars of CONFIGURED / ERROR counts per point (``commit_link(sha)``: where a
    bar links to)."""
    if not points:
        return Markup("")
    top = max(max(p["CONFIGURED"] + p["ERROR"] for p in points), 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    bar = inner_w / len(points)
    gap = 1 if bar > 4 else 0

    def y(value: float) -> float:
        return TOP + inner_h - inner_h * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aureacore-status-chart" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="status-chart-title status-chart-desc" font-family="sans-serif">',
        '<title id="status-chart-title">Services per status over mainline commits</title>',
        f'<desc id="status-chart-desc">{escape(describe(points))}</desc>',
        f'<line x1="{LEFT}" y1="{y(0)}" x2="{WIDTH - RIGHT}" y2="{y(0)}" stroke="#90a4ae"/>',
        f'<text x="{LEFT - 6}" y="{y(top) + 4}" text-anchor="end" font-size="11" '
        f'fill="#546e7a">{top}</text>',
        f'<text x="{LEFT - 6}" y="{y(0)}" text-anchor="end" font-size="11" '
        f'fill="#546e7a">0</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 16}" font-size="11" fill="#546e7a">'
        f'{escape(points[0]["committed_at"][:10])}</text>',
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 16}" text-anchor="end" font-size="11" '
        f'fill="#546e7a">{escape(points[-1]["committed_at"][:10])}</text>',
    ]
    for i, point in enumerate(points):
        x = LEFT + i * bar
        label = (f"{point['commit_sha'][:10]} ({point['committed_at']}): "
                 f"{point['CONFIGURED']} CONFIGURED, {point['ERROR']} ERROR")
        rects, base = [], 0
        for status in STACK:
            count = point[status]
            if count:
                rects.append(f'<rect class="bar-{status.lower()}" x="{x:.2f}" '
                             f'y="{y(base + count):.2f}" width="{max(bar - gap, 0.5):.2f}" '
                             f'height="{y(base) - y(base + count):.2f}" '
                             f'fill="{COLOURS[status]}"/>')
                base += count
        group = (f'<g class="point" data-commit="{point["commit_sha"]}">'
                 f'<title>{escape(label)}</title>{"".join(rects)}</g>')
        if commit_link is not None:
            group = f'<a href="{escape(commit_link(point["commit_sha"]))}">{group}</a>'
        parts.append(group)
    legend_y = HEIGHT - 4
    for j, status in enumerate(STACK):
        lx = LEFT + 160 + j * 130
        parts.append(f'<rect x="{lx}" y="{legend_y - 9}" width="10" height="10" '
                     f'fill="{COLOURS[status]}"/><text x="{lx + 14}" y="{legend_y}" '
                     f'font-size="11" fill="#37474f">{status}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

"""Charts drawn by roadie as SVG text: no chart library, no inline script.

Only numbers and ISO dates go into the SVG; nothing from a job reaches it.
"""

from __future__ import annotations

from html import escape

WIDTH = 720
HEIGHT = 200
PAD = 32


def _points(values: list[int], top: int) -> str:
    n = len(values)
    step = (WIDTH - 2 * PAD) / max(1, n - 1)
    out = []
    for i, v in enumerate(values):
        x = PAD + i * step
        y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v / top if top else 0)
        out.append(f"{x:.1f},{y:.1f}")
    return " ".join(out)


def history_svg(history: dict[str, dict[str, int]]) -> str:
    """Daily processed and failed counts, oldest day on the left."""
    days = sorted(history["processed"])
    processed = [history["processed"][d] for d in days]
    failed = [history["failed"].get(d, 0) for d in days]
    top = max([*processed, *failed, 1])
    first, last = (days[0], days[-1]) if days else ("", "")
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Processed and failed jobs per day">'
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
        f'<text class="label" x="{PAD}" y="{PAD - 10}">{top}</text>'
        f'<text class="label" x="{PAD}" y="{HEIGHT - 8}">{escape(first)}</text>'
        f'<text class="label end" x="{WIDTH - PAD}" y="{HEIGHT - 8}">{escape(last)}</text>'
        f'<polyline class="line processed" points="{_points(processed, top)}"/>'
        f'<polyline class="line failed" points="{_points(failed, top)}"/>'
        "</svg>"
    )


def histogram_svg(buckets: list[int], labels: list[str]) -> str:
    """Bars of run-time buckets, fastest on the left (counts and fixed labels only)."""
    n = max(1, len(buckets))
    top = max([*buckets, 1])
    step = (WIDTH - 2 * PAD) / n
    bar = max(1.0, step - 2)
    out = []
    for i, v in enumerate(buckets):
        h = (HEIGHT - 2 * PAD) * v / top
        x = PAD + i * step + 1
        out.append(f'<rect class="bar" x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" '
                   f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(labels[i])}: {v}'
                   "</title></rect>")
    first, last = (labels[0], labels[-1]) if labels else ("", "")
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Successful executions per run time">'
        f'<line class="axis" x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" '
        f'y2="{HEIGHT - PAD}"/>'
        f'<text class="label" x="{PAD}" y="{PAD - 10}">{top}</text>'
        f'<text class="label" x="{PAD}" y="{HEIGHT - 8}">{escape(first)}</text>'
        f'<text class="label end" x="{WIDTH - PAD}" y="{HEIGHT - 8}">{escape(last)}</text>'
        + "".join(out) + "</svg>"
    )

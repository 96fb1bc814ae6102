"""HTML building blocks of the study page: escaping, number formats, tables, embedded images.

Cells are built as already-escaped strings; ``esc`` is applied to every value that comes from data.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any, NamedTuple


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def pm(row: dict[str, Any], metric: str, digits: int = 4) -> str:
    """mean ± sd over a model's runs (the sd small, under the mean); the mean alone for one run; – for no value."""
    mean, sd = row.get(f"{metric}_mean"), row.get(f"{metric}_sd")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    if row["runs"] == 1 or sd is None:
        return fmt(mean, digits)
    return f'{fmt(mean, digits)}<br><span class="sd">± {fmt(sd, digits)}</span>'  # stacked: keeps wide tables narrow


def image(png: bytes, alt: str) -> str:
    return f'<img src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}" alt="{esc(alt)}">'


class Cell(NamedTuple):
    """A table cell with a CSS class (``best``: best mean of its column; ``sig``: sign test p < 0.05)."""

    html: str
    cls: str


def table(head: list[str], rows: Sequence[Sequence[str | Cell]], left: int = 1) -> str:
    """An HTML table from already-escaped cells; the first ``left`` columns are left-aligned text."""
    align = ['class="l"' if i < left else "" for i in range(len(head))]
    th = "".join(f"<th {a}>{h}</th>" for a, h in zip(align, head, strict=True))
    body = "\n".join(
        "<tr>" + "".join(_td(a, cell) for a, cell in zip(align, row, strict=True)) + "</tr>" for row in rows
    )
    return f"<table>\n<thead><tr>{th}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _td(align: str, cell: str | Cell) -> str:
    if isinstance(cell, Cell):
        return f'<td class="{cell.cls}">{cell.html}</td>'
    return f"<td {align}>{cell}</td>"


def family_cell(kind: str) -> str:
    return f'<span class="fam-{esc(kind)}">{esc(kind)}</span>'

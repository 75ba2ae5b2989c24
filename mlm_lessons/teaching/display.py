"""Tables that render as HTML in a notebook and as aligned text in a terminal."""

from __future__ import annotations

import html
import numbers
from typing import Mapping, Sequence

__all__ = ["Table"]


def _fmt(v, digits: int) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        return f"{float(v):,.{digits}f}"
    return "" if v is None else str(v)


class Table:
    """Rows of dicts with the same keys; ints get thousands separators, floats ``digits`` decimals."""

    def __init__(self, rows: Sequence[Mapping], *, digits: int = 3, title: str | None = None):
        rows = list(rows)
        if not rows:
            raise ValueError("a Table needs at least one row")
        self.columns = list(rows[0])
        for i, r in enumerate(rows):
            if list(r) != self.columns:
                raise ValueError(f"row {i} has columns {list(r)}, expected {self.columns}")
        self.rows = rows
        self.digits = digits
        self.title = title

    def _cells(self) -> list[list[str]]:
        return [[_fmt(r[c], self.digits) for c in self.columns] for r in self.rows]

    @staticmethod
    def _numeric(v) -> bool:
        return isinstance(v, numbers.Real) and not isinstance(v, bool)

    def __str__(self) -> str:
        cells = self._cells()
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        out = [self.title] if self.title else []
        out.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for r, row in zip(self.rows, cells):
            out.append(
                "  ".join(
                    v.rjust(w) if self._numeric(r[c]) else v.ljust(w)
                    for c, v, w in zip(self.columns, row, widths)
                ).rstrip()
            )
        return "\n".join(out)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="text-align:{"right" if self._numeric(r[c]) else "left"}">{html.escape(v)}</td>'
                for c, v in zip(self.columns, row)
            )
            + "</tr>"
            for r, row in zip(self.rows, self._cells())
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

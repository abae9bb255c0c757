"""Tables that stay readable in an 80-column terminal.

Headers, titles and cells are plain text, never rich markup, so "[~90 %]" or "[high]" in a header
is shown as written. Cells are never wrapped or cut (ids, names, numbers with their intervals:
values a user reads or copies whole) unless the column is a ``wrap`` column of prose, whose cells
wrap at spaces when the table is too wide; a header longer than its values takes a line break
("partial\ntau"). Long explanations go into the caption under the table instead of the headers;
full values are in ``--json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table
from rich.text import Text

#: Below this console width a table leaves out its wide columns (knobs, nearest results, ...).
WIDE = 160


@dataclass(frozen=True)
class Column:
    header: str
    numeric: bool = False  # right-aligned
    wrap: bool = False  # prose that may wrap at spaces; other cells are never wrapped or cut


def compact_table(title: str, columns: Sequence[Column | str], caption: str | None = None) -> Table:
    """A borderless table with two spaces between columns (each border costs a column of text)."""
    table = Table(title=Text(title), caption=Text(caption) if caption else None, title_justify="left",
                  caption_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  collapse_padding=True)
    for column in columns:
        column = Column(column) if isinstance(column, str) else column
        table.add_column(Text(column.header), justify="right" if column.numeric else "left", overflow="fold",
                         no_wrap=not column.wrap)
    return table


def add_row(table: Table, *cells: str) -> None:
    """Cells as plain text: a bracket in a value is not markup."""
    table.add_row(*(Text(cell) for cell in cells))


def interval(value: float, low: float, high: float, digits: int = 1) -> str:
    """``value [low, high]``: the format of every predicted value with its ~90 % interval."""
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"

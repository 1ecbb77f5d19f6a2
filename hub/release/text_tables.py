"""Tables printed as text by pandas, found in a notebook's stream or plain-text outputs, or a .txt.

``print(df)``, ``df.to_string()`` and a displayed Series print their values right-aligned under
right-aligned column labels, with the row labels left-aligned before them:

    gender                       F Fall 2023  All
    ethnicity
    Asian                        3        12   15
    Black or African American    *        40   52
    All                        100         *  300

So a value column is a position where every row's value ends and where the header has a label
ending too (a label may hold spaces: "Fall 2023"); the row label is what comes before the first
value. A Series has no column labels: its one column is where every row's value ends. Lines that
are not tables (prose, the filter's note under a table, ``Name: count, dtype: int64``) end a
table and are skipped. Each table comes back as rows of text cells, the first row its header,
the first cell of each row its label: the form the re-check reads CSV rows in. Markdown tables
(``df.to_markdown()``, printed or shown as ``text/markdown``) are read by their pipes.
"""

from __future__ import annotations

import re

TOKEN = re.compile(r"\S+")
SERIES_GAP = 3  # pandas puts four spaces between a Series' labels and its values; allow for one less


def _value_pattern(mark: str) -> re.Pattern[str]:
    return re.compile(rf"^(?:-?\d[\d,]*(?:\.\d+)?%?|{re.escape(mark)}|<NA>|NaN|nan|None)$")


def _trailing_values(line: str, value: re.Pattern[str]) -> list[re.Match[str]]:
    """The value tokens at the end of ``line``, left to right."""
    tokens = list(TOKEN.finditer(line))
    found = []
    for token in reversed(tokens):
        if not value.match(token.group()):
            break
        found.append(token)
    return found[::-1]


def _row(line: str, value: re.Pattern[str], ends: list[int], gap: int = 2) -> tuple[int, list[str]] | None:
    """Where the label of ``line`` ends, and its label and cells at the column ``ends``; None
    if it is not a row of such a table. pandas leaves at least two spaces between a row's label
    and its first value (a DataFrame), four in a Series: ``gap``, so "step 1" is prose."""
    by_end = {m.end(): m for m in _trailing_values(line, value)}
    if not ends or any(end not in by_end for end in ends):
        return None
    first = by_end[ends[0]].start()
    label = line[:first].rstrip()
    if label.strip() and first - len(label) < gap:
        return None
    return len(label), [label.strip(), *(by_end[end].group() for end in ends)]


def _rows(
    lines: list[str], start: int, value: re.Pattern[str], ends: list[int], gap: int = 2
) -> tuple[list[list[str]], int, int]:
    """The rows from ``start`` on, the widest label's end, and the index after the last row."""
    rows, widest, index = [], 0, start
    while index < len(lines):
        found = _row(lines[index], value, ends, gap)
        if found is None:
            break
        widest = max(widest, found[0])
        rows.append(found[1])
        index += 1
    return rows, widest, index


def _table_at(lines: list[str], start: int, value: re.Pattern[str]) -> tuple[list[list[str]], int] | None:
    """A table whose header is ``lines[start]`` (or a Series whose rows start there), and where it ends."""
    header = lines[start]
    if not header.strip():
        return None
    body_start = start + 1
    named_index = (
        body_start < len(lines)
        and len(TOKEN.findall(lines[body_start])) == 1
        and not _trailing_values(lines[body_start], value)
    )
    if named_index:
        body_start += 1  # the index's name, on a line of its own under the column labels
    if body_start < len(lines):
        label_ends = {m.end() for m in TOKEN.finditer(header)}
        ends = [m.end() for m in _trailing_values(lines[body_start], value) if m.end() in label_ends]
        rows, widest, end = _rows(lines, body_start, value, ends)
        as_row = _row(header, value, ends)
        if as_row is not None and as_row[1][0] and not named_index:
            rows = []  # a labelled line of values is a row of a table begun above, not a header
        if rows:
            # The first title starts after the label column, which is as wide as the widest
            # label or as the columns' name in the header ("grade  1  2  All"), whichever is wider.
            cut = max([widest, *(m.end() for m in TOKEN.finditer(header) if m.start() < widest < m.end() < ends[0])])
            titles, widest = [], cut
            for column_end in ends:
                titles.append(header[cut:column_end].strip())
                cut = column_end
            head = lines[start + 1].strip() if named_index else header[:widest].strip()
            return [[head, *titles], *rows], end
    # A Series: no column labels; its header, if any, is the index's name on the line before.
    first = start if _trailing_values(header, value) else start + 1
    if first >= len(lines) or (first > start and len(TOKEN.findall(header)) != 1):
        return None  # an index's name is one word; "Name: count, dtype: int64" is not one
    values = _trailing_values(lines[first], value)
    if not values:
        return None
    rows, _widest, end = _rows(lines, first, value, [values[-1].end()], gap=SERIES_GAP)
    if len(rows) < 2 or not all(r[0] for r in rows):
        return None
    return [["" if first == start else header.strip(), ""], *rows], end


PIPE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def _pipe_table_at(lines: list[str], start: int) -> tuple[list[list[str]], int] | None:
    """A Markdown table (``df.to_markdown()``): a ``| … |`` header, a ``|---|`` rule, rows."""
    if start + 1 >= len(lines) or not lines[start].strip().startswith("|"):
        return None
    if not PIPE_RULE.match(lines[start + 1].strip()):
        return None
    rows, index = [], start
    while index < len(lines) and lines[index].strip().startswith("|"):
        if index != start + 1:
            rows.append([cell.strip() for cell in lines[index].strip().strip("|").split("|")])
        index += 1
    return rows, index


def text_tables(text: str, mark: str = "*") -> list[list[list[str]]]:
    """Every table pandas printed in ``text`` (as text or Markdown), as rows of text cells
    (header first)."""
    value = _value_pattern(mark)
    lines = text.expandtabs().splitlines()
    tables, index = [], 0
    while index < len(lines):
        found = _pipe_table_at(lines, index) or _table_at(lines, index, value)
        if found is None:
            index += 1
            continue
        table, index = found
        tables.append(table)
    return tables

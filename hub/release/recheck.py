"""The automated re-check of a release request: disclosure rules over every table, neutral labels.

For each file (.csv, .html, .ipynb, .txt, .png) it finds every table (CSV rows, HTML
``<table>``s, the HTML outputs of a notebook, and tables pandas printed as text or Markdown: in
a notebook's stream, Markdown and plain-text outputs or a .txt, ``hub.release.text_tables``) and
applies the
filter's disclosure rules to each:

- the threshold: a whole number of 0 < n < threshold in a column that is not a rate, share,
  mean or year refuses the request;
- record-level data: a table with a column of student identifiers or keys (by its title, or
  values shaped like the warehouse's student keys) refuses it, naming the column;
- secondary suppression: a table with suppressed cells and a total, whose totals give a
  suppressed small cell back (the filter's own attacker and protection interval,
  ``hub.release.margins``), refuses it, naming the file, the output, the row and the column.

A notebook with an output the server's guard blocked ("did not come through the output
filter") is refused whole: its outputs did not all pass the output guard.

For release outside the consortium (principles 5 and 8) every institution code is replaced by
a neutral label ("community college A"), and a file that names a member (its real name) or
ranks members is refused. The re-check returns the files as they would leave (``outgoing``):
the reviewers see exactly those, and exactly those reach the release area.

It cannot read images: a .png (or a notebook's image output) is a note for the reviewers to
look at, not a pass.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

from hub.release.margins import MARGINS, Unreadable, exposed_cells
from hub.release.text_tables import text_tables
from output_filters.policy import Policy, current_policy
from warehouse.elements import IDENTIFIERS
from warehouse.pseudonymize import KEY_LENGTH

ALLOWED = (".ipynb", ".html", ".csv", ".txt", ".png")
# Columns whose whole numbers are not counts of people (the first column labels the rows).
NOT_COUNTS = re.compile(
    r"rate|share|percent|pct|%|mean|average|avg|median|ratio|year|grade|term|cohort|age|gpa|score|std", re.I
)
WHOLE = re.compile(r"^\s*(\d{1,3}(?:,\d{3})*|\d+)\s*$")
UNGUARDED = "did not come through the output filter"
# Columns that make a table record-level: the raw identifiers and the stored key (warehouse.elements).
RECORD_COLUMNS = frozenset({*IDENTIFIERS, "student_key", "student_id", "ssn", "date_of_birth", "dob"})
STUDENT_KEY = re.compile(rf"[0-9a-f]{{{KEY_LENGTH}}}")
RANKING = re.compile(r"\brank(ing|ed)?\b|\bposition\b|\bleague\b", re.I)


@dataclass(frozen=True)
class Member:
    code: str
    segment: str
    name: str
    label: str  # the neutral label that replaces the code outside the consortium


@dataclass(frozen=True)
class Finding:
    file: str
    where: str
    message: str
    refuses: bool = True

    def __str__(self) -> str:
        return f"{self.file}, {self.where}: {self.message}" + ("" if self.refuses else " (note)")


@dataclass(frozen=True)
class Result:
    findings: list[Finding]
    outgoing: dict[str, bytes]  # file name -> the bytes that would leave

    @property
    def passed(self) -> bool:
        return not any(f.refuses for f in self.findings)


def neutral_members(members: list[tuple[str, str, str]], segments: dict[str, str]) -> list[Member]:
    """Members (code, segment, name) with labels by segment: "university A", "university B"...

    Letters follow the secret codes' order, which says nothing about the institutions.
    """
    labelled, counts = [], {}
    for code, segment, name in sorted(members, key=lambda m: (list(segments).index(m[1]), m[0])):
        index = counts.get(segment, 0)
        counts[segment] = index + 1
        labelled.append(Member(code, segment, name or "", f"{segments[segment]} {_letters(index)}"))
    return labelled


def _letters(index: int) -> str:
    text = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        text = chr(65 + rest) + text
    return text


def recheck(files: dict[str, bytes], members: list[Member], threshold: int, policy: Policy | None = None) -> Result:
    """Check ``files`` (name -> bytes) and make the neutral copies that would leave.

    The rules are the filter's (``policy``, default the consortium's), at ``threshold``."""
    rules = dataclasses.replace(policy or current_policy(), threshold=threshold)
    findings: list[Finding] = []
    outgoing: dict[str, bytes] = {}
    for name, data in files.items():
        suffix = Path(name).suffix.lower()
        if suffix == ".png":
            findings.append(
                Finding(name, "image", "an image: the re-check cannot read it; reviewers look at it", False)
            )
            outgoing[name] = data
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            findings.append(Finding(name, "file", "not UTF-8 text; save it as UTF-8 and request again"))
            continue
        findings += _names_members(name, text, members)
        neutral = _neutralize(text, members)
        # Tables are read from the file as written (a printed table's columns are aligned to its
        # labels), and their cells neutralized as they are checked.
        if suffix == ".csv":
            findings += _check_rows(name, "the table", list(csv.reader(io.StringIO(text))), rules, members)
        elif suffix == ".html":
            findings += _check_html(name, text, rules, members)
        elif suffix == ".txt":
            findings += _check_text(name, text, rules, members)
        elif suffix == ".ipynb":
            findings += _check_notebook(name, text, rules, members)
        outgoing[name] = neutral.encode("utf-8")
    return Result(findings, outgoing)


def _names_members(name: str, text: str, members: list[Member]) -> list[Finding]:
    found = []
    for member in members:
        if member.name and re.search(rf"\b{re.escape(member.name)}\b", text, re.I):
            found.append(
                Finding(name, "text", f"names a member institution ({member.label}); outputs may not name members")
            )
    return found


def _neutralize(text: str, members: list[Member]) -> str:
    for member in members:
        text = re.sub(rf"\b{re.escape(member.code)}\b", member.label, text)
    return text


def _check_table(file: str, where: str, rows: list[list[str]], threshold: int, members: list[Member]) -> list[Finding]:
    """The threshold rule on every count cell of one table (first row: the header)."""
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    found = []
    labels = {m.label for m in members}
    mentions_members = any(cell.strip() in labels for row in rows for cell in row)
    if mentions_members and any(RANKING.search(cell) for cell in header):
        found.append(Finding(file, where, "ranks member institutions; outputs may not rank members (principle 5)"))
    for number, row in enumerate(body, start=2):
        for column, cell in enumerate(row):
            title = header[column] if column < len(header) else ""
            if column == 0 or NOT_COUNTS.search(title):
                continue  # the first column labels the row; rates, means and years are not counts
            match = WHOLE.match(cell)
            if match and 0 < int(match.group(1).replace(",", "")) < threshold:
                found.append(
                    Finding(
                        file,
                        f"{where}, row {number}, column {title.strip() or column + 1!r}",
                        f"a count of {match.group(1)} is below the threshold of {threshold}",
                    )
                )
    return found


def _check_rows(file: str, where: str, rows: list[list[str]], rules: Policy, members: list[Member]) -> list[Finding]:
    """Every rule on one table (first row: the header; first cell of a row: its label)."""
    records = _check_records(file, where, rows)
    if records:
        return records  # record-level: nothing else about it matters
    rows = [[_neutralize(cell, members) for cell in row] for row in rows]
    return _check_table(file, where, rows, rules.threshold, members) + _check_margins(file, where, rows, rules)


def _check_records(file: str, where: str, rows: list[list[str]]) -> list[Finding]:
    """The record-level rule: a table with a column of student identifiers or student keys (by
    its title, or by values shaped like the warehouse's keys) is records, not results."""
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    for column, title in enumerate(header):
        named = re.sub(r"[\s-]+", "_", title.strip().lower()) in RECORD_COLUMNS
        values = [row[column].strip() for row in body if column < len(row)]
        keyed = len(values) >= 2 and all(STUDENT_KEY.fullmatch(value) for value in values)
        if named or keyed:
            what = f"column {title.strip() or column + 1!r}"
            return [
                Finding(
                    file,
                    f"{where}, {what}",
                    "record-level data (student identifiers or keys); only aggregate results can be released",
                )
            ]
    return []


def _check_margins(file: str, where: str, rows: list[list[str]], rules: Policy) -> list[Finding]:
    """Secondary suppression: suppressed small cells the table's own totals give back."""
    if len(rows) < 3:
        return []
    header = [cell.strip() for cell in rows[0]]
    body = [row for row in rows[1:] if any(cell.strip() for cell in row[1:])]
    if any(len(row) != len(header) for row in body):
        # Grouped row labels (a MultiIndex) leave rows shorter than the header: which cell is in
        # which column is not certain, so the totals are not audited rather than misread.
        marked = any(cell.strip() == rules.mark for row in body for cell in row[1:])
        totals = any(cell.strip().lower() in MARGINS for row in rows for cell in row)
        if marked and totals:
            return [
                Finding(
                    file,
                    where,
                    "suppressed cells the re-check could not audit: grouped row labels; reviewers check it",
                    False,
                )
            ]
        return []
    counts = []
    for column in range(1, len(header)):
        cells = [row[column].strip() for row in body]
        if not NOT_COUNTS.search(header[column]) and all(c == rules.mark or WHOLE.match(c) for c in cells):
            counts.append(column)
    values = [
        [float("nan") if row[c].strip() == rules.mark else float(row[c].replace(",", "")) for c in counts]
        for row in body
    ]
    if not counts or not body:
        return []
    try:
        exposed = exposed_cells([row[0].strip() for row in body], [header[c] for c in counts], values, rules)
    except Unreadable as problem:
        return [
            Finding(file, where, f"suppressed cells the re-check could not audit: {problem}; reviewers check it", False)
        ]
    found = []
    for cell in exposed:
        within = "exactly" if cell.width < 0.5 else f"to within {cell.width:g}"
        column = f", column {cell.column!r}" if cell.column else ""
        found.append(
            Finding(
                file,
                f"{where}, row {cell.row!r}{column}",
                f"a suppressed cell can be recomputed from the table's totals ({within}); suppress more cells "
                "(the output filter's secondary suppression does) or publish fewer totals",
            )
        )
    return found


def _check_text(file: str, text: str, rules: Policy, members: list[Member], where: str = "") -> list[Finding]:
    found = []
    for index, table in enumerate(text_tables(text, rules.mark), start=1):
        found += _check_rows(file, f"{where}text table {index}", table, rules, members)
    return found


def _html_tables(html: str) -> list[list[list[str]]]:
    from bs4 import BeautifulSoup

    tables = []
    for table in BeautifulSoup(html, "html.parser").find_all("table"):
        rows = []
        for tr in table.find_all("tr"):
            rows.append([cell.get_text(" ", strip=True) for cell in tr.find_all(["th", "td"])])
        tables.append([row for row in rows if row])
    return tables


def _check_html(file: str, html: str, rules: Policy, members: list[Member], where: str = "") -> list[Finding]:
    found = []
    for index, table in enumerate(_html_tables(html), start=1):
        found += _check_rows(file, f"{where}table {index}", table, rules, members)
    return found


def _joined(value) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def _check_notebook(file: str, text: str, rules: Policy, members: list[Member]) -> list[Finding]:
    try:
        notebook = json.loads(text)
        cells = notebook["cells"]
    except (ValueError, KeyError, TypeError):
        return [Finding(file, "file", "not a notebook (.ipynb JSON with cells); export it again from JupyterLab")]
    found = []
    for number, cell in enumerate(cells, start=1):
        where = f"cell {number}: "
        streams: dict[str, str] = {}  # a stream's text, however the kernel cut it into messages
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "stream" and UNGUARDED not in _joined(output.get("text")):
                name = str(output.get("name", "stdout"))
                streams[name] = streams.get(name, "") + _joined(output.get("text"))
        for name, stream in streams.items():
            found += _check_text(file, stream, rules, members, f"{where}{name} ")
        for output in cell.get("outputs", []) or []:
            shown = json.dumps(output)
            if UNGUARDED in shown:
                found.append(
                    Finding(file, f"cell {number}", "an output did not pass the output guard; run the cell again")
                )
                continue
            data = output.get("data") or {}
            html = data.get("text/html")
            if html:
                found += _check_html(file, _joined(html), rules, members, where)
            elif "text/markdown" in data:  # display(Markdown(df.to_markdown()))
                found += _check_text(file, _joined(data["text/markdown"]), rules, members, where)
            elif "text/plain" in data:  # a Series, or a table shown without HTML
                found += _check_text(file, _joined(data["text/plain"]), rules, members, where)
            if "image/png" in data:
                found.append(Finding(file, f"cell {number}", "an image output: reviewers look at it", False))
    return found

"""The leak matrix: every output path and rule, through a real secure kernel.

Each row runs code in the ``enclave`` kernel over the Jupyter protocol and inspects what
reached the client. The small value is learned outside the filter, from the warehouse.
"""

# ruff: noqa: F811 (pytest fixtures imported from tests.filter_fixtures)
from __future__ import annotations

import re

import pytest

from tests.filter_fixtures import BLOCKED, session, truth  # noqa: F401


def tokens(text: str, mark: str = "*") -> set[str]:
    """Numbers and marks in a rendered table (not inside codes such as 7K2QXB), reason lines removed."""
    text = re.sub(r'<p class="enclave-note">.*?</p>', " ", text, flags=re.S)
    text = "\n".join(line for line in text.splitlines() if not line.startswith(f"{mark} "))
    text = re.sub(r"<[^>]+>", " ", text)
    numbers = re.findall(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?(?![A-Za-z0-9.])", text)
    return set(numbers) | ({mark} if re.search(rf"(?<![A-Za-z0-9]){re.escape(mark)}(?![A-Za-z0-9])", text) else set())


RECORD_PATHS = {
    "cell-result": "df",
    "head": "df.head()",
    "display": "display(df)",
    "print": "print(df)",
    "repr": "repr(df)",
    "str": "str(df)",
    "f-string": "f'{df}'",
    "to_string": "print(df.to_string())",
    "to_html": "df.to_html()",
    "to_markdown": "print(df.to_markdown())",
    "series": "df['student_key']",
    "series-print": "print(df.student_key.head())",
    "row-subset": "df[df.grade_level == 12]",
    "sorted": "df.sort_values('birth_year').head(3)",
    "merge": "df.merge(pd.DataFrame({'school': ['HS01'], 'x': [1]}), on='school')",
    "concat": "pd.concat([pd.DataFrame({'student_key': ['k']}), df])",
    "groupby-head": "df.groupby('school').head(1)",
    "groupby-transform": "df.groupby('school').birth_year.transform('mean')",
    "groupby-filter": "df.groupby('school').filter(lambda g: len(g) > 100)",
    "groupby-rank": "df.groupby('school').birth_year.rank()",
    "groupby-cumsum": "df.groupby('school').birth_year.cumsum()",
    "groupby-cumcount": "df.groupby('school').cumcount()",
    "groupby-cummax": "df.groupby('school').birth_year.cummax()",
    "groupby-cummin": "df.groupby('school').birth_year.cummin()",
    "groupby-cumprod": "df.groupby('school').grade_level.cumprod()",
    "groupby-pct_change": "df.groupby('school').birth_year.pct_change()",
    "groupby-ffill": "df.groupby('school').graduated.ffill()",
    "groupby-bfill": "df.groupby('school').graduated.bfill()",
    "rolling": "df.birth_year.rolling(3).mean()",
    "rolling-frame": "df[['birth_year', 'grade_level']].rolling(3).sum()",
    "window": "df.birth_year.rolling(3, win_type='boxcar').mean()",
    "expanding": "df.birth_year.expanding().max()",
    "ewm": "df.birth_year.ewm(span=3).mean()",
    "groupby-rolling": "df.groupby('school').birth_year.rolling(2).mean()",
    "groupby-expanding": "df.groupby('school').birth_year.expanding().sum()",
    "groupby-ewm": "df.groupby('school').birth_year.ewm(span=2).mean()",
    "frame-from-records": "pd.DataFrame(df)",
    "series-from-records": "pd.Series(df.student_key)",
    "frame-from-dict": "pd.DataFrame({'k': df.student_key})",
    "frame-from-array": "pd.DataFrame(df.values)",
    "unstack": "df.set_index(['school', df.index]).birth_year.unstack()",
    "frame-unstack": "df.set_index(['school', df.index])[['birth_year']].unstack()",
    "stack": "df[['birth_year', 'grade_level']].stack()",
    "melt": "df.melt(id_vars='student_key', value_vars=['birth_year'])",
    "pivot": "df.assign(r=df.index).pivot(index='r', columns='school', values='birth_year')",
    "explode": "df.assign(x=[[1, 2]] * len(df)).explode('x')",
    "get_dummies": "pd.get_dummies(df.ethnicity)",
    "cut": "pd.cut(df.birth_year, 3)",
    "qcut": "pd.qcut(df.birth_year, 3, duplicates='drop')",
    "dot": "df[['birth_year']].T.dot(df[['grade_level']])",
    "to_markdown-file": "df.student_key.to_markdown('keys.md')",
    "join": "df.join(df[['school']].rename(columns={'school': 's2'}))",
    "merge_ordered": "pd.merge_ordered(df[['student_key', 'birth_year']], df[['student_key', 'school']], "
    "on='student_key')",
    "merge_asof": "pd.merge_asof(df.sort_values('birth_year')[['birth_year', 'student_key']], "
    "df.sort_values('birth_year')[['birth_year', 'school']], on='birth_year')",
}


@pytest.mark.parametrize("code", list(RECORD_PATHS.values()), ids=list(RECORD_PATHS))
def test_record_level_data_is_blocked(session, truth, code):
    out = session.run(code)
    assert not out.errors, out.errors
    assert BLOCKED in out.all
    assert truth["key"] not in out.all


TABLE_PATHS = {
    "cell-result": "table",
    "display": "display(table)",
    "print": "print(table)",
    "repr": "repr(table)",
    "f-string": "f'{table}'",
    "to_string": "print(table.to_string())",
    "to_html": "table.to_html()",
    "_repr_html_": "table._repr_html_()",
    "to_markdown": "print(table.to_markdown())",
    "loc": "table.loc[inst, eth]",
    "to_dict": "table.to_dict()",
    "values": "table.values.tolist()",
}


@pytest.mark.parametrize("code", list(TABLE_PATHS.values()), ids=list(TABLE_PATHS))
def test_small_cell_never_reaches_the_client(session, truth, code):
    out = session.run(code)
    assert not out.errors, out.errors
    assert str(truth["n"]) not in tokens(out.all), out.all


COUNT_RULES = {
    "crosstab": "pd.crosstab(sub.institution, sub.ethnicity)",
    "crosstab-margins": "pd.crosstab(sub.institution, sub.ethnicity, margins=True)",
    "value_counts": "sub.ethnicity.value_counts()",
    "frame-value_counts": "sub[['institution', 'ethnicity']].value_counts()",
    "groupby-size": "sub.groupby('ethnicity').size()",
    "groupby-size-2d": "sub.groupby(['institution', 'ethnicity']).size()",
    "groupby-count": "sub.groupby('ethnicity').student_key.count()",
    "groupby-nunique": "sub.groupby('ethnicity').student_key.nunique()",
    "groupby-agg-size": "sub.groupby('ethnicity').agg(n=('student_key', 'size'))",
    "pivot_table-count": "sub.pivot_table(index='institution', columns='ethnicity', values='student_key', "
    "aggfunc='count')",
    "pivot_table-size": "pd.pivot_table(sub, index='institution', columns='ethnicity', aggfunc='size')",
    "groupby-value_counts": "sub.groupby('institution').ethnicity.value_counts()",
    "frame-groupby-value_counts": "sub[['institution', 'ethnicity']].groupby('institution').value_counts()",
    "describe-count": "sub.groupby('ethnicity').birth_year.describe()",
    "agg-count": "sub.groupby('ethnicity').agg(n=('student_key', 'count'))",
    "groupby-count-frame": "sub.groupby('ethnicity')[['student_key']].count()",
}


@pytest.mark.parametrize("code", list(COUNT_RULES.values()), ids=list(COUNT_RULES))
def test_count_tables_suppress_small_cells(session, truth, code):
    out = session.run(f"print({code})")
    assert not out.errors, out.errors
    assert "*" in tokens(out.all)
    line = next(line for line in out.all.splitlines() if truth["ethnicity"].split("/")[0][:12] in line)
    assert str(truth["n"]) not in tokens(line), out.all
    assert "suppressed: fewer than 10 records" in out.all


def test_the_missing_cell_is_missing_not_zero(session):
    out = session.run("v = table.loc[inst, eth]\nprint(pd.isna(v), table.sum().sum() < len(sub))")
    assert out.all.split() == ["True", "True"]


def test_secondary_suppression_protects_the_totals(session, truth):
    out = session.run(
        "t = pd.crosstab(df.institution, df.ethnicity, margins=True)\n"
        "inner = t.drop(index='All', columns='All')\n"
        "lonely = [(i, int(inner.loc[i].isna().sum())) for i in inner.index if inner.loc[i].isna().sum() == 1]\n"
        "cols = [c for c in inner.columns if inner[c].isna().sum() == 1]\n"
        "print(lonely, cols, int(inner.isna().sum().sum()) > 0)"
    )
    assert out.all.split() == ["[]", "[]", "True"], out.all


STATISTICS = {
    "groupby-mean": "cell.groupby('institution').birth_year.mean()",
    "groupby-rate": "cell.groupby('ethnicity').english_learner.mean()",
    "groupby-median": "cell.groupby('ethnicity').birth_year.median()",
    "groupby-std": "cell.groupby('ethnicity').birth_year.std()",
    "agg-named": "cell.groupby('ethnicity').agg(m=('birth_year', 'mean'))",
    "crosstab-mean": "pd.crosstab(cell.institution, cell.ethnicity, values=cell.birth_year, aggfunc='mean')",
    "pivot_table-mean": "cell.pivot_table(index='institution', columns='ethnicity', values='birth_year')",
    "describe": "cell.birth_year.describe()",
    "groupby-describe": "cell.groupby('ethnicity').birth_year.describe()",
    "groupby-skew": "cell.groupby('ethnicity').birth_year.skew()",
    "groupby-kurt": "cell.groupby('ethnicity').birth_year.kurt()",
    "groupby-sem": "cell.groupby('ethnicity').birth_year.sem()",
    "groupby-var": "cell.groupby('ethnicity').birth_year.var()",
    "groupby-prod": "cell.groupby('ethnicity').grade_level.prod()",
    "groupby-quantile": "cell.groupby('ethnicity').birth_year.quantile(0.25)",
    "groupby-corr": "cell.groupby('ethnicity')[['birth_year', 'grade_level']].corr()",
    "groupby-cov": "cell.groupby('ethnicity')[['birth_year', 'grade_level']].cov()",
    "groupby-series-corr": "cell.groupby('ethnicity').birth_year.corr(cell.grade_level)",
    "groupby-series-cov": "cell.groupby('ethnicity').birth_year.cov(cell.grade_level)",
    "groupby-corrwith": "cell.groupby('ethnicity')[['birth_year']].corrwith(cell.grade_level)",
    "frame-describe": "cell[['birth_year', 'grade_level']].describe()",
    "frame-skew": "cell[['birth_year']].skew()",
    "frame-kurt": "cell[['birth_year']].kurt()",
    "frame-sem": "cell[['birth_year']].sem()",
    "frame-std": "cell[['birth_year']].std()",
    "frame-var": "cell[['birth_year']].var()",
    "frame-prod": "cell[['grade_level']].prod()",
    "frame-median": "cell[['birth_year']].median()",
    "frame-quantile": "cell[['birth_year']].quantile(0.5)",
    "frame-sum": "cell[['birth_year']].sum()",
    "series-skew": "cell.birth_year.skew()",
    "series-kurt": "cell.birth_year.kurt()",
    "series-sem": "cell.birth_year.sem()",
    "series-var": "cell.birth_year.var()",
    "series-prod": "cell.grade_level.prod()",
    "series-mode": "cell.birth_year.mode()",
    "series-dot": "cell.birth_year.dot(cell.grade_level)",
    "groupby-mean-frame": "cell.groupby('ethnicity')[['birth_year']].mean()",
    "groupby-median-frame": "cell.groupby('ethnicity')[['birth_year']].median()",
    "groupby-std-frame": "cell.groupby('ethnicity')[['birth_year']].std()",
    "groupby-sum": "cell.groupby('ethnicity').birth_year.sum()",
    "agg-list": "cell.groupby('ethnicity').birth_year.agg(['mean', 'std'])",
    "agg-dict": "cell.groupby('ethnicity').agg({'birth_year': ['mean', 'median']})",
    "crosstab-agg-list": "pd.crosstab(cell.institution, cell.ethnicity, values=cell.birth_year, "
    "aggfunc=['mean', 'std'])",
    "pivot_table-list": "cell.pivot_table(index='institution', columns='ethnicity', values=['birth_year'], "
    "aggfunc=['mean', 'sum'])",
    "pivot_table-dict": "cell.pivot_table(index='institution', values='birth_year', aggfunc={'birth_year': 'mean'})",
}


@pytest.mark.parametrize("code", list(STATISTICS.values()), ids=list(STATISTICS))
def test_statistics_of_small_groups_are_suppressed(session, truth, code):
    out = session.run(
        f"r = {code}\nprint(r)\nprint(pd.notna(r).to_numpy().sum() if hasattr(r, 'shape') else int(pd.notna(r)))"
    )
    assert not out.errors, out.errors
    assert out.all.strip().splitlines()[-1] == "0", out.all  # no value of the small group is left


REFUSED = {
    "groupby-min": "df.groupby('school').birth_year.min()",
    "groupby-max": "df.groupby('school').birth_year.max()",
    "groupby-first": "df.groupby('school').student_key.first()",
    "agg-max": "df.groupby('school').agg({'birth_year': 'max'})",
    "agg-lambda": "df.groupby('school').birth_year.agg(lambda s: s.iloc[0])",
    "apply": "df.groupby('school').apply(lambda g: g.student_key.iloc[0])",
    "pivot-max": "df.pivot_table(index='school', values='birth_year', aggfunc='max')",
    "crosstab-custom": "pd.crosstab(df.school, df.gender, values=df.birth_year, aggfunc=lambda s: s.iloc[0])",
    "to_csv-text": "print(df.to_csv())",
    "to_csv-file": "df.to_csv('records.csv')",
    "to_json": "df.head().to_json()",
    "to_parquet": "df.to_parquet('records.parquet')",
    "series-to_csv": "df.student_key.to_csv('keys.csv')",
    "to_latex": "df.to_latex()",
    "groupby-ohlc": "df.groupby('school').birth_year.ohlc()",
    "groupby-nth": "df.groupby('school').nth(0)",
    "groupby-idxmin": "df.groupby('school').birth_year.idxmin()",
    "groupby-idxmax": "df.groupby('school').birth_year.idxmax()",
    "groupby-unique-numbers": "df.groupby('school').birth_year.unique()",
    "groupby-unique-keys": "df.groupby('school').student_key.unique()",
    "series-apply": "df.groupby('school').birth_year.apply(lambda s: s.iloc[0])",
    "min": "df.birth_year.min()",
    "max": "df.birth_year.max()",
    "frame-max": "df[['birth_year']].max()",
    "idxmin": "df.birth_year.idxmin()",
    "idxmax": "df.birth_year.idxmax()",
    "str-cat": "df.student_key.str.cat(sep=',')",
    "to_dict-records": "df.to_dict('records')",
    "to_json-series": "df.student_key.to_json()",
    "to_pickle": "df.to_pickle('records.pkl')",
    "to_excel": "df.to_excel('records.xlsx')",
    "to_feather": "df.to_feather('records.feather')",
    "to_orc": "df.to_orc('records.orc')",
    "to_stata": "df.to_stata('records.dta')",
    "to_hdf": "df.to_hdf('records.h5', key='x')",
    "to_sql": "import sqlite3\ndf.to_sql('t', sqlite3.connect(':memory:'))",
    "to_xml": "df.to_xml()",
    "to_clipboard": "df.to_clipboard()",
    "series-to_pickle": "df.student_key.to_pickle('keys.pkl')",
    "series-to_excel": "df.student_key.to_excel('keys.xlsx')",
    "series-to_hdf": "df.student_key.to_hdf('keys.h5', key='x')",
    "series-to_sql": "import sqlite3\ndf.student_key.to_sql('t', sqlite3.connect(':memory:'))",
    "series-to_latex": "df.student_key.to_latex()",
    "series-to_clipboard": "df.student_key.to_clipboard()",
    "groupby-boxplot": "df.groupby('school').boxplot(column='birth_year')",
}


@pytest.mark.parametrize("code", list(REFUSED.values()), ids=list(REFUSED))
def test_single_record_values_are_refused(session, truth, code):
    out = session.run(code)
    assert out.errors and out.errors[0].startswith("DisclosureError"), out.all
    assert truth["key"] not in out.all
    assert not [p for p in session.workdir.iterdir() if p.suffix in (".csv", ".parquet")]


def test_aggregates_can_be_written(session, tmp_path):
    target = tmp_path / "counts.csv"
    out = session.run(f"pd.crosstab(sub.institution, sub.ethnicity).to_csv({str(target)!r})")
    assert not out.errors, out.errors
    assert target.read_text().startswith("institution,")


def test_large_groups_are_shown(session):
    out = session.run("print(df.groupby('gender').size().sum() == len(df), df.gender.value_counts().notna().all())")
    assert out.all.split() == ["True", "True"]


def test_describe_withholds_min_and_max(session):
    out = session.run("d = df.birth_year.describe()\nprint(pd.isna(d['min']), pd.isna(d['max']), d['count'])")
    first, second, count = out.all.split()
    assert (first, second) == ("True", "True") and float(count) > 100

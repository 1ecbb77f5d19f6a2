"""Meta-tests: every guarded pandas or matplotlib name, and every rule, has a row in a leak matrix.

``COVERAGE`` maps each guarded name (a pattern) to the row that exercises it through a real
kernel: (test module, dict of rows, row id). A new guard without a row, or a row that no
longer exists, fails here.
"""

from __future__ import annotations

import fnmatch
import importlib

import pytest

from output_filters.rules import RULES

K, G = "tests.test_filter_kernel", "tests.test_filter_guards"
COVERAGE = {
    "Axes.hist": (G, "PLOTS_REFUSED", "matplotlib-small-bins"),
    "Axes.*": (G, "PLOTS_REFUSED", "matplotlib-scatter"),
    "PlotAccessor.__call__": (G, "PLOTS_REFUSED", "line"),
    "*.hist": (G, "PLOTS_REFUSED", "small-bins"),
    "DataFrame.boxplot": (G, "PLOTS_REFUSED", "box"),
    "DataFrameGroupBy.boxplot": (K, "REFUSED", "groupby-boxplot"),
    "DataFrame.__init__": (K, "RECORD_PATHS", "frame-from-records"),
    "Series.__init__": (K, "RECORD_PATHS", "series-from-records"),
    "*.__len__": (G, "SMALL_LENS", "len"),
    "*.__repr__": (K, "RECORD_PATHS", "repr"),
    "*._repr_html_": (K, "TABLE_PATHS", "_repr_html_"),
    "*.to_html": (K, "RECORD_PATHS", "to_html"),
    "*.to_string": (K, "RECORD_PATHS", "to_string"),
    "*.to_markdown": (K, "RECORD_PATHS", "to_markdown"),
    "Styler.*": (G, "STYLER", "styler"),
    "*.shape": (G, "PLAIN_NUMBERS", "shape"),
    "*.count": (G, "PLAIN_NUMBERS", "count"),
    "*.nunique": (G, "PLAIN_NUMBERS", "nunique"),
    "*.sum": (G, "PLAIN_NUMBERS", "boolean-sum"),
    "*.mean": (G, "SUPPRESSED_STATISTICS", "mean"),
    "*.median": (K, "STATISTICS", "frame-median"),
    "*.std": (K, "STATISTICS", "frame-std"),
    "*.var": (K, "STATISTICS", "frame-var"),
    "*.sem": (K, "STATISTICS", "frame-sem"),
    "*.skew": (K, "STATISTICS", "frame-skew"),
    "*.kurt": (K, "STATISTICS", "frame-kurt"),
    "*.prod": (K, "STATISTICS", "frame-prod"),
    "*.quantile": (K, "STATISTICS", "frame-quantile"),
    "Series.mode": (K, "STATISTICS", "series-mode"),
    "Series.dot": (K, "STATISTICS", "series-dot"),
    "DataFrame.dot": (K, "RECORD_PATHS", "dot"),
    "*.min": (K, "REFUSED", "min"),
    "*.max": (K, "REFUSED", "max"),
    "*.idxmin": (K, "REFUSED", "idxmin"),
    "*.idxmax": (K, "REFUSED", "idxmax"),
    "*.describe": (K, "STATISTICS", "describe"),
    "*.value_counts": (K, "COUNT_RULES", "value_counts"),
    "*GroupBy.value_counts": (K, "COUNT_RULES", "groupby-value_counts"),
    "*.to_dict": (G, "CONVERSIONS", "to_dict"),
    "*.to_records": (G, "CONVERSIONS", "to_records"),
    "*.itertuples": (G, "CONVERSIONS", "itertuples"),
    "*.iterrows": (G, "CONVERSIONS", "iterrows"),
    "*.items": (G, "CONVERSIONS", "items"),
    "*.tolist": (G, "CONVERSIONS", "tolist"),
    "*.to_list": (G, "CONVERSIONS", "to_list"),
    "Series.__iter__": (G, "CONVERSIONS", "list"),
    "Series.__getitem__": (G, "CONVERSIONS", "getitem-scalar"),
    "_LocIndexer.__getitem__": (G, "CONVERSIONS", "loc-scalar"),
    "_iLocIndexer.__getitem__": (G, "CONVERSIONS", "iloc-scalar"),
    "_AtIndexer.__getitem__": (G, "CONVERSIONS", "at"),
    "_iAtIndexer.__getitem__": (G, "CONVERSIONS", "iat"),
    "*.values": (G, "ARRAYS", "values"),
    "*.to_numpy": (G, "ARRAYS", "to_numpy"),
    "Series.array": (G, "ARRAYS", "array"),
    "StringMethods.cat": (K, "REFUSED", "str-cat"),
    "*.to_csv": (K, "REFUSED", "to_csv-file"),
    "*.to_json": (K, "REFUSED", "to_json"),
    "*.to_parquet": (K, "REFUSED", "to_parquet"),
    "*.to_latex": (K, "REFUSED", "to_latex"),
    "*.to_pickle": (K, "REFUSED", "to_pickle"),
    "*.to_excel": (K, "REFUSED", "to_excel"),
    "*.to_feather": (K, "REFUSED", "to_feather"),
    "*.to_orc": (K, "REFUSED", "to_orc"),
    "*.to_stata": (K, "REFUSED", "to_stata"),
    "*.to_hdf": (K, "REFUSED", "to_hdf"),
    "*.to_sql": (K, "REFUSED", "to_sql"),
    "*.to_xml": (K, "REFUSED", "to_xml"),
    "*.to_clipboard": (K, "REFUSED", "to_clipboard"),
    "GroupBy.size": (K, "COUNT_RULES", "groupby-size"),
    "GroupBy.count": (K, "COUNT_RULES", "groupby-count"),
    "*GroupBy.nunique": (K, "COUNT_RULES", "groupby-nunique"),
    "GroupBy.mean": (K, "STATISTICS", "groupby-mean"),
    "GroupBy.median": (K, "STATISTICS", "groupby-median"),
    "GroupBy.std": (K, "STATISTICS", "groupby-std"),
    "GroupBy.var": (K, "STATISTICS", "groupby-var"),
    "GroupBy.sem": (K, "STATISTICS", "groupby-sem"),
    "GroupBy.prod": (K, "STATISTICS", "groupby-prod"),
    "GroupBy.quantile": (K, "STATISTICS", "groupby-quantile"),
    "GroupBy.sum": (K, "STATISTICS", "groupby-sum"),
    "*GroupBy.skew": (K, "STATISTICS", "groupby-skew"),
    "*GroupBy.kurt": (K, "STATISTICS", "groupby-kurt"),
    "DataFrameGroupBy.corr": (K, "STATISTICS", "groupby-corr"),
    "DataFrameGroupBy.cov": (K, "STATISTICS", "groupby-cov"),
    "SeriesGroupBy.corr": (K, "STATISTICS", "groupby-series-corr"),
    "SeriesGroupBy.cov": (K, "STATISTICS", "groupby-series-cov"),
    "DataFrameGroupBy.corrwith": (K, "STATISTICS", "groupby-corrwith"),
    "*GroupBy.agg": (K, "STATISTICS", "agg-list"),
    "*GroupBy.aggregate": (K, "STATISTICS", "agg-dict"),
    "*GroupBy.describe": (K, "STATISTICS", "groupby-describe"),
    "GroupBy.min": (K, "REFUSED", "groupby-min"),
    "GroupBy.max": (K, "REFUSED", "groupby-max"),
    "GroupBy.first": (K, "REFUSED", "groupby-first"),
    "GroupBy.last": (K, "REFUSED", "groupby-first"),
    "GroupBy.ohlc": (K, "REFUSED", "groupby-ohlc"),
    "GroupBy.nth": (K, "REFUSED", "groupby-nth"),
    "*GroupBy.idxmin": (K, "REFUSED", "groupby-idxmin"),
    "*GroupBy.idxmax": (K, "REFUSED", "groupby-idxmax"),
    "GroupBy.apply": (K, "REFUSED", "apply"),
    "SeriesGroupBy.apply": (K, "REFUSED", "series-apply"),
    "SeriesGroupBy.unique": (K, "REFUSED", "groupby-unique-numbers"),
    "GroupBy.rank": (K, "RECORD_PATHS", "groupby-rank"),
    "GroupBy.cumsum": (K, "RECORD_PATHS", "groupby-cumsum"),
    "GroupBy.cumcount": (K, "RECORD_PATHS", "groupby-cumcount"),
    "GroupBy.cummax": (K, "RECORD_PATHS", "groupby-cummax"),
    "GroupBy.cummin": (K, "RECORD_PATHS", "groupby-cummin"),
    "GroupBy.cumprod": (K, "RECORD_PATHS", "groupby-cumprod"),
    "GroupBy.pct_change": (K, "RECORD_PATHS", "groupby-pct_change"),
    "GroupBy.ffill": (K, "RECORD_PATHS", "groupby-ffill"),
    "GroupBy.bfill": (K, "RECORD_PATHS", "groupby-bfill"),
    "*GroupBy.transform": (K, "RECORD_PATHS", "groupby-transform"),
    "*GroupBy.filter": (K, "RECORD_PATHS", "groupby-filter"),
    "Rolling.*": (K, "RECORD_PATHS", "rolling"),
    "Window.*": (K, "RECORD_PATHS", "window"),
    "Expanding.*": (K, "RECORD_PATHS", "expanding"),
    "ExponentialMovingWindow.*": (K, "RECORD_PATHS", "ewm"),
    "RollingGroupBy.*": (K, "RECORD_PATHS", "groupby-rolling"),
    "ExpandingGroupBy.*": (K, "RECORD_PATHS", "groupby-expanding"),
    "ExponentialMovingWindowGroupBy.*": (K, "RECORD_PATHS", "groupby-ewm"),
    "DataFrame.join": (K, "RECORD_PATHS", "join"),
    "DataFrame.melt": (K, "RECORD_PATHS", "melt"),
    "DataFrame.pivot": (K, "RECORD_PATHS", "pivot"),
    "DataFrame.stack": (K, "RECORD_PATHS", "stack"),
    "DataFrame.unstack": (K, "RECORD_PATHS", "frame-unstack"),
    "Series.unstack": (K, "RECORD_PATHS", "unstack"),
    "DataFrame.explode": (K, "RECORD_PATHS", "explode"),
    "pandas*.merge": (K, "RECORD_PATHS", "merge"),
    "pandas*.merge_asof": (K, "RECORD_PATHS", "merge_asof"),
    "pandas*.merge_ordered": (K, "RECORD_PATHS", "merge_ordered"),
    "pandas*.concat": (K, "RECORD_PATHS", "concat"),
    "pandas*.get_dummies": (K, "RECORD_PATHS", "get_dummies"),
    "pandas*.cut": (K, "RECORD_PATHS", "cut"),
    "pandas*.qcut": (K, "RECORD_PATHS", "qcut"),
    "pandas*.crosstab": (K, "COUNT_RULES", "crosstab"),
    "pandas*.pivot_table": (K, "COUNT_RULES", "pivot_table-count"),
}
# rows that are whole test functions rather than dict entries
FUNCTION_ROWS = {(G, "STYLER", "styler"): "test_styler_of_records_is_blocked_and_of_tables_shows_the_mark"}


def guarded_names() -> list[str]:
    """Every name the filter guards, as the secure kernel installs them."""
    import matplotlib.axes  # noqa: F401 (the Axes guards are installed once matplotlib is imported)

    from output_filters import guards
    from output_filters.guards import registry
    from output_filters.policy import Policy
    from output_filters.session import FilterSession

    try:
        guards.install(FilterSession.start(Policy(), None, persistent=False))
        return registry.names()
    finally:
        guards.uninstall()


def covering(name: str) -> tuple | None:
    """The most specific pattern's row (patterns without wildcards first, then by length)."""
    matches = [p for p in COVERAGE if fnmatch.fnmatchcase(name, p)]
    if not matches:
        return None
    return COVERAGE[max(matches, key=lambda p: (p.count("*") == 0, len(p)))]


@pytest.mark.parametrize("name", guarded_names())
def test_every_guarded_name_has_a_row_in_the_leak_matrix(name):
    row = covering(name)
    assert row is not None, f"{name} is guarded but no leak-matrix row exercises it: add one and map it here"
    module, table, key = row
    loaded = importlib.import_module(module)
    if row in FUNCTION_ROWS:
        assert hasattr(loaded, FUNCTION_ROWS[row])
    else:
        assert key in getattr(loaded, table), f"{module}.{table} has no row {key!r} (for {name})"


@pytest.mark.parametrize("rule", [r.name for r in RULES])
def test_every_rule_has_a_row(rule):
    from tests.test_rules import RULE_CASES

    assert rule in RULE_CASES

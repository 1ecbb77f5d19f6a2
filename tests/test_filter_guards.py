"""Numbers, conversions, arrays, plots, Styler and tampering, through a real secure kernel."""

# ruff: noqa: F811 (pytest fixtures imported from tests.filter_fixtures)
from __future__ import annotations

import pytest

from tests.filter_fixtures import BLOCKED, session, truth  # noqa: F401
from tests.kernel_client import KernelSession

MARK = "*"
SMALL_LENGTH = "len() of fewer than 10 records"

PLAIN_NUMBERS = {
    "shape": "cell.shape[0]",
    "shape-tuple": "cell.shape",
    "boolean-sum": "((df.institution == inst) & (df.ethnicity == eth)).sum()",
    "nunique": "cell.student_key.nunique()",
    "count": "cell.student_key.count()",
    "values-sum": "((df.institution == inst) & (df.ethnicity == eth)).values.sum()",
}


@pytest.mark.parametrize("code", list(PLAIN_NUMBERS.values()), ids=list(PLAIN_NUMBERS))
def test_small_counts_shown_as_plain_numbers_are_blocked(session, truth, code):
    out = session.run(code)
    assert not out.errors, out.errors
    shown = out.all.replace(f"fewer than {10}", "")
    assert str(truth["n"]) not in shown.split() and f"{truth['n']} students" not in shown, out.all
    assert MARK in shown


SMALL_LENS = {
    "len": "len(cell)",
    "print-len": "print(len(cell))",
    "f-string-len": "n = len(cell)\nprint(f'{n} students')",
    "len-values": "len(cell.values)",
    "kept-in-a-variable": "kept = len(cell)",
}


@pytest.mark.parametrize("code", list(SMALL_LENS.values()), ids=list(SMALL_LENS))
def test_a_small_len_is_refused_where_it_is_computed(session, truth, code):
    out = session.run(code)
    assert out.errors and out.errors[0].startswith("DisclosureError") and SMALL_LENGTH in out.errors[0], out.all
    assert str(truth["n"]) not in out.all.replace("fewer than 10", "").split()
    assert ".shape[0]" in out.errors[0]  # the message says what to do instead


def test_unrelated_outputs_with_the_same_small_number_are_shown(session, truth):
    n = truth["n"]
    session.run("len(cell)")  # refused: nothing is remembered about its value
    out = session.run(
        f"print('there are {n} colleges')\nprint(pd.Series([1, 2, 3, 4, {n}]).tolist())\n"
        "print(pd.crosstab(df.gender, df.grade_level))"
    )
    assert not out.errors, out.errors
    assert f"there are {n} colleges" in out.all and f"{n}]" in out.all
    assert "Blocked" not in out.all


def test_large_counts_are_plain_numbers(session):
    out = session.run("print(len(df), df.shape[0] == len(df), df.student_key.nunique() > 100)")
    n, same, many = out.all.split()
    assert int(n) > 1000 and same == "True" and many == "True"


SUPPRESSED_STATISTICS = {
    "mean": "cell.birth_year.mean()",
    "median": "cell.birth_year.median()",
    "std": "cell.birth_year.std()",
    "quantile": "cell.birth_year.quantile(0.5)",
    "rate": "cell.english_learner.mean()",
    "frame-mean": "cell[['birth_year', 'grade_level']].mean()",
    "frame-count": "cell.count()",
    "array-mean": "cell.birth_year.values.mean()",
}


@pytest.mark.parametrize("code", list(SUPPRESSED_STATISTICS.values()), ids=list(SUPPRESSED_STATISTICS))
def test_statistics_of_a_small_group_are_suppressed(session, code):
    out = session.run(f"r = {code}\nprint(r)\nimport numpy as np\nprint(int(np.sum(pd.notna(r))))")
    assert not out.errors, out.errors
    assert out.all.strip().splitlines()[-1] == "0", out.all
    assert "2004" not in out.all and "2005" not in out.all


def test_a_sum_of_yes_no_values_of_a_small_group_is_a_count(session, demo_var, truth):
    """A count, not a statistic: shown when it is 0 (zeros are shown), the mark when it is small."""
    from warehouse.db import connect
    from warehouse.read import read_table

    frame = read_table(connect(f"sqlite:///{demo_var / 'warehouse.db'}"), "k12_enrollment")
    group = frame[(frame.institution == truth["institution"]) & (frame.ethnicity == truth["ethnicity"])]
    for column in ("english_learner", "disability", "socioecon_disadvantaged"):
        true = int(group[column].sum())
        out = session.run(f"print(cell.{column}.sum())")
        assert not out.errors, out.errors
        assert out.all.strip() == ("0" if true == 0 else MARK), (column, true, out.all)


def test_statistics_of_large_groups_are_shown(session):
    out = session.run("print(round(df.birth_year.mean()), df[['english_learner']].mean().notna().all())")
    year, present = out.all.split()
    assert 2000 < int(year) < 2010 and present == "True"


CONVERSIONS = {
    "tolist": "cell.student_key.tolist()",
    "to_list": "cell.student_key.to_list()",
    "to_dict": "cell.to_dict()",
    "to_records": "cell.to_records()",
    "itertuples": "for row in cell.itertuples(): print(row)",
    "iterrows": "for i, row in cell.iterrows(): print(row.student_key)",
    "items": "for name, column in cell.items(): print(column)",
    "list": "list(cell.student_key)",
    "comprehension": "[k for k in cell.student_key]",
    "iloc-scalar": "cell.student_key.iloc[0]",
    "loc-scalar": "cell.loc[cell.index[0], 'student_key']",
    "at": "cell.at[cell.index[0], 'student_key']",
    "iat": "cell.iat[0, 2]",
    "getitem-scalar": "cell.student_key[cell.index[0]]",
    "array-item": "cell.student_key.values[0]",
    "array-tolist": "cell.student_key.to_numpy().tolist()",
    "array-iter": "list(cell.birth_year.values)",
    "array-max": "df.birth_year.values.max()",
    "json": "import json\njson.dumps(cell.student_key.to_dict())",
}


@pytest.mark.parametrize("code", list(CONVERSIONS.values()), ids=list(CONVERSIONS))
def test_records_do_not_become_plain_values(session, truth, code):
    out = session.run(code)
    assert out.errors and out.errors[0].startswith("DisclosureError"), out.all
    assert truth["key"] not in out.all


ARRAYS = {
    "values": "df.student_key.values",
    "print-values": "print(df.values)",
    "to_numpy": "df.birth_year.to_numpy()",
    "array": "df.student_key.array",
    "arithmetic": "df.birth_year.values * 2",
}


@pytest.mark.parametrize("code", list(ARRAYS.values()), ids=list(ARRAYS))
def test_arrays_of_records_do_not_print(session, truth, code):
    out = session.run(code)
    assert not out.errors, out.errors
    assert "never shown" in out.all and truth["key"] not in out.all


def test_aggregates_stay_usable_as_plain_values(session):
    out = session.run("t = df.groupby('gender').size()\nprint(sum(t.tolist()) == len(df), type(t.to_dict()).__name__)")
    assert out.all.split() == ["True", "dict"]


PLOTS_REFUSED = {
    "line": "df.birth_year.plot()",
    "scatter": "df.plot.scatter(x='birth_year', y='grade_level')",
    "box": "df.boxplot(column='birth_year')",
    "kde": "df.plot(kind='kde', y='birth_year')",
    "matplotlib-scatter": "import matplotlib.pyplot as plt\nplt.scatter(df.birth_year, df.grade_level)",
    "matplotlib-plot": "import matplotlib.pyplot as plt\nplt.plot(df.birth_year)",
    "small-bins": "cell.birth_year.hist(bins=5)",
    "matplotlib-small-bins": "import matplotlib.pyplot as plt\nplt.hist(cell.birth_year, bins=3)",
}


@pytest.mark.parametrize("code", list(PLOTS_REFUSED.values()), ids=list(PLOTS_REFUSED))
def test_plots_that_show_records_or_small_bins_are_refused(session, code):
    out = session.run(code)
    assert out.errors and out.errors[0].startswith("DisclosureError"), out.all


def test_histograms_with_large_bins_and_plots_of_aggregates_are_drawn(session):
    out = session.run(
        "import matplotlib\nmatplotlib.use('Agg')\nax = df.grade_level.plot.hist(bins=4)\n"
        "ax2 = df.groupby('gender').size().plot.bar()\nprint(len(ax.patches) > 0, len(ax2.patches))"
    )
    assert not out.errors, out.errors
    assert out.all.split()[0] == "True"


def test_styler_of_records_is_blocked_and_of_tables_shows_the_mark(session, truth):
    records = session.run("cell.style")
    assert BLOCKED in records.all and truth["key"] not in records.all
    table = session.run("table.style.to_html()")
    assert ">*<" in table.all.replace(" ", "")
    refused = session.run("cell.style.to_latex()")
    assert refused.errors and refused.errors[0].startswith("DisclosureError")


TAMPERING = {
    "repr-replaced": (
        "import pandas as pd\npd.DataFrame.__repr__ = lambda self: 'mine'",
        "DataFrame.__repr__ replaced",
    ),
    "crosstab-replaced": ("import pandas as pd\npd.crosstab = lambda *a, **k: None", "pandas.crosstab replaced"),
    "stdout-swapped": ("import sys, io\nsys.stdout = io.StringIO()", "sys.stdout replaced"),
    "publish_display_data": (
        "from IPython.display import publish_display_data\npublish_display_data({'text/plain': 'x'})",
        "publish_display_data called directly",
    ),
    "os.write": ("import os\nos.write(1, b'rows\\n')", "os.write to the kernel's standard streams"),
    "unload_ext": ("%unload_ext output_filters.kernel.extension", "the output filter extension was unloaded"),
}


@pytest.mark.parametrize(("code", "what"), list(TAMPERING.values()), ids=list(TAMPERING))
def test_tampering_stops_all_further_output(demo_copy, tmp_path, code, what):
    kernel = KernelSession(env={"ENCLAVE_VAR": str(demo_copy)}, cwd=str(tmp_path))
    try:
        assert kernel.run("print('before')").texts == ["before\n"]
        kernel.run(code)
        after = kernel.run("print('after')\n1 + 1")
    finally:
        kernel.close()
    assert "after\n" not in after.texts and "2" not in after.all.split()
    assert f"tampered with ({what})" in after.all
    # The kernel writes no log and no database: the event goes out on IOPub, for the server.
    assert {"event": "tamper", "details": {"what": what}} in kernel.events
    assert not (demo_copy / "logs" / "filter-events.log").exists()


def test_rates_of_small_groups_outside_the_band_are_coded(session, demo_var):
    from warehouse.db import connect
    from warehouse.read import read_table

    frame = read_table(connect(f"sqlite:///{demo_var / 'warehouse.db'}"), "k12_enrollment")
    groups = frame.groupby(["institution", "ethnicity"]).english_learner
    sizes, rates = groups.size(), groups.mean()
    coded = rates[(sizes >= 10) & (sizes < 200) & ((rates < 0.05) | (rates > 0.95))]
    assert len(coded), "the demo should have small groups with rates outside 5-95 %"
    out = session.run(
        "r = df.groupby(['institution', 'ethnicity']).english_learner.mean()\n"
        "print(sorted((i, e, str(r.attrs['enclave']['codes'][(i, e)])) for i, e in r.index if pd.isna(r[(i, e)]) "
        "and (i, e) in r.attrs['enclave']['codes']))"
    )
    shown_codes = {(i, e): code for i, e, code in eval(out.all)}  # noqa: S307 (our own printed list)
    shown = session.run("print(sorted((i, e) for i, e in r.index if pd.notna(r[(i, e)])))")
    visible = set(eval(shown.all))  # noqa: S307
    for (institution, ethnicity), rate in coded.items():
        # coded as a band, or suppressed with its count table: never shown as the rate it is
        assert (institution, ethnicity) not in visible
        if (institution, ethnicity) in shown_codes:
            assert shown_codes[(institution, ethnicity)] == ("<5%" if rate < 0.05 else ">95%")
    assert shown_codes, "some small groups' rates are coded rather than suppressed"
    rendered = session.run("r")
    assert "<5%" in rendered.all or ">95%" in rendered.all


def test_medians_are_fuzzy(session, demo_var):
    from warehouse.db import connect
    from warehouse.read import read_table

    frame = read_table(connect(f"sqlite:///{demo_var / 'warehouse.db'}"), "k12_enrollment")
    expected = (frame.grade_level.quantile(0.45) + frame.grade_level.quantile(0.55)) / 2
    out = session.run("print(repr(float(df.grade_level.median())))")
    assert float(out.all) == pytest.approx(expected)


def test_sums_dominated_by_one_or_two_records_are_suppressed(session):
    out = session.run(
        "from kernels.marks import mark_record_level\n"
        "m = mark_record_level(pd.DataFrame({'g': ['a'] * 10 + ['b'] * 10, "
        "'units': [500.0] + [1.0] * 9 + [3.0] * 10}), 'test')\n"
        "s = m.groupby('g').units.sum()\nprint(pd.isna(s['a']), s['b'])\nprint(s)"
    )
    assert out.all.split()[:2] == ["True", "30.0"], out.all
    assert "dominated" in out.all


WIDGETS = {
    "output-widget-display": "import ipywidgets as w\nout = w.Output()\nwith out:\n    display(cell)\nout",
    "output-widget-print-shape": "import ipywidgets as w\nout = w.Output()\nwith out:\n    print(cell.shape[0])\nout",
    "label-with-shape": "import ipywidgets as w\nw.Label(value=f'{cell.shape[0]} students')",
    "html-widget-table": "import ipywidgets as w\nw.HTML(value=cell.to_html())",
}


@pytest.mark.parametrize("code", list(WIDGETS.values()), ids=list(WIDGETS))
def test_widgets_show_nothing_the_filter_would_not(session, truth, code):
    out = session.run(code)
    assert truth["key"] not in out.all
    assert f'"{truth["n"]} students"' not in out.all and f"{truth['n']}\\n" not in out.all
    assert "Blocked" in out.all or "never shown" in out.all or MARK in out.all, out.all

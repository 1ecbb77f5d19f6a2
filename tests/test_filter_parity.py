"""Every aggregation form goes through the same rules (ACRO's reference cases and more).

A one-item list of values gets the dominance rules a plain value gets; several functions at
once work and are each protected; the same hierarchical crosstab with margins twice gives the
same table; magnitudes with negative contributions are judged on their sizes; and no form
ends in an internal exception — a protected result, or a ``DisclosureError`` with the reason.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.kernel_client import KernelSession

SETUP = """
import numpy as np, pandas as pd
from kernels.marks import mark_record_level
rng = np.random.default_rng(3)
n = 600
r = mark_record_level(pd.DataFrame({
    "school": rng.choice(["S1", "S2", "S3"], n),
    "term": rng.choice(["FA", "SP"], n),
    "grade": rng.choice(["A", "B", "C", "F"], n),
    "passed": rng.random(n) < 0.7,
    "units": rng.integers(1, 5, n).astype(float),
}), "test")
# two records dominate school S3's units in term SP, one of them a large negative correction
big = r.index[(r.school == "S3") & (r.term == "SP")][:2]
r.loc[big[0], "units"] = 5000.0
r.loc[big[1], "units"] = -4900.0
# school S1's units in term SP are corrections of +20 and -20: their signed sum is near 0, and
# by signed values its two largest would "dominate" it; by their sizes nobody does
balanced = r.index[(r.school == "S1") & (r.term == "SP")]
r.loc[balanced, "units"] = np.where(np.arange(len(balanced)) % 2 == 0, 20.0, -20.0)
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    path = tmp_path_factory.mktemp("parity")
    session = KernelSession(
        env={"ENCLAVE_VAR": str(path / "var"), "ENCLAVE_LEDGER_DIR": str(path / "ledger")}, cwd=str(path)
    )
    out = session.run(SETUP)
    assert not out.errors, out.errors
    yield session
    session.close()


def suppressed(kernel, code: str, cell: str) -> bool:
    out = kernel.run(f"t = {code}\nprint(bool(pd.isna({cell})))")
    assert not out.errors, out.errors
    return "".join(out.texts).strip() == "True"


def test_a_one_item_list_of_values_gets_the_dominance_rules(kernel):
    single = "r.pivot_table(index='school', columns='term', values='units', aggfunc='sum')"
    listed = "r.pivot_table(index='school', columns='term', values=['units'], aggfunc='sum')"
    assert suppressed(kernel, single, "t.loc['S3', 'SP']")
    assert suppressed(kernel, listed, "t.loc['S3', ('units', 'SP')]")
    assert not suppressed(kernel, listed, "t.loc['S1', ('units', 'SP')]")


def test_dominance_is_judged_on_the_size_of_contributions(kernel):
    code = "r.groupby(['school', 'term']).units.sum()"
    assert suppressed(kernel, code, "t.loc[('S3', 'SP')]")  # +5000 and -4900: 97 % of the sizes
    assert not suppressed(kernel, code, "t.loc[('S1', 'SP')]")  # many +20 and -20: nobody dominates


def test_several_functions_at_once_are_each_protected(kernel):
    out = kernel.run(
        "t = pd.crosstab(r.school, r.term, values=r.units, aggfunc=['mean', 'std'])\n"
        "print(list(t.columns), bool(pd.isna(t.loc['S3', ('mean', 'SP')])))"
    )
    assert not out.errors, out.errors
    assert "('mean', 'FA')" in out.all and "('std', 'SP')" in out.all
    assert out.all.strip().endswith("True")  # the dominated cell, in the mean too


def test_the_same_hierarchical_crosstab_with_margins_twice(kernel):
    code = "pd.crosstab([r.school, r.term], r.grade, margins=True)"
    first = kernel.run(f"print({code}.to_dict())")
    second = kernel.run(f"print({code}.to_dict())")
    assert not first.errors and not second.errors, first.errors + second.errors
    # The same printed text (a stream may arrive in one message or in several).
    assert "".join(first.texts) == "".join(second.texts) and "".join(first.texts)


FORMS = {
    "groupby-agg-str": "r.groupby('school').units.agg('mean')",
    "groupby-agg-list": "r.groupby('school').units.agg(['mean', 'sum', 'count'])",
    "groupby-agg-dict": "r.groupby('school').agg({'units': ['mean', 'median'], 'passed': 'mean'})",
    "groupby-agg-named": "r.groupby('school').agg(n=('units', 'size'), m=('units', 'mean'), p=('passed', 'mean'))",
    "groupby-agg-numpy": "r.groupby('school').units.agg([np.mean, np.sum])",
    "groupby-as_index-false": "r.groupby('school', as_index=False).units.mean()",
    "groupby-as_index-false-size": "r.groupby('school', as_index=False).size()",
    "crosstab-str": "pd.crosstab(r.school, r.term, values=r.units, aggfunc='sum')",
    "crosstab-list": "pd.crosstab(r.school, r.term, values=r.units, aggfunc=['mean', 'sum'])",
    "crosstab-numpy": "pd.crosstab(r.school, r.term, values=r.units, aggfunc=np.mean)",
    "crosstab-margins-stat": "pd.crosstab(r.school, r.term, values=r.units, aggfunc='mean', margins=True)",
    "crosstab-normalize-columns": "pd.crosstab(r.school, r.term, normalize='columns', margins=True)",
    "crosstab-normalize-all": "pd.crosstab(r.school, r.term, normalize=True)",
    "crosstab-rate": "pd.crosstab(r.school, r.term, values=r.passed, aggfunc='mean', margins=True)",
    "pivot-str": "r.pivot_table(index='school', columns='term', values='units', aggfunc='mean')",
    "pivot-list-values": "r.pivot_table(index='school', columns='term', values=['units', 'passed'], aggfunc='mean')",
    "pivot-list-funcs": "r.pivot_table(index='school', values='units', aggfunc=['mean', 'sum'])",
    "pivot-dict": "r.pivot_table(index='school', columns='term', values='units', aggfunc={'units': ['sum', 'mean']})",
    "pivot-margins": "r.pivot_table(index='school', columns='term', values='units', aggfunc='mean', margins=True)",
    "pivot-count-margins": "r.pivot_table(index='school', columns='term', values='units', aggfunc='count', "
    "margins=True)",
    "pivot-no-columns": "r.pivot_table(index=['school', 'term'], values='units', aggfunc='sum')",
    "pivot-median": "r.pivot_table(index='school', values='units', aggfunc='median')",
    "describe": "r.groupby('school').units.describe()",
}
REFUSED_FORMS = {
    "groupby-agg-lambda": "r.groupby('school').units.agg(lambda s: s.iloc[0])",
    "groupby-agg-max": "r.groupby('school').agg({'units': ['mean', 'max']})",
    "crosstab-list-with-max": "pd.crosstab(r.school, r.term, values=r.units, aggfunc=['mean', 'max'])",
    "pivot-list-with-first": "r.pivot_table(index='school', values='units', aggfunc=['sum', 'first'])",
    "pivot-dict-custom": "r.pivot_table(index='school', values='units', aggfunc={'units': lambda s: s.iloc[0]})",
}


@pytest.mark.parametrize("code", list(FORMS.values()), ids=list(FORMS))
def test_every_form_gives_a_protected_result(kernel, code):
    out = kernel.run(f"t = {code}\nprint(type(t).__name__, t.attrs.get('enclave', {{}}).get('level'))")
    assert not out.errors, out.errors
    assert "".join(out.texts).split() in (["DataFrame", "protected"], ["Series", "protected"])


@pytest.mark.parametrize("code", list(REFUSED_FORMS.values()), ids=list(REFUSED_FORMS))
def test_forms_with_a_single_students_value_are_refused_with_the_reason(kernel, code):
    out = kernel.run(code)
    assert out.errors and out.errors[0].startswith("DisclosureError"), out.all
    assert "custom function" in out.errors[0] or "single students" in out.errors[0]


def test_the_error_carries_its_rule(kernel):
    out = kernel.run(
        "from output_filters import DisclosureError\n"
        "try:\n    r.groupby('school').units.max()\nexcept DisclosureError as e:\n    print(e.rule)"
    )
    assert out.texts == ["extremes\n"]
    assert pd.__version__  # the kernel's pandas is the project's


def test_a_refusal_shows_the_researchers_line_not_the_filters_insides(kernel):
    out = kernel.run("x = 1\nr.groupby('school').units.max()")
    assert out.errors and out.errors[0].startswith("DisclosureError")
    traceback = re.sub(r"\x1b\[[0-9;]*m", "", out.tracebacks[0])  # without the terminal colours
    assert "units.max()" in traceback
    assert "output_filters" not in traceback and "registry.py" not in traceback

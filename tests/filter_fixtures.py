"""Fixtures shared by the leak-matrix tests: the truth, learned outside the filter, and a kernel.

- ``truth`` (module): a small institution × ethnicity cell of the demo's k12_enrollment (its
  codes and count n), and one student key, read straight from the warehouse.
- ``session`` (module): the module's secure kernel with ``df`` (k12_enrollment), ``inst``,
  ``eth``, ``sub`` (that institution's records), ``cell`` (the small group) and ``table``
  (the institution × ethnicity crosstab of ``sub``) defined.
"""

from __future__ import annotations

import pandas as pd
import pytest

from warehouse.db import connect
from warehouse.read import read_table

BLOCKED = "Blocked: record-level data"


@pytest.fixture(scope="module")
def truth(demo_var):
    """A small institution × ethnicity cell of k12_enrollment and a record's student key."""
    engine = connect(f"sqlite:///{demo_var / 'warehouse.db'}")
    frame = read_table(engine, "k12_enrollment")
    counts = pd.crosstab(frame.institution, frame.ethnicity)
    stacked = counts.stack()
    small = stacked[(stacked > 0) & (stacked < 10)]
    assert len(small), "the demo consortium must have small cells"
    (institution, ethnicity), n = small.index[0], int(small.iloc[0])
    group = frame[(frame.institution == institution) & (frame.ethnicity == ethnicity)]
    return {
        "institution": institution,
        "ethnicity": ethnicity,
        "n": n,
        "rate": float(group.graduated.astype(float).mean()) if group.graduated.notna().any() else None,
        "key": frame.student_key.iloc[0],
    }


@pytest.fixture(scope="module")
def session(kernel, truth):
    setup = kernel.run(
        "import pandas as pd\nfrom IPython.display import display\nfrom kernels import data\n"
        "df = data.load('k12_enrollment')\n"
        f"inst, eth = {truth['institution']!r}, {truth['ethnicity']!r}\n"
        "sub = df[df.institution == inst]\n"
        "cell = df[(df.institution == inst) & (df.ethnicity == eth)]\n"
        "table = pd.crosstab(sub.institution, sub.ethnicity)\n"
    )
    assert not setup.errors, setup.errors
    return kernel

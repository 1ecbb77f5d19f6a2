"""Disclosure control for everything a research kernel shows (principle 6).

Public API: ``Policy`` and ``load_policy`` (the consortium's rules), ``protect_counts``
(suppress a table of counts), ``DisclosureError``. The IPython extension the secure
kernel loads is ``output_filters.kernel_extension``.
"""

from output_filters.exceptions import DisclosureError, OutputFilterError, PolicyError
from output_filters.policy import AccountRules, Policy, load_policy
from output_filters.suppress import Protection, protect_counts

__all__ = [
    "AccountRules",
    "DisclosureError",
    "OutputFilterError",
    "Policy",
    "PolicyError",
    "Protection",
    "load_policy",
    "protect_counts",
]

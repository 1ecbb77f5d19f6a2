"""Disclosure control for everything a research kernel shows (principle 6).

Public API: ``Policy`` and ``load_policy`` (the consortium's rules); ``protect(counts,
policy=None)`` publishes an inner table of counts (a DataFrame for 2-D, a Series with a
MultiIndex for 3-D and more) with ``All`` margins, suppressed cells as ``pd.NA``, and the
primary and secondary masks; ``attack(published)`` gives each suppressed cell's (low, high)
interval for an attacker who knows every published cell; ``protect_counts`` does what the
kernel does to a table (keeping its shape); ``DisclosureError``. The IPython extension the
secure kernel loads is ``output_filters.kernel.extension``.
"""

from output_filters.engine.secondary import Suppression, attack, protect, protect_tables
from output_filters.engine.suppress import Protection, protect_counts
from output_filters.exceptions import DisclosureError, OutputFilterError, PolicyError
from output_filters.policy import AccountRules, Policy, load_policy

__all__ = [
    "AccountRules",
    "DisclosureError",
    "OutputFilterError",
    "Policy",
    "PolicyError",
    "Protection",
    "Suppression",
    "attack",
    "load_policy",
    "protect",
    "protect_counts",
    "protect_tables",
]

"""Disclosure control for everything a research kernel shows (principle 6).

Public API: ``Policy`` and ``load_policy`` (the consortium's rules); ``protect(counts,
policy=None)`` publishes an inner table of counts (a DataFrame for 2-D, a Series with a
MultiIndex for 3-D and more) with ``All`` margins, suppressed cells as ``pd.NA``, and the
primary and secondary masks; ``attack(published)`` gives each suppressed cell's (low, high)
interval for an attacker who knows every published cell; ``protect_counts`` does what the
kernel does to a table (keeping its shape); ``DisclosureError``. The IPython extension the
secure kernel loads is ``output_filters.kernel.extension``.
"""

from importlib import import_module

# Imported on first use, so that the parts that need only the policy or the seal (the hub, the
# user server's guard) do not load pandas and the suppression engine at every start.
_HOMES = {
    "Suppression": "output_filters.engine.secondary",
    "attack": "output_filters.engine.secondary",
    "protect": "output_filters.engine.secondary",
    "protect_tables": "output_filters.engine.secondary",
    "Protection": "output_filters.engine.suppress",
    "protect_counts": "output_filters.engine.suppress",
    "DisclosureError": "output_filters.exceptions",
    "OutputFilterError": "output_filters.exceptions",
    "PolicyError": "output_filters.exceptions",
    "AccountRules": "output_filters.policy",
    "Policy": "output_filters.policy",
    "load_policy": "output_filters.policy",
}


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'output_filters' has no attribute {name!r}")
    value = getattr(import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


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

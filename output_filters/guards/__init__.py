"""The guards: what the filter puts into pandas and matplotlib, and the register of every replacement.

``install(session)`` puts every guard in place (idempotent); ``output_filters.guards.registry``
lists them and can put pandas back (tests).
"""

from __future__ import annotations

from output_filters.session import FilterSession


def install(session: FilterSession) -> None:
    """Install every guard, each with the session's policy and ledger."""
    from output_filters.guards import conversions, figures, groupby, propagation, reductions, rendering, tables

    groupby.install(session)
    tables.install(session)
    propagation.install(session)
    reductions.install(session)
    conversions.install(session)
    figures.install(session)
    rendering.install(session)


def uninstall() -> None:
    """Restore pandas, matplotlib and IPython as they were (for tests)."""
    from output_filters.guards import registry

    registry.restore()

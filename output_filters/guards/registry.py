"""The one register of what the output filter replaced in pandas, matplotlib and IPython.

Every guard installs itself through ``replace``, so the tamper check can ask which of them
is no longer in place (``changed``), and tests can put everything back (``restore``).
"""

from __future__ import annotations

from typing import Any

_installed: dict[tuple[Any, str], tuple[Any, Any]] = {}  # (owner, name) -> (original, replacement)


def replace(owner: Any, name: str, replacement: Any) -> Any:
    """Set ``owner.name`` to ``replacement``; return what was there."""
    original = owner.__dict__[name] if isinstance(owner, type) and name in owner.__dict__ else getattr(owner, name)
    setattr(owner, name, replacement)
    _installed[(owner, name)] = (original, replacement)
    return original


def is_installed(owner: Any, name: str) -> bool:
    return (owner, name) in _installed


def changed() -> list[str]:
    """``owner.name`` of every replacement that is no longer in place."""
    moved = []
    for (owner, name), (_original, replacement) in _installed.items():
        current = owner.__dict__.get(name) if isinstance(owner, type) else getattr(owner, name, None)
        if current is not replacement:
            moved.append(f"{getattr(owner, '__name__', owner)}.{name}")
    return moved


def restore(owners: set[Any] | None = None) -> None:
    """Put back the originals (of ``owners`` only, if given)."""
    for (owner, name), (original, _replacement) in list(_installed.items()):
        if owners is None or owner in owners:
            setattr(owner, name, original)
            del _installed[(owner, name)]

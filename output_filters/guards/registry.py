"""The one register of what the output filter replaced, and the one way to replace it.

``guard(owner, name, handler, when=...)`` replaces ``owner.name`` (a function, method or
property) by a wrapper that calls ``handler(original, *args, **kwargs)`` when
``when(*args, **kwargs)`` holds and the original otherwise. With ``outermost=True`` only the
outermost guarded call is handled: pandas calls itself internally (``crosstab`` calls
``pivot_table`` calls ``groupby().size()``), and only the researcher's call is judged;
``released()`` lets a handler call another guarded entry point as the researcher would.

``original(owner, name)`` is what was there before; the tamper watch asks ``changed()``; tests
put everything back with ``restore()``; ``names()`` lists every guarded entry point (the leak
matrix has a row for each).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any

_installed: dict[tuple[Any, str], tuple[Any, Any]] = {}  # (owner, name) -> (original, replacement)
_state = threading.local()


def _current(owner: Any, name: str) -> Any:
    """``owner.name`` as found: a property object for a property, else what ``getattr`` gives."""
    if isinstance(owner, type):
        for klass in owner.__mro__:
            if name in klass.__dict__:
                value = klass.__dict__[name]
                return value if isinstance(value, property) else getattr(owner, name)
    return getattr(owner, name)


def replace(owner: Any, name: str, replacement: Any) -> Any:
    """Set ``owner.name`` to ``replacement``; return what was there."""
    original = _current(owner, name)
    setattr(owner, name, replacement)
    _installed[(owner, name)] = (original, replacement)
    return original


def original(owner: Any, name: str) -> Any:
    """What ``owner.name`` was before the filter replaced it (the function itself if not replaced)."""
    entry = _installed.get((owner, name))
    found = entry[0] if entry else _current(owner, name)
    return found.fget if isinstance(found, property) else found


def is_installed(owner: Any, name: str) -> bool:
    return (owner, name) in _installed


def guard(
    owner: Any,
    name: str,
    handler: Callable[..., Any],
    *,
    when: Callable[..., bool] | None = None,
    outermost: bool = False,
) -> None:
    """Replace ``owner.name`` by a guarded wrapper (idempotent); see the module docstring.

    For a property, ``handler(fget, self)`` computes the value.
    """
    if (owner, name) in _installed:
        return
    found = _current(owner, name)
    target = found.fget if isinstance(found, property) else found

    @wraps(target)
    def wrapper(*args, **kwargs):
        if outermost and getattr(_state, "busy", 0):
            return target(*args, **kwargs)
        if when is not None and not when(*args, **kwargs):
            return target(*args, **kwargs)
        if not outermost:
            return handler(target, *args, **kwargs)
        _state.busy = 1
        try:
            return handler(target, *args, **kwargs)
        finally:
            _state.busy = 0

    replace(owner, name, property(wrapper, doc=found.__doc__) if isinstance(found, property) else wrapper)


@contextmanager
def released() -> Iterator[None]:
    """Inside a handler: let the next guarded call be judged as an outermost one."""
    busy = getattr(_state, "busy", 0)
    _state.busy = 0
    try:
        yield
    finally:
        _state.busy = busy


def names() -> list[str]:
    """``Owner.name`` of every replacement, e.g. ``DataFrameGroupBy.mean``."""
    return sorted(f"{getattr(owner, '__name__', owner)}.{name}" for owner, name in _installed)


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
    for (owner, name), (found, _replacement) in list(_installed.items()):
        if owners is None or owner in owners:
            setattr(owner, name, found)
            del _installed[(owner, name)]

"""Who is calling: the researcher's code, or a library?

Some guards apply only to calls made directly from user code (notebook cells, a user's own
modules): pandas calls ``len()``, ``tolist()`` and reductions on its own data all the time,
and those internal calls must behave as pandas expects. Everything installed in the Python
environment, the standard library, and Enclave's own packages count as library code.
"""

from __future__ import annotations

import sys
import sysconfig
from pathlib import Path

_PACKAGES = ("output_filters", "kernels", "warehouse", "templates", "hub")
_REPO = Path(__file__).resolve().parents[2]
LIBRARY_PREFIXES = tuple(
    dict.fromkeys(
        [
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            sysconfig.get_paths()["stdlib"],
            sysconfig.get_paths()["purelib"],
            sysconfig.get_paths()["platlib"],
            *(str(_REPO / package) for package in _PACKAGES),
            "<frozen ",
        ]
    )
)


def from_user_code(depth: int = 2) -> bool:
    """True if the function ``depth`` frames up was called from user code.

    ``depth=2`` means: the caller of the function that calls ``from_user_code``.
    """
    try:
        filename = sys._getframe(depth).f_code.co_filename
    except ValueError:  # not that many frames: called from the interpreter's top
        return True
    return not filename.startswith(LIBRARY_PREFIXES)

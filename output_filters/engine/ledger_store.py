"""Where a user's ledger lives between kernels: one pair of files per record set, locked.

The ledger (``output_filters.engine.ledger``) must outlive the kernel: a table shown
yesterday must be shown the same way today, and a report run beside a notebook is protected
together with it. Each record set's state is a JSON file (variables, categories, tables, the
decided cells) that names its arrays (record ids, per-variable codes) by their content: each
array is a compressed ``.npy.gz`` file named by its digest, written once and never changed,
so showing another table over the same records writes the JSON and at most the arrays that
are new (compressing every array on every table cost 0.3 s per table at 150,000 records).
Arrays are written before the JSON that names them, each file atomically (a temporary file
renamed into place), under an exclusive lock, so two kernels of one user never lose each
other's tables; arrays no JSON names any more are removed after the JSON is replaced. The
first format (one ``.npz`` beside the JSON) is still read. The directory is
``ENCLAVE_LEDGER_DIR``, or ``.enclave/ledger`` in the user's home.

The files belong to the user (their kernels write them), so a user can delete them; that is
the determined user of the README's limits, not an accident.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT = 2  # 1: the arrays in one .npz beside the JSON
COMPRESSION = 3  # gzip level: most of level 9's size at a fraction of its time


def ledger_dir() -> Path:
    configured = os.environ.get("ENCLAVE_LEDGER_DIR")
    return Path(configured) if configured else Path.home() / ".enclave" / "ledger"


def encode(value: Any) -> list:
    """A category as JSON: [tag, value]; decoded by ``decode`` to an equal value."""
    if isinstance(value, bool | np.bool_):
        return ["b", bool(value)]
    if isinstance(value, int | np.integer):
        return ["i", int(value)]
    if isinstance(value, float | np.floating):
        return ["n"] if math.isnan(value) else ["f", float(value)]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, pd.Timestamp | datetime):
        return ["t", pd.Timestamp(value).isoformat()]
    if value is None or value is pd.NA or value is pd.NaT:
        return ["n"]
    return ["r", repr(value)]


def decode(item: list) -> Any:
    tag = item[0]
    if tag == "n":
        return np.nan
    if tag == "t":
        return pd.Timestamp(item[1])
    return item[1]


class LedgerStore:
    """The files of one user's ledger."""

    def __init__(self, directory: Path | None = None):
        self.directory = Path(directory) if directory is not None else ledger_dir()

    def _stem(self, universe: str) -> Path:
        return self.directory / hashlib.sha256(universe.encode()).hexdigest()[:24]

    @contextmanager
    def locked(self, universe: str) -> Iterator[None]:
        """Hold the record set's lock (exclusive) for a read-decide-write."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle = open(self._stem(universe).with_suffix(".lock"), "a+")  # noqa: SIM115
        except OSError:  # no writable home: the ledger lives in this kernel only
            yield
            return
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def stamp(self, universe: str) -> tuple[int, int] | None:
        """(mtime, size) of the saved state, to tell whether another kernel changed it."""
        try:
            stat = self._stem(universe).with_suffix(".json").stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def load(self, universe: str) -> tuple[dict, dict[str, np.ndarray]] | None:
        stem = self._stem(universe)
        try:
            document = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
            if document.get("format") == 1:
                with np.load(stem.with_suffix(".npz"), allow_pickle=False) as arrays:
                    data = {name: arrays[name] for name in arrays.files}
            else:
                data = {name: self._read_array(stem, digest) for name, digest in document.get("arrays", {}).items()}
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if document.get("format") not in (1, FORMAT) or document.get("universe") != universe:
            return None
        document.pop("arrays", None)
        return document, data

    def save(self, universe: str, document: dict, arrays: dict[str, np.ndarray]) -> bool:
        """Write the state atomically; False if the directory cannot be written."""
        stem = self._stem(universe)
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            names = {name: self._write_array(stem, array) for name, array in arrays.items()}
            document = {"format": FORMAT, "universe": universe, "arrays": names, **document}
            self._replace(stem.with_suffix(".json"), json.dumps(document).encode())
            stem.with_suffix(".npz").unlink(missing_ok=True)  # the first format's arrays
            for path in self._arrays(stem):
                if path.name.split(".")[1] not in names.values():
                    path.unlink(missing_ok=True)
        except OSError:
            return False
        return True

    def _write_array(self, stem: Path, array: np.ndarray) -> str:
        """The array's digest, its file written unless one with that content is there already."""
        array = np.ascontiguousarray(array)
        raw = io.BytesIO()
        np.save(raw, array, allow_pickle=False)
        digest = hashlib.sha256(raw.getbuffer()).hexdigest()[:24]
        path = self._array_path(stem, digest)
        if not path.exists():
            self._replace(path, gzip.compress(raw.getbuffer(), COMPRESSION, mtime=0))
        return digest

    def _read_array(self, stem: Path, digest: str) -> np.ndarray:
        raw = gzip.decompress(self._array_path(stem, digest).read_bytes())
        return np.load(io.BytesIO(raw), allow_pickle=False)

    def _replace(self, path: Path, content: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _array_path(stem: Path, digest: str) -> Path:
        return stem.with_name(f"{stem.name}.{digest}.npy.gz")

    @staticmethod
    def _arrays(stem: Path) -> list[Path]:
        return sorted(stem.parent.glob(f"{stem.name}.*.npy.gz"))

    def universes(self) -> list[tuple[float, Path]]:
        """Saved record sets, oldest first, as (mtime, json path)."""
        if not self.directory.is_dir():
            return []
        found = [(p.stat().st_mtime, p) for p in self.directory.glob("*.json")]
        return sorted(found)

    def forget(self, path: Path) -> None:
        for array in self._arrays(path.with_suffix("")):
            array.unlink(missing_ok=True)
        for suffix in (".json", ".npz", ".lock"):
            path.with_suffix(suffix).unlink(missing_ok=True)

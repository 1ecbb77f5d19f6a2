"""The contents manager of every user server: no file bytes out, every notebook write checked.

JupyterLab reads and writes the user's home through the contents API. Stock, that API follows
symbolic links out of the home and hands out any file's bytes (base64), so a kernel could
link the warehouse or another user's extract into the home, or write records to a file, and
the browser would download it. Here:

- a path whose real path leaves the home is not served, listed, written, renamed or copied
  (404); listings skip such links;
- file contents are served only as text, and only up to ``max_text_bytes``; notebooks are
  served as notebooks;
- uploads and writes are notebooks or text (a base64 upload is accepted only when it decodes
  to text within the same limit);
- every notebook written through the server is re-checked by the output guard
  (``output_filters.server.guard.pre_save_hook``): a save, a PUT as a file, a rename of
  another file to ``.ipynb``, a copy. An output must have passed the guard in this server or
  already be in the notebook on disk (for a copy: in the notebook copied).
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import errno
import json
import os

import nbformat
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import Integer

from output_filters.server import guard

# During a copy: the API path whose on-disk outputs the new notebook may keep.
_COPIED_FROM: contextvars.ContextVar[str | None] = contextvars.ContextVar("copied_from", default=None)


class LeavesHome(web.HTTPError, PermissionError):
    """A path whose real path is outside the home: 404 to the client.

    Also a PermissionError (EACCES), so that a directory listing skips such a link silently
    instead of failing, as it does for files it may not read.
    """

    def __init__(self, path: str):
        web.HTTPError.__init__(self, 404, f"No such file or directory: {path}")
        self.errno = errno.EACCES
        self.strerror = "outside the home"


class EnclaveContentsManager(AsyncLargeFileManager):
    """The home's files for the browser: notebooks and small text files only."""

    max_text_bytes = Integer(
        1_000_000,
        config=True,
        help="Largest text file (bytes) the browser may open, upload or save; other files are not served.",
    )

    # ---- paths ---------------------------------------------------------------------------

    def _get_os_path(self, path: str) -> str:
        os_path = super()._get_os_path(path)
        root = os.path.realpath(self.root_dir)
        real = os.path.realpath(os_path)
        if real != root and not real.startswith(root + os.sep):
            self.log.warning("Refused %r: its real path leaves the home", path)
            raise LeavesHome(path)
        return os_path

    # ---- reading -------------------------------------------------------------------------

    async def get(self, path, content=True, type=None, format=None, require_hash=False):
        if content and format == "base64":
            raise web.HTTPError(403, "File contents are served as text only.")
        os_path = self._get_os_path(path.strip("/"))
        is_file = os.path.isfile(os_path)
        notebook = type == "notebook" or (type is None and path.endswith(".ipynb"))
        if content and is_file and not notebook and os.path.getsize(os_path) > self.max_text_bytes:
            raise web.HTTPError(403, f"{path} is larger than {self.max_text_bytes:,} bytes; it is not served.")
        model = await super().get(path, content=content, type=type, format=format, require_hash=require_hash)
        if content and model.get("type") == "file" and model.get("format") != "text":
            raise web.HTTPError(403, f"{path} is not a text file; only notebooks and text files are served.")
        return model

    # ---- writing -------------------------------------------------------------------------

    def run_pre_save_hooks(self, model, path, **kwargs):
        """The output guard's re-check of a notebook, then any configured hooks."""
        if model.get("type") == "notebook":
            guard.pre_save_hook(model, _COPIED_FROM.get() or path, self)
        super().run_pre_save_hooks(model=model, path=path, **kwargs)

    async def save(self, model, path=""):
        if model.get("chunk") is not None:
            raise web.HTTPError(403, "Large uploads are refused; only notebooks and small text files can be uploaded.")
        model = self._as_notebook_or_text(dict(model), path)
        return await super().save(model, path)

    def _as_notebook_or_text(self, model: dict, path: str) -> dict:
        if model.get("type") != "file" or "content" not in model:
            return model
        content = model["content"]
        if model.get("format") == "base64":
            try:
                content = base64.b64decode(content, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise web.HTTPError(403, f"{path}: only notebooks and text files can be uploaded.") from None
        if not isinstance(content, str) or "\x00" in content:
            raise web.HTTPError(403, f"{path}: only notebooks and text files can be uploaded.")
        if len(content.encode("utf-8")) > self.max_text_bytes:
            raise web.HTTPError(403, f"{path} is larger than {self.max_text_bytes:,} bytes; it cannot be saved here.")
        if path.endswith(".ipynb"):
            return {"type": "notebook", "format": "json", "content": _notebook(content, path)}
        return {**model, "content": content, "format": "text"}

    async def rename_file(self, old_path, new_path):
        old, new = old_path.strip("/"), new_path.strip("/")
        old_os = self._get_os_path(old)
        self._get_os_path(new)
        if new.endswith(".ipynb") and not old.endswith(".ipynb") and os.path.isfile(old_os):
            # A file becoming a notebook is checked as a new notebook: none of its outputs
            # passed the guard, so none of them is kept.
            if await self.file_exists(new):
                raise web.HTTPError(409, f"File already exists: {new}")
            with open(old_os, encoding="utf-8", errors="replace") as handle:
                text = handle.read(self.max_text_bytes + 1)
            if len(text) > self.max_text_bytes:
                raise web.HTTPError(403, f"{old} is too large to become a notebook here.")
            await super().save({"type": "notebook", "format": "json", "content": _notebook(text, old)}, new)
            await self.delete_file(old)
            return
        await super().rename_file(old_path, new_path)

    async def copy(self, from_path, to_path=None):
        token = _COPIED_FROM.set(from_path.strip("/") if from_path.endswith(".ipynb") else None)
        try:
            return await super().copy(from_path, to_path)
        finally:
            _COPIED_FROM.reset(token)


def _notebook(text: str, path: str) -> dict:
    """The notebook in ``text``, as a dict; 400 naming the file if it is not one."""
    try:
        node = nbformat.reads(text, as_version=4)
        nbformat.validate(node)
    except (json.JSONDecodeError, nbformat.ValidationError, ValueError, KeyError, TypeError) as error:
        message = f"{path} is not a notebook ({type(error).__name__}); only a notebook can be named .ipynb."
        raise web.HTTPError(400, message) from None
    return dict(node)

"""``python -m hub.cli``: the ``enclave`` command."""

from hub.cli import enclave

enclave()

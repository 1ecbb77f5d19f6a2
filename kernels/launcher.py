"""Entry point of the ``enclave`` kernelspec: an IPython kernel with the output filter.

The filter is loaded by the application itself, before extensions named in any
configuration and before startup files or user code, so no profile setting can leave it out.
"""

from __future__ import annotations

from ipykernel.kernelapp import IPKernelApp
from traitlets import default

FILTER = "output_filters.kernel.extension"


class EnclaveKernelApp(IPKernelApp):
    name = "enclave-kernel"

    @default("capture_fd_output")
    def _no_fd_capture(self) -> bool:
        # Writes to the process's file descriptors 1 and 2 stay in the server's log; only
        # what passes the filter's gate reaches a client.
        return False

    def init_extensions(self) -> None:
        self.shell.extension_manager.load_extension(FILTER)
        super().init_extensions()


def main() -> None:
    EnclaveKernelApp.launch_instance()


if __name__ == "__main__":
    main()

"""Entry point of the ``enclave`` kernelspec: an IPython kernel with the output filter.

The filter is loaded by the application itself, before extensions named in any
configuration and before startup files or user code, so no profile setting can leave it out.
"""

from __future__ import annotations

from ipykernel.kernelapp import IPKernelApp

FILTER = "output_filters.kernel_extension"


class EnclaveKernelApp(IPKernelApp):
    name = "enclave-kernel"

    def init_extensions(self) -> None:
        self.shell.extension_manager.load_extension(FILTER)
        super().init_extensions()


def main() -> None:
    EnclaveKernelApp.launch_instance()


if __name__ == "__main__":
    main()

"""The user server's kernelspec manager: a refused kernel name is a 404, not a server error.

Starting a kernel by name goes through ``get_kernel_spec``; the sessions API wraps every error
but one in a 500, so ``hub.user_server.lockdown`` checks the name of a new session first.
"""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpec
from tornado import web

from kernels.spec_manager import EnclaveKernelSpecManager


class RefusedKernel(web.HTTPError):
    def __init__(self, name: str, allowed: set[str]):
        super().__init__(404, f"no kernel named {name!r} here; the kernels are: {', '.join(sorted(allowed))}")


class ServerKernelSpecManager(EnclaveKernelSpecManager):
    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if self.allowed_kernelspecs and kernel_name not in self.allowed_kernelspecs:
            raise RefusedKernel(kernel_name, set(self.allowed_kernelspecs))
        return super().get_kernel_spec(kernel_name)

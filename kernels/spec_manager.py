"""A kernelspec manager that refuses every kernel but the allowed ones.

jupyter_client's ``KernelSpecManager.allowed_kernelspecs`` only hides other kernels from the
list; a client can still start ``python3`` by name, without the output filter. This manager
makes the allow-list binding for starting kernels too.
"""

from __future__ import annotations

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel


class EnclaveKernelSpecManager(KernelSpecManager):
    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        if self.allowed_kernelspecs and kernel_name not in self.allowed_kernelspecs:
            raise NoSuchKernel(kernel_name)
        return super().get_kernel_spec(kernel_name)

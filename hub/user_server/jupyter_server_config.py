# Configuration of every user's JupyterLab server, found through JUPYTER_CONFIG_PATH
# (set by hub.spawner.EnclaveSpawner). It closes the casual ways around the output filter.
import os
import sys

c = get_config()  # noqa: F821

# Only the secure kernel, from the project's own environment; other names cannot be started.
c.ServerApp.kernel_spec_manager_class = "kernels.spec_manager.EnclaveKernelSpecManager"
c.KernelSpecManager.kernel_dirs = [os.path.join(sys.prefix, "share", "jupyter", "kernels")]
c.KernelSpecManager.ensure_native_kernel = False
c.KernelSpecManager.allowed_kernelspecs = {"enclave"}
c.MappingKernelManager.default_kernel_name = "enclave"

# The guard outside the kernel (output_filters.server.guard): kernels get a sealing key; every
# kernel->browser message and every saved notebook is re-checked.
c.MappingKernelManager.kernel_manager_class = "output_filters.server.guard.SealedKernelManager"
c.ServerApp.kernel_websocket_connection_class = "output_filters.server.guard.GuardedWebsocketConnection"
c.FileContentsManager.pre_save_hook = "output_filters.server.guard.pre_save_hook"

# No shell, and no raw file downloads through /files/.
c.ServerApp.terminals_enabled = False
c.ContentsManager.files_handler_class = None
c.ContentsManager.allow_hidden = False

# Nothing in the research environment calls out to the internet.
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None

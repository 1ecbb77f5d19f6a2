# Configuration of every user's JupyterLab server. The spawner (hub.spawner.EnclaveSpawner)
# points JUPYTER_CONFIG_DIR here, a directory the user's account cannot write, so nothing in
# the user's home configures the server. It closes the casual ways around the output filter.
import os
import sys

c = get_config()  # noqa: F821

# Only the secure kernel, from the project's own environment; other names cannot be started
# (a refused name is a 404).
c.ServerApp.kernel_spec_manager_class = "hub.user_server.kernelspecs.ServerKernelSpecManager"
c.KernelSpecManager.kernel_dirs = [os.path.join(sys.prefix, "share", "jupyter", "kernels")]
c.KernelSpecManager.ensure_native_kernel = False
c.KernelSpecManager.allowed_kernelspecs = {"enclave"}
c.MappingKernelManager.default_kernel_name = "enclave"
# Kernels forked from the server's kernel zygote (pandas and the filter already imported) when
# the hub's fork server started this server; otherwise new interpreters.
c.KernelProvisionerFactory.default_provisioner_name = "enclave-forked-provisioner"

# The guard outside the kernel (output_filters.server.guard): kernels get a sealing key; every
# kernel->browser message is re-checked, and the contents manager re-checks every notebook
# written through the server (save, upload, rename, copy).
c.MappingKernelManager.kernel_manager_class = "output_filters.server.guard.SealedKernelManager"
# The kernels' filter events (loads, suppressions, blocks, tampering) reach the audit log through
# this server, posted to the hub under the server's own token (output_filters.server.events).
c.ServerApp.kernel_manager_class = "output_filters.server.events.AuditingKernelManager"
c.ServerApp.kernel_websocket_connection_class = "output_filters.server.guard.GuardedWebsocketConnection"
c.ServerApp.contents_manager_class = "hub.user_server.contents.EnclaveContentsManager"

# No shell, no language server, no raw file downloads (/files/, /nbconvert/, /view/), no
# extension manager that could pip install; only notebooks and small text files are served.
c.ServerApp.terminals_enabled = False
c.ServerApp.jpserver_extensions = {
    "jupyter_server_terminals": False,
    "jupyter_lsp": False,
    "hub.user_server.lockdown": True,
}
c.ContentsManager.files_handler_class = None
c.ContentsManager.allow_hidden = False
c.LabApp.extension_manager = "readonly"
# The data directory is read-only: notebook trust lives in memory, under a key of this server
# (so no notebook is trusted across restarts, and untrusted outputs run no scripts).
c.NotebookNotary.db_file = ":memory:"
c.NotebookNotary.secret = os.urandom(32)

# Nothing in the research environment calls out to the internet.
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.news_url = None

# Behind TLS: the server's cookies are Secure (its security headers: hub.user_server.lockdown).
if os.environ.get("ENCLAVE_PUBLIC_URL", "").startswith("https://"):
    c.HubOAuth.cookie_options = {"secure": True, "samesite": "Lax"}

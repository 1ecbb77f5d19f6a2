"""Not loaded in user servers and kernels: on this directory (first on their PYTHONPATH) it
refuses to import.

The secure kernel offers no debugger (its kernelspec says ``"debugger": false``), yet ipykernel
imports debugpy and pydevd at every kernel start to find out whether it could: a fifth of a
second of CPU per kernel for nothing. ipykernel goes on without it.
"""

raise ImportError("debugpy is left out of user servers and kernels (hub/user_server/startup)")

"""The guard outside the kernel, in the user's Jupyter server."""

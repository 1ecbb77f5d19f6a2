# The user image for Zero to JupyterHub (KubeSpawner): the same secure kernel, output filter,
# server-side guard and lockdown as on one machine. Build from the repository root:
#   docker build -f deploy/user.Dockerfile -t REGISTRY/enclave-user:TAG .
#
# Everything that enforces a rule is owned by root and read-only for the user (uid 1000):
# the project's code, the kernelspec, and the server's configuration directories, which the
# values file points JUPYTER_CONFIG_DIR, JUPYTER_DATA_DIR and the JupyterLab settings at.
FROM python:3.11-slim-bookworm
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin researcher
COPY requirements.txt /opt/enclave/requirements.txt
RUN pip install --no-cache-dir -r /opt/enclave/requirements.txt
COPY . /opt/enclave
RUN pip install --no-cache-dir --no-deps -e /opt/enclave \
    && jupyter kernelspec install --sys-prefix --replace /opt/enclave/kernels/enclave \
    && rm -rf /usr/local/share/jupyter/kernels/python3 \
    && chown -R root:root /opt/enclave && chmod -R go-w /opt/enclave /usr/local
ENV JUPYTER_CONFIG_DIR=/opt/enclave/hub/user_server/config \
    JUPYTER_DATA_DIR=/opt/enclave/hub/user_server/data \
    JUPYTERLAB_SETTINGS_DIR=/opt/enclave/hub/user_server/lab/settings \
    JUPYTERLAB_WORKSPACES_DIR=/opt/enclave/hub/user_server/lab/workspaces \
    ENCLAVE_POLICY=/opt/enclave/policy.toml \
    ENCLAVE_VAR=/srv/enclave
USER 1000
WORKDIR /home/researcher
CMD ["jupyterhub-singleuser"]

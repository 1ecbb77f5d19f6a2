# The hub image for Zero to JupyterHub: the chart's hub with Enclave's authenticator, roles,
# pages and policy. Build from the repository root:
#   docker build -f deploy/hub.Dockerfile -t REGISTRY/enclave-hub:TAG .
FROM quay.io/jupyterhub/k8s-hub:4.2.0
USER root
COPY requirements.txt /opt/enclave/requirements.txt
RUN pip install --no-cache-dir -r /opt/enclave/requirements.txt
COPY . /opt/enclave
RUN pip install --no-cache-dir --no-deps -e /opt/enclave \
    && chmod -R go-w /opt/enclave
ENV ENCLAVE_POLICY=/opt/enclave/policy.toml
USER jovyan

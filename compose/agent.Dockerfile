# The poactl agent image that compose/docker-compose.yml runs. From the repo root:
#   docker build -f compose/agent.Dockerfile -t localhost/poactl/agent:0.1.0 .
# PYTHON_IMAGE may name a bank registry's copy of the Python base image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY orchestrator orchestrator
COPY genesis genesis
RUN python -m venv /opt/poactl/venv \
 && /opt/poactl/venv/bin/pip install --no-cache-dir --disable-pip-version-check .

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/poactl/venv /opt/poactl/venv
# HAProxy for `poactl balancer` (the same image runs the agent, the monitor, the balancer).
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 poactl \
 && useradd --system --uid 10001 --gid poactl --home-dir /var/lib/poactl \
      --no-create-home --shell /usr/sbin/nologin poactl
ENV PATH=/opt/poactl/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001:10001
ENTRYPOINT ["poactl"]
CMD ["agent", "--config", "/etc/poactl/agent.yaml"]

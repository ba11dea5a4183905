# Scouter-py server image.
#
#   docker build -t scouter-py .
#   docker run -p 8000:8000 -p 8001:8001 -v scouter:/var/lib/scouter scouter-py
#
# Configured only by environment variables (`docker run --rm scouter-py scouter config` lists them). Without
# DATABASE_URI the server runs its embedded PostgreSQL, with its data in the volume. Stop with `docker stop -t 75`:
# the drain may take up to SCOUTER_SHUTDOWN_DEADLINE (60 s) and Docker's default grace is only 10 s.
# Lint: tests/deploy/test_dockerfile.py runs hadolint with .hadolint.yaml on this file.

ARG PYTHON_IMAGE=python:3.11-slim

# ---- builder: every dependency and the project as wheels, installed into a venv that the runtime copies ----------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Dependencies first, from pyproject.toml alone: this layer is rebuilt only when the dependencies change.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > requirements.txt \
    && pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

COPY config ./config
COPY scouter ./scouter
COPY actors ./actors
COPY supervisors ./supervisors

# The venv lives at the same path in both stages, so its scripts' shebangs stay valid after the copy.
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r requirements.txt /wheels/scouter_py-*.whl

# ---- runtime: slim Python, the venv, tini, a non-root user ---------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="scouter-py" \
      org.opencontainers.image.description="Scouter ML-monitoring server (Python), drop-in for scouter-ml 0.6.4"

# tini is PID 1: the server starts the embedded PostgreSQL as a child, and when a postmaster dies abnormally its
# backends are re-parented to PID 1, which must reap them (Python only waits for its own children). tini also gives
# PID 1 default signal dispositions: the kernel drops a SIGTERM sent to a PID 1 that has no handler, so a stop during
# start-up, before the server installs its handler, would otherwise wait for SIGKILL. tini forwards SIGTERM to the
# server alone (no -g): the server itself stops PostgreSQL last, after the writer has drained into it.
# 0.19 is tini's last release, so the pin survives Debian point releases.
RUN apt-get update \
    && apt-get install -y --no-install-recommends "tini=0.19.*" \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so that volume ownership and Kubernetes' runAsNonRoot work; PostgreSQL refuses to run as
# root anyway.
RUN groupadd --system --gid 10001 scouter \
    && useradd --system --uid 10001 --gid scouter --home-dir /var/lib/scouter --shell /usr/sbin/nologin scouter \
    && mkdir -p /var/lib/scouter/data /var/lib/scouter/storage \
    && chown -R scouter:scouter /var/lib/scouter

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SCOUTER_SERVER_HOST=0.0.0.0 \
    SCOUTER_SERVER_PORT=8000 \
    SCOUTER_DATA_DIR=/var/lib/scouter/data \
    SCOUTER_STORAGE_URI=/var/lib/scouter/storage

# Embedded PostgreSQL data and the local archive; mount a volume here to keep them.
VOLUME ["/var/lib/scouter"]
WORKDIR /var/lib/scouter
USER 10001:10001

# 8000: the API; 8001: Prometheus metrics (API port + 1).
EXPOSE 8000 8001

# Liveness only (readiness is /scouter/readyz, for load balancers): 200 while serving, 503 while draining. The start
# period covers a first start that initialises the embedded database.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SCOUTER_SERVER_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/scouter/healthcheck', timeout=4).status == 200 else 1)"]

# SIGTERM: graceful drain, exit status 0; a second SIGTERM cancels what is left (exit status 1).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--"]
CMD ["scouter", "serve"]

# The reid service image. One build arg picks the variant; every later stage is shared.
#
#   docker build -t reid:gpu .                          # NVIDIA GPU hosts (the default)
#   docker build -t reid:cpu --build-arg VARIANT=cpu .  # hosts without a GPU
#
#   gpu: nvidia/cuda 13.0 runtime (Ubuntu 24.04, its Python 3.12), torch + torchvision cu130
#        from the PyTorch CUDA index, faiss-gpu (sm_70-sm_90 kernels) in place of faiss-cpu.
#   cpu: Python 3.12 slim, torch + torchvision from the PyTorch CPU index, faiss-cpu.
#
# The builder derives the image's pins from constraints.txt (docker/pins.py: only torch's
# build label and FAISS change) and fills /opt/venv. The runtime stage copies that venv and
# /app (the packages, Alembic migrations, start-up scripts): no pip cache, no build tools.

ARG VARIANT=gpu
# The CUDA minor version must match the torch build pinned by docker/pins.py (cu130).
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

# ---------------------------------------------------------------------------- bases
FROM ${CUDA_IMAGE} AS runtime-gpu
# Ubuntu's security updates replace package versions, so exact apt pins would break
# rebuilds; the base image tag pins the distribution release instead.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12 \
 && rm -rf /var/lib/apt/lists/*

FROM runtime-gpu AS builder-gpu
# python3.12-venv (ensurepip) is needed to create the venv, and only here.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.12-venv \
 && rm -rf /var/lib/apt/lists/*

FROM ${PYTHON_IMAGE} AS runtime-cpu

FROM runtime-cpu AS builder-cpu

# ---------------------------------------------------------------------------- builder
# builder-${VARIANT} and runtime-${VARIANT} are stages above, not images; each of them
# starts from one of the pinned tags.
# hadolint ignore=DL3006
FROM builder-${VARIANT} AS builder
ARG VARIANT
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /app
# python3.12 names the real interpreter in both bases (apt's /usr/bin, the slim image's
# /usr/local/bin), which the venv records and the runtime stage provides at that path.
RUN python3.12 -m venv /opt/venv
COPY constraints.txt pyproject.toml ./
COPY docker/pins.py docker/
RUN python docker/pins.py "${VARIANT}" /pins
# Separate layers on purpose: torch (gigabytes) is cached apart from the other
# dependencies and from the sources, so editing either rebuilds only what follows.
# hadolint ignore=DL3059
RUN pip install -c /pins/constraints.txt -r /pins/torch.txt
# The other dependencies: their own layer, so a source edit never reinstalls them.
# hadolint ignore=DL3059
RUN pip install -c /pins/constraints.txt -r /pins/requirements.txt
COPY README.md alembic.ini ./
COPY alembic/ alembic/
COPY app/ app/
COPY model/ model/
COPY training/ training/
COPY docker/ docker/
# The project runs from /app as a checkout does (app.db.engine finds alembic.ini above the
# package), so it is installed in editable mode against /app, which the runtime copies.
# --no-deps: every dependency is in place already (FAISS swapped); pyproject.toml would
# pull faiss-cpu back in. The import check fails the build, not the first start, if a
# wheel combination is broken.
RUN PIP_CONSTRAINT=/pins/constraints.txt pip install --no-deps --editable . \
 && python -c "import faiss, torch, torchvision, app, model, training"

# ---------------------------------------------------------------------------- runtime
# hadolint ignore=DL3006
FROM runtime-${VARIANT} AS runtime
LABEL org.opencontainers.image.title="reid" \
      org.opencontainers.image.description="Person re-identification gallery service"
# A fixed non-root uid; /var/lib/reid (crops, index snapshot, SQLite if used) and
# /models (checkpoints) are owned by it, so fresh named volumes mounted there are too.
RUN groupadd --gid 10001 reid \
 && useradd --uid 10001 --gid reid --create-home --home-dir /home/reid \
      --shell /usr/sbin/nologin reid \
 && mkdir -p /var/lib/reid /models \
 && chown reid:reid /var/lib/reid /models
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REID_HOST=0.0.0.0 \
    REID_PORT=8000 \
    REID_DATA_DIR=/var/lib/reid
USER 10001:10001
EXPOSE 8000
# Liveness only; docker-compose.yml checks /ready (model loaded, database reachable).
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "/app/docker/healthcheck.py", "/health"]
# sh runs the script even where a checkout lost its executable bit; the script ends in
# `exec`, so the server replaces the shell as PID 1 and receives SIGTERM directly.
ENTRYPOINT ["sh", "/app/docker/entrypoint.sh"]

# syntax=docker/dockerfile:1
#
# Images of the jobqueue server and the example worker, built from the uv
# workspace and its lock file:
#
#   docker build --target server -t jobqueue-server .
#   docker build --target example-worker -t jobqueue-example-worker .
#
# compose.yaml builds both. Each image holds one virtual environment with only
# its service and that service's runtime dependencies (no dev group), installed
# as regular (non-editable) packages, so the runtime stages need neither uv nor
# the sources.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: uv and the workspace metadata --------------------------------------
FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/jobqueue/venv
WORKDIR /src
# uv resolves a member against the whole workspace, so every member's
# pyproject.toml and sources come in (the .dockerignore keeps the rest out).
COPY pyproject.toml uv.lock .python-version ./
COPY packages ./packages
COPY services ./services

FROM build AS server-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --package jobqueue-server

FROM build AS example-worker-build
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --package jobqueue-example-worker

# --- runtime: the same Python, a non-root user, the venv ----------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 jobqueue \
    && useradd --system --uid 10001 --gid jobqueue --no-create-home --shell /usr/sbin/nologin jobqueue
ENV PATH=/opt/jobqueue/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/jobqueue

FROM runtime AS server
COPY --from=server-build /opt/jobqueue/venv /opt/jobqueue/venv
ENV JOBQUEUE_HOST=0.0.0.0 \
    JOBQUEUE_PORT=8080
EXPOSE 8080
USER jobqueue
# jobqueue-server stops gracefully on SIGTERM (docker stop's signal).
CMD ["jobqueue-server"]

FROM runtime AS example-worker
COPY --from=example-worker-build /opt/jobqueue/venv /opt/jobqueue/venv
USER jobqueue
CMD ["jobqueue-example-worker"]

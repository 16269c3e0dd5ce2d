# The video service: `faststream run consumers.app:app`. Used by docker-compose.yml.
# Two stages: `build` installs the hash-checked runtime lock (requirements.lock, `make lock`)
# and then the project, without dependencies, into /opt/venv; the final image gets only that
# venv (no build backend, no pip cache, no sources). The base is pinned to a Python patch
# release and a Debian release; add its digest (…-slim-bookworm@sha256:…) where a rebuild must
# be bit-for-bit the same.
ARG PYTHON_IMAGE=python:3.11.16-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first, so this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install --require-hashes -r requirements.lock

COPY pyproject.toml README.md LICENSE ./
COPY consumers ./consumers
COPY providers ./providers
COPY schemas ./schemas
COPY simulator ./simulator
RUN pip install --no-deps .

FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /app/data/videos \
    && chown -R app:app /app/data
USER app

ENV VIDEO_DIR=/app/data/videos \
    METRICS_PORT=9400
VOLUME ["/app/data/videos"]
EXPOSE 9400

STOPSIGNAL SIGTERM
CMD ["faststream", "run", "consumers.app:app"]

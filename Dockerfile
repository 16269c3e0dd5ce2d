# The video service: `faststream run consumers.app:app`. Used by docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY consumers ./consumers
COPY providers ./providers
COPY schemas ./schemas
COPY simulator ./simulator
RUN pip install .

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

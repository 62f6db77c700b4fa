# The Goalpost application image: the CLI and the scheduler, installed from the wheel the
# project builds (no source folders in the image), with the pinned constraints as `make` does.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY constraints.txt /tmp/constraints.txt
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir -c /tmp/constraints.txt /tmp/dist/goalpost-*.whl \
    && rm -rf /tmp/dist
RUN useradd --create-home goalpost && mkdir -p /app /state /backups \
    && chown goalpost /app /state /backups
USER goalpost
WORKDIR /app
CMD ["goalpost", "scheduler"]

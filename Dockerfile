# The Goalpost application image: the CLI and the scheduler. Dependencies are installed from
# the pinned constraints, as `make` does.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY goalpost ./goalpost
COPY pipelines ./pipelines
COPY backup ./backup
COPY sqlmesh ./sqlmesh
RUN pip install --no-cache-dir -c constraints.txt -e .
RUN useradd --create-home goalpost && mkdir -p /state /backups && chown goalpost /state /backups
USER goalpost
CMD ["goalpost", "scheduler"]

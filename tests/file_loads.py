"""Loading a file stream of the test client `shop` (source `pos`) as runs do, for the
loader-level test modules: each load gets a new run id."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import psycopg

from goalpost.core.registry.models import FileStream
from goalpost.core.warehouse import tenants
from goalpost.pipelines.files.loader import FileStreamResult, load_file_stream

Load = Callable[..., FileStreamResult]


def stream_loader(conn: psycopg.Connection, project: Path,
                  default: Callable[[], FileStream]) -> Load:
    """Provision `shop`, then return load(stream=None, **load_file_stream options), which
    loads `stream` (else `default()`) from the project folder."""
    tenants.provision(conn, "shop")
    runs = itertools.count(1)

    def load(stream: FileStream | None = None, **kwargs: object) -> FileStreamResult:
        return load_file_stream(conn, slug="shop", source="pos", stream=stream or default(),
                                root=project, run_id=next(runs), **kwargs)

    return load

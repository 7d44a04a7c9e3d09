"""Storage backends behind one interface (algaflow.store.base.Store), picked by name from a URL:

    sqlite:///path/to/algaflow.db   (or a bare path)   the embedded default
    postgresql://user@host:port/db[?schema=name]        production (the ``postgres`` extra: psycopg 3)
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from urllib.parse import urlsplit

from algaflow.store.base import (
    Ingested,
    ReadingBatch,
    Store,
    StoredEvent,
    UnknownUnitError,
    events_of_frames,
)


def _sqlite(url: str) -> Store:
    from algaflow.store.sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return SQLiteStore(path)


def _postgresql(url: str) -> Store:
    try:
        from algaflow.store.postgres import PostgresStore
    except ImportError as error:  # psycopg missing
        raise ImportError("the PostgreSQL store needs psycopg 3: pip install 'algaflow[postgres]'") from error
    return PostgresStore(url)


BACKENDS: dict[str, Callable[[str], Store]] = {"sqlite": _sqlite, "postgresql": _postgresql}


def open_store(url: str | PathLike) -> Store:
    """The backend named by ``url``'s scheme (module doc); an unknown scheme is an error listing the backends."""
    url = str(url)
    scheme = urlsplit(url).scheme
    if scheme == "":  # a bare path
        scheme = "sqlite"
    scheme = {"postgres": "postgresql"}.get(scheme, scheme)
    if scheme not in BACKENDS:
        raise ValueError(f"unknown store {scheme!r} in {url!r}; backends: {', '.join(BACKENDS)}")
    return BACKENDS[scheme](url)


__all__ = ["BACKENDS", "Ingested", "ReadingBatch", "Store", "StoredEvent", "UnknownUnitError",
           "events_of_frames", "open_store"]  # fmt: skip

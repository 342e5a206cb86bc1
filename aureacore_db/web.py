"""Datasette on registry databases, as ``aureacore-db serve`` runs it.

The plugin (``datasette_aureacore``, registered through a ``datasette`` entry point)
brings the pages, canned queries, titles and facets to every registry database by
itself, so plain ``datasette registry.db`` works too; this module only adds the
instance's title, settings and (optionally) the repository rollbacks commit to.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .resources import read_metadata

DEFAULT_SETTINGS: dict[str, Any] = {
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 300,
    "allow_download": False,
    # suggestions count every column of a table page: seconds on a long history
    "suggest_facets": False,
}

DbPaths = str | os.PathLike | Sequence[str | os.PathLike]


_CSP: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Datasette -> its policy


def content_security_policy(datasette: Any) -> str:
    """The Content-Security-Policy of the plugin's pages: scripts only from this site,
    plus Datasette's one constant inline script (by its hash), no plugins, no framing."""
    import base64
    import hashlib
    import re

    if datasette not in _CSP:
        hashes = []
        try:
            env = datasette.jinja_env  # the template is plain HTML: its source is the page
            html = env.loader.get_source(env, "_close_open_menus.html")[0]
        except Exception:  # noqa: BLE001 - another Datasette: no inline script to allow
            html = ""
        for body in re.findall(r"<script>(.*?)</script>", html, re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f" 'sha256-{digest}'")
        _CSP[datasette] = ("default-src 'self'; script-src 'self'" + "".join(hashes) + "; "
                           "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                           "object-src 'none'; base-uri 'none'; form-action 'self'; "
                           "frame-ancestors 'none'")
    return _CSP[datasette]


def database_name(db_path: str | os.PathLike) -> str:
    """The name Datasette gives a database file (its stem)."""
    return Path(db_path).stem


def load_metadata(*, repo: str | os.PathLike | None = None,
                  database: str | None = None) -> dict[str, Any]:
    """The instance part of ``metadata.yml`` (title, description, plugin settings).

    The ``registry`` section (titles, facets, canned queries) is not needed: the plugin
    gives it to every registry database. ``repo`` (the repository to roll back in) goes
    to ``database``'s plugin configuration.
    """
    metadata = read_metadata()
    metadata.pop("databases", None)
    if repo is not None and database is not None:
        metadata["databases"] = {database: {"plugins": {"aureacore": {
            "repo": str(Path(repo).resolve())}}}}
    return metadata


def prepare_database(db_path: str | os.PathLike) -> None:
    """Bring an existing registry database to the current schema (incl. ``rollbacks``)."""
    from .db import connect

    connect(db_path).close()


def make_datasette(
    db_paths: DbPaths,
    *,
    repo: str | os.PathLike | None = None,
    settings: dict[str, Any] | None = None,
    secret: str | None = None,
    metadata: dict[str, Any] | None = None,
):
    """A :class:`datasette.app.Datasette` serving one or more registry databases.

    ``repo`` is where rollbacks of the (single) database commit. ``metadata`` is merged
    into the shipped instance metadata (e.g. another rollback allow block).
    """
    from datasette.app import Datasette

    paths = _paths(db_paths)
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such database (run aureacore-db ingest first)")
        prepare_database(path)
    if repo is not None and len(paths) != 1:
        raise ValueError("a rollback repository can only be given for one database")
    meta = _merge(load_metadata(repo=repo, database=database_name(paths[0])), metadata or {})
    return Datasette([str(p) for p in paths], metadata=meta,
                     settings={**DEFAULT_SETTINGS, **(settings or {})}, secret=secret)


def _paths(db_paths: DbPaths) -> list[Path]:
    if isinstance(db_paths, (str, os.PathLike)):
        return [Path(db_paths)]
    return [Path(p) for p in db_paths]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``, dicts merged recursively (other values replaced)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def serve(
    db_paths: DbPaths,
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    repo: str | os.PathLike | None = None,
    root: bool = False,
    echo: Callable[[str], Any] = print,
) -> None:
    """Run Datasette with uvicorn until interrupted (prints the URLs first)."""
    import asyncio

    import uvicorn

    ds = make_datasette(db_paths, repo=repo)
    asyncio.run(ds.invoke_startup())
    base = f"http://{host}:{port}"
    for name, db in ds.databases.items():
        if name not in ("_internal", "_memory"):
            echo(f"Serving {db.path} at {base}{ds.urls.database(name)}/-/aureacore")
    if root:
        echo("Log in as root (this link works once; restart serve --root for a new one):")
        echo(f"{base}{ds.urls.path('-/aureacore/login')}?token={ds._root_token}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")

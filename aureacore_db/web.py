"""Datasette on a registry database, with the aureacore plugin and metadata.

Used by ``aureacore-db serve``, the demo command and the tests. The plugin and
``metadata.yml`` are found with :func:`aureacore_db.resources.data_path`, so an
installed (non-editable) copy works too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .resources import METADATA_DATABASE, data_path, read_metadata

DEFAULT_SETTINGS: dict[str, Any] = {
    "sql_time_limit_ms": 3000,
    "facet_time_limit_ms": 300,
    "allow_download": False,
}


_CSP: dict[int, str] = {}


def content_security_policy(datasette: Any) -> str:
    """The Content-Security-Policy of the plugin's pages: scripts only from this site,
    plus Datasette's one constant inline script (by its hash), no plugins, no framing."""
    import base64
    import hashlib
    import re

    key = id(datasette)
    if key not in _CSP:
        hashes = []
        try:
            env = datasette.jinja_env  # the template is plain HTML: its source is the page
            html = env.loader.get_source(env, "_close_open_menus.html")[0]
        except Exception:  # noqa: BLE001 - another Datasette: no inline script to allow
            html = ""
        for body in re.findall(r"<script>(.*?)</script>", html, re.S):
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f" 'sha256-{digest}'")
        _CSP[key] = ("default-src 'self'; script-src 'self'" + "".join(hashes) + "; "
                     "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                     "object-src 'none'; base-uri 'none'; form-action 'self'; "
                     "frame-ancestors 'none'")
    return _CSP[key]


def database_name(db_path: str | os.PathLike) -> str:
    """The name Datasette gives a database file (its stem)."""
    return Path(db_path).stem


def load_metadata(db_name: str, *, repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """``metadata.yml`` with its ``registry`` database section re-keyed to ``db_name``.

    Datasette 0.65 has no wildcard database key, so titles, facets and canned queries
    are moved to the actual database name here. ``repo`` (the repository to roll back
    in) goes to the plugin's configuration.
    """
    metadata = read_metadata()
    databases = metadata.get("databases") or {}
    section = databases.pop(METADATA_DATABASE, None)
    if section is not None:
        databases[db_name] = section
    metadata["databases"] = databases
    plugin = metadata.setdefault("plugins", {}).setdefault("aureacore", {})
    plugin["database"] = db_name
    if repo is not None:
        plugin["repo"] = str(Path(repo).resolve())
    return metadata


def prepare_database(db_path: str | os.PathLike) -> None:
    """Bring an existing registry database to the current schema (incl. ``rollbacks``)."""
    from .db import connect
    from .rollback import ensure_rollbacks_table

    db = connect(db_path)
    try:
        ensure_rollbacks_table(db)
    finally:
        db.close()


def make_datasette(
    db_path: str | os.PathLike,
    *,
    repo: str | os.PathLike | None = None,
    settings: dict[str, Any] | None = None,
    secret: str | None = None,
    metadata: dict[str, Any] | None = None,
):
    """A :class:`datasette.app.Datasette` serving ``db_path`` with the plugin.

    ``metadata`` is merged into the shipped metadata (e.g. another rollback allow block).
    """
    from datasette.app import Datasette

    path = Path(db_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such database (run aureacore-db ingest first)")
    prepare_database(path)
    meta = _merge(load_metadata(database_name(path), repo=repo), metadata or {})
    return Datasette(
        [str(path)],
        metadata=meta,
        plugins_dir=str(data_path("plugins")),
        settings={**DEFAULT_SETTINGS, **(settings or {})},
        secret=secret,
    )


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
    db_path: str | os.PathLike,
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

    ds = make_datasette(db_path, repo=repo)
    asyncio.run(ds.invoke_startup())
    base = f"http://{host}:{port}"
    echo(f"Serving {db_path} at {base}{ds.urls.path('/-/aureacore')}")
    if root:
        echo(f"{base}{ds.urls.path('-/auth-token')}?token={ds._root_token}")
    uvicorn.run(ds.app(), host=host, port=port, log_level="warning", lifespan="on")

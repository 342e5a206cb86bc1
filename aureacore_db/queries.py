"""Run the canned queries of ``metadata.yml`` outside Datasette (``aureacore-db query``).

The same SQL Datasette runs for ``/<db>/<query>.json``, so a cron report and the web
page agree. A parameter written as ``(:name = '' or …)`` in the SQL is optional, and so
is one given to ``aureacore_environment(:name)`` (empty: the first environment). A
query that pages on the web (``limit``, empty = 100 rows) gives every row here unless
``limit`` is given.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .db import open_read_only
from .environments import EnvError, get_environment
from .resources import METADATA_DATABASE, read_metadata
from .revisions import commit_parameter_error, register_sql_function

_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_STRING = re.compile(r"'(?:[^']|'')*'")


ENV_FUNCTION = "aureacore_environment"
ENV_PARAM = re.compile(r"aureacore_environment\(\s*:(\w+)\s*\)")
MAX_ENV_INPUT = 200
PAGE_SIZE = "limit"  # the parameter of a query that pages on the web


class QueryError(Exception):
    """Unknown query, missing parameter or failed SQL; the message says which."""


@dataclass
class QueryResult:
    """Column names and rows of one run."""

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def canned_queries() -> dict[str, dict[str, Any]]:
    """The canned queries of ``metadata.yml`` by name (title, description, sql)."""
    databases = read_metadata().get("databases") or {}
    section = databases.get(METADATA_DATABASE) or next(iter(databases.values()), {}) or {}
    return dict(section.get("queries") or {})


def parameters(sql: str) -> list[str]:
    """Named parameters of a query, in order of first use (string literals skipped)."""
    names: list[str] = []
    for name in _PARAM.findall(_STRING.sub("''", sql)):
        if name not in names:
            names.append(name)
    return names


def optional_parameters(sql: str) -> set[str]:
    return (set(re.findall(r":([A-Za-z_]\w*)\s*=\s*''", sql))
            | set(ENV_PARAM.findall(sql)))


def environment_named(conn: sqlite3.Connection, name: Any) -> str:
    """The environment ``name`` names (empty or None: the first one), else
    :class:`~aureacore_db.environments.EnvError` listing the environments there are."""
    if isinstance(name, (bytes, bytearray, memoryview)):
        raise EnvError("an environment name is text, not a blob")
    text = "" if name is None else str(name).strip()
    if len(text) > MAX_ENV_INPUT:
        raise EnvError(f"environment name too long ({len(text):,} characters)")
    return get_environment(conn, text or None).name


def register_environment_function(conn: sqlite3.Connection) -> None:
    """SQL ``aureacore_environment(name)``: the name of that environment (empty: the
    first one, in promotion order); an unknown one fails the query (see
    :func:`environment_parameter_error` for the reason)."""
    conn.create_function(ENV_FUNCTION, 1, lambda name: environment_named(conn, name),
                         deterministic=True)


def environment_parameter_error(conn: sqlite3.Connection, sql: str,
                                values: dict[str, Any]) -> str | None:
    """Why a query's ``aureacore_environment(:param)`` would fail with these values
    (SQLite only says "user-defined function raised exception"); None if it would not."""
    for param in dict.fromkeys(ENV_PARAM.findall(sql)):
        try:
            environment_named(conn, values.get(param))
        except EnvError as exc:
            return f"{param}: {exc}"
    return None


def run_query(db_path: str | os.PathLike, name: str,
              params: dict[str, str] | None = None) -> QueryResult:
    """Run canned query ``name`` on the database with ``params``."""
    queries = canned_queries()
    if name not in queries:
        raise QueryError(f"no canned query {name!r} (known: {', '.join(sorted(queries))})")
    sql = queries[name]["sql"]
    given = dict(params or {})
    wanted = parameters(sql)
    unknown = sorted(set(given) - set(wanted))
    if unknown:
        raise QueryError(f"{name} has no parameter {', '.join(unknown)} "
                         f"(it takes: {', '.join(wanted) or 'none'})")
    missing = [p for p in wanted if p not in given and p not in optional_parameters(sql)]
    if missing:
        hint = " ".join(f"-p {p}=VALUE" for p in missing)
        raise QueryError(f"{name} needs {', '.join(missing)}: {hint}")
    values = {p: given.get(p, "") for p in wanted}
    if PAGE_SIZE in wanted and PAGE_SIZE not in given:
        values[PAGE_SIZE] = "-1"  # every row (SQLite's LIMIT -1)
    path = Path(db_path)
    if not path.is_file():
        raise QueryError(f"{path}: no such database")
    if name == "rollback_log" or (ENV_PARAM.search(sql) and not _has_environments(path)):
        from .web import prepare_database

        prepare_database(path)
    conn = open_read_only(path)
    try:
        register_sql_function(conn)
        register_environment_function(conn)
        unknown = (commit_parameter_error(conn, sql, values)
                   or environment_parameter_error(conn, sql, values))
        if unknown:
            raise QueryError(f"{name}: {unknown}")
        cursor = conn.execute(sql, values)
        columns = [d[0] for d in cursor.description]
        return QueryResult(name, columns, [tuple(row) for row in cursor.fetchall()])
    except sqlite3.Error as exc:
        raise QueryError(f"{name}: {exc}") from exc
    finally:
        conn.close()


def _has_environments(path: Path) -> bool:
    """Whether the database has the environment tables (else it needs an upgrade)."""
    conn = open_read_only(path)
    try:
        return conn.execute("select 1 from sqlite_master where type = 'table' "
                            "and name = 'environments'").fetchone() is not None
    finally:
        conn.close()


def render(result: QueryResult, fmt: str = "table", *, width: int = 60) -> str:
    """The result as ``csv``, ``json`` (a list of objects) or an aligned text ``table``."""
    if fmt == "json":
        return json.dumps(result.dicts(), indent=2, ensure_ascii=False, default=str) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows(["" if v is None else v for v in row] for row in result.rows)
        return out.getvalue()
    if fmt != "table":
        raise QueryError(f"unknown format {fmt!r} (csv, json or table)")
    cells = [[_cell(v, width) for v in row] for row in result.rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(result.columns)]
    lines = [_line(result.columns, widths), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths) for row in cells]
    lines.append(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    return "\n".join(lines) + "\n"


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cell(value: Any, width: int) -> str:
    text = "" if value is None else str(value).replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"

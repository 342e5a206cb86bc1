"""``--env NAME`` of the commands that act on one environment (rollback, register, sync,
push, deps, health): which environment, checked before anything is written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .environments import EnvError, Environment, get_environment, stored_environments

F = TypeVar("F", bound=Callable[..., Any])
ENV_HELP = ("The environment (a name given to ingest --env NAME=BRANCH) to act on; "
            "default: the first one the database follows.")


def env_option(command: F) -> F:
    """``--env NAME`` (``env_name``; None: the first environment)."""
    return click.option("--env", "env_name", default=None, metavar="NAME",
                        help=ENV_HELP)(command)


def pick_environment(db: Any, name: str | None) -> Environment:
    """The environment ``name`` of a database connection; a usage error listing the
    environments when there is no such one."""
    try:
        return get_environment(db, name)
    except EnvError as exc:
        raise click.UsageError(str(exc)) from None


def stored_environment(db_path: Path, name: str | None) -> Environment | None:
    """The environment ``name`` of the database file, read without changing it (None:
    ``name`` is None and the database records none yet, as one made before
    environments); a usage error listing them when there is no such one."""
    try:
        found = stored_environments(db_path)
    except sqlite3.Error:
        found = []
    if name is None:
        return found[0] if found else None
    for env in found:
        if env.name == name:
            return env
    names = ", ".join(e.name for e in found) or "none yet: run ingest first"
    raise click.UsageError(f"no environment {name!r} (there are: {names})")

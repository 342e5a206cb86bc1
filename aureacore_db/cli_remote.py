"""CLI options for Git remotes (credentials, host keys, CA) and their exit codes.

The options set the same environment variables a user may set instead
(:mod:`aureacore_db.credentials`), so every Git operation of the command, however deep,
uses them. Tokens are never options: they come from the environment or Git's
credential helpers, so they never show in a process list or shell history.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from .credentials import ENV_ACCEPT_NEW, ENV_CA_BUNDLE, ENV_KNOWN_HOSTS, ENV_SSH_KEY

F = TypeVar("F", bound=Callable[..., Any])

# exit code -> what it means (README "Remotes and credentials")
EXIT_CODES = {
    1: "any other error",
    3: "authentication refused",
    4: "SSH host key unknown",
    5: "SSH host key changed",
    6: "TLS certificate not trusted",
    7: "repository not found",
    8: "network unreachable",
    9: "timeout",
    11: "push rejected (the remote moved)",
    12: "diverged (local and remote commits touch the same files)",
}


def _to_env(name: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, False):
            os.environ[name] = "1" if value is True else str(value)
        return value

    return store


def remote_options(command: F) -> F:
    """``--ssh-key``, ``--known-hosts``, ``--accept-new-host-key`` and ``--ca-bundle``."""
    options = [
        click.option("--ssh-key", type=click.Path(exists=True, dir_okay=False),
                     expose_value=False, callback=_to_env(ENV_SSH_KEY),
                     help=f"SSH private key for ssh:// and user@host:path remotes "
                          f"(env {ENV_SSH_KEY}; default: the running ssh-agent)."),
        click.option("--known-hosts", type=click.Path(dir_okay=False),
                     expose_value=False, callback=_to_env(ENV_KNOWN_HOSTS),
                     help=f"known_hosts file the SSH host key is checked against "
                          f"(env {ENV_KNOWN_HOSTS}; default ~/.ssh/known_hosts)."),
        click.option("--accept-new-host-key", is_flag=True, expose_value=False,
                     callback=_to_env(ENV_ACCEPT_NEW),
                     help="Record the key of an SSH host not yet in known_hosts instead "
                          "of refusing it (a changed key is always refused)."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False),
                     expose_value=False, callback=_to_env(ENV_CA_BUNDLE),
                     help=f"Also trust the CAs in this PEM file for https:// remotes "
                          f"(env {ENV_CA_BUNDLE})."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def failure(exc: BaseException) -> click.ClickException:
    """A one-line ``Error:`` with the exit code of the failure's kind."""
    error = click.ClickException(str(exc))
    error.exit_code = exit_code(exc)
    return error


def exit_code(exc: BaseException | None) -> int:
    """The exit code of ``exc`` or of the Git failure that caused it (default 1)."""
    seen = 0
    while exc is not None and seen < 5:
        code = getattr(exc, "exit_code", None)
        if isinstance(code, int):
            return code
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return 1

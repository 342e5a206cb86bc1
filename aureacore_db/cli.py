"""The ``aureacore-db`` command line: a thin click layer over the Python API."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import click

from . import __version__
from .cli_common import (
    Size,
    check_port,
    check_source,
    db_option,
    json_option,
    require_new_or_registry,
)
from .cli_remote import failure, remote_options
from .parsing import DEFAULT_MAX_BYTES


class _Group(click.Group):
    """Turns an unexpected database or file-system failure into one ``Error:`` line
    (the commands check their inputs first; this is the net under them)."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
            raise  # a bug, not bad input: keep the traceback
        except sqlite3.DatabaseError as exc:
            raise click.ClickException(f"database error: {exc}") from exc
        except BrokenPipeError:
            raise
        except OSError as exc:
            if exc.filename is not None and exc.strerror:
                raise click.ClickException(f"{exc.filename}: {exc.strerror}") from exc
            raise click.ClickException(str(exc) or type(exc).__name__) from exc


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="aureacore-db")
def cli() -> None:
    """Service configuration history from Git, in SQLite, served with Datasette.

    \b
    Start with:  aureacore-db demo
    Then:        aureacore-db ingest PATH-OR-URL --db registry.db
    """


@cli.command()
@click.argument("repo")
@db_option
@click.option("--branch", default=None,
              help="Branch to walk, as one environment named after it. Default: the "
                   "database's environments, else main.")
@click.option("--env", "envs", multiple=True, metavar="NAME=BRANCH",
              help="An environment and its branch; repeat in promotion order (dev, "
                   "staging, prod). Replaces the environments the database follows.")
@click.option("--max-size", default=str(DEFAULT_MAX_BYTES), show_default=True, type=Size(),
              help="Largest config file read, e.g. 512k or 2M; larger files are ERROR.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@json_option("the summary")
@remote_options
def ingest(repo: str, db_path: Path, branch: str | None, envs: tuple[str, ...],
           max_size: int, quiet: bool, as_json: bool) -> None:
    """Walk every commit of REPO (a path or a file:// / https:// URL) into the database.

    Several branches go into one database as environments (--env dev=develop --env
    prod=main): commits they share are stored once. Later runs without options follow
    the same environments. Incremental: a second run processes only new commits; a
    rewritten branch is followed exactly. Safe to interrupt: the next run continues.
    """
    from .environments import EnvError, parse_env_option, resolve, stored_environments
    from .gitsource import SourceError
    from .ingest import Ingest, IngestBusy

    db = require_new_or_registry(db_path, "ingest writes to it")
    try:
        given = [parse_env_option(text) for text in envs]
        if given and branch is not None:
            raise EnvError("give either --branch or --env, not both")
        chosen = resolve(stored_environments(db), given, branch)
    except EnvError as exc:
        raise click.UsageError(str(exc)) from exc
    for name_branch in dict.fromkeys(b for _, b in chosen):
        check_source(repo, db, name_branch)
    show_bar = not quiet and not as_json and sys.stderr.isatty()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="Ingesting commits", file=sys.stderr,
                                    show_pos=True, show_eta=True)
            bar.__enter__()
        bar.update(1)

    try:
        result = Ingest(repo, db_path, environments=chosen, max_bytes=max_size,
                        progress=progress if show_bar else None).run()
    except (SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif not quiet:
        _print_summary(result)


def _print_summary(result) -> None:  # type: ignore[no-untyped-def]
    if result.rewrite_detected:
        click.secho(f"Branch was rewritten: removed {result.commits_removed} commits that are "
                    "no longer reachable.", fg="yellow", err=True)
    if result.note:
        click.secho(f"Note: {result.note}.", fg="yellow", err=True)
    click.echo(
        f"{result.db}: {result.commits_added} new commits ({result.commits} in all), "
        f"{result.services} services, {result.services_in_error} in ERROR "
        f"[{result.duration_s:.1f}s]"
    )
    if len(result.environments) > 1:
        click.echo("Environments: " + ", ".join(
            f"{env['name']} ({env['branch']} at {(env['tip'] or 'no commits')[:12]})"
            for env in result.environments))
    if result.services == 0 and result.commits:
        from .layout import ROOT_FILES, SERVICES_DIR

        click.secho(f"No service files found at {result.branch}'s tip. Looked for a root file "
                    f"({', '.join(ROOT_FILES)}) listing services, or *.yaml / *.yml / *.json "
                    f"files under {SERVICES_DIR}/.", fg="yellow", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--max-size", default=str(DEFAULT_MAX_BYTES), show_default=True, type=Size(),
              help="Largest config file read, e.g. 512k or 2M.")
@click.option("--warnings/--no-warnings", default=True, show_default=True,
              help="Also print warnings (they never fail the check).")
def validate(paths: tuple[Path, ...], max_size: int, warnings: bool) -> None:
    """Check service files, or whole config-repo folders, without a database.

    Prints `path: json_path: message` per problem and exits 1 on any error: use it as
    a pre-commit hook or CI step. A folder gets every check ingest makes (duplicates,
    dependencies, cycles); a single file only its own.
    """
    from .checkfiles import check_paths

    for path in paths:
        if path.is_dir() and not _has_services(path):
            raise click.ClickException(
                f"{path}: no services/ folder and no aureacore.yaml root file; nothing to "
                "check (give a config repository, or service files)")
    findings = check_paths(list(paths), max_bytes=max_size)
    errors = 0
    for finding in findings:
        if finding.problem.severity == "error":
            errors += 1
        elif not warnings:
            continue
        click.echo(finding.line())
    if errors:
        click.echo(f"{errors} error(s)", err=True)
        sys.exit(1)
    click.echo("ok", err=True)


def _has_services(folder: Path) -> bool:
    """Whether a folder is a config repository (services/ or a root file)."""
    from .layout import ROOT_FILES, SERVICES_DIR

    return (folder / SERVICES_DIR).is_dir() or any((folder / name).is_file()
                                                   for name in ROOT_FILES)


@cli.command()
@click.option("--dir", "directory", default="aureacore-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the sample config repo (configs/) and its database.")
@click.option("--quiet", "-q", is_flag=True, help="Only print what to run next.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Serve the demo database in Datasette at the end (logged in as root).")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port to serve on.")
def demo(directory: Path, quiet: bool, serve: bool, port: int) -> None:
    """Build a sample config repo with a realistic history, ingest it, and serve it.

    The sample has dozens of services over about 200 commits, with a broken file later
    fixed, schema errors, a rename, a merge, a removed and re-added service, a missing
    dependency and a dependency cycle, on branch dev; staging and prod branch off it and
    drift (a fix waiting in staging, a hotfix only in prod), all three ingested as
    environments.
    """
    import shutil

    from .demo import DEMO_STORY, ENVIRONMENTS, build_demo_repo, next_steps
    from .ingest import ingest

    if serve:  # before minutes of work, not after: a busy port is a clear error now
        check_port("127.0.0.1", port)
    marker = directory / ".aureacore-demo"
    if directory.exists() and any(directory.iterdir()):
        if not marker.exists():
            raise click.ClickException(
                f"{directory} exists and is not an earlier demo; choose another --dir")
        click.echo(f"Replacing the earlier demo in {directory}"
                   + _demo_losses(directory / "registry.db"), err=True)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text("built by aureacore-db demo; safe to delete\n")
    repo_dir = directory / "configs"
    db_path = directory / "registry.db"
    build_demo_repo(repo_dir)
    if not quiet:
        click.echo(f"Built sample config repo at {repo_dir}")
        for line in DEMO_STORY:
            click.echo(f"  - {line}")
    result = ingest(repo_dir, db_path, environments=ENVIRONMENTS)
    _print_summary(result)
    click.echo(next_steps(db_path, repo_dir))
    if serve:
        from .web import serve as run_server

        click.echo("\nServing the demo (Ctrl-C to stop); open the second URL to log in "
                   "as root, who may roll services back and promote them; the environments "
                   f"are at http://127.0.0.1:{port}/-/aureacore/environments")
        run_server(db_path, port=port, root=True, echo=click.echo)


def _demo_losses(db_path: Path) -> str:
    """What rebuilding an earlier demo throws away, for the notice (rollbacks made in it)."""
    try:
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        try:
            made = conn.execute("select count(*) from rollbacks where outcome = 'ok'").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        return ""
    if not made:
        return ""
    return f" (its {made} rollback{'s' if made != 1 else ''} and their commits are discarded)"


def _register_commands() -> None:
    """Commands of other areas live in their own modules, each exposing COMMANDS."""
    from . import cli_deps, cli_health, cli_promote, cli_registry, cli_web, cli_webhooks

    for module in (cli_web, cli_registry, cli_webhooks, cli_deps, cli_health, cli_promote):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()

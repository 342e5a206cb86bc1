"""``aureacore-db register FILE``, ``sync`` and ``push``: the registry's CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .cli_common import (
    branch_option,
    check_source,
    db_option,
    inspect_db,
    json_option,
    read_only,
    repo_option,
    require_new_or_registry,
)
from .cli_env import env_option, stored_environment
from .cli_remote import failure, remote_options
from .db import get_meta
from .environments import stored_environments
from .gitprovider import Diverged, GitProviderError
from .gitsource import SourceError, is_url
from .ingest import IngestBusy
from .models import ConfigError, ServiceConfig
from .names import CONFIGURED
from .registry import RegistrationRejected, RegistryError, ServiceRegistry, SyncResult


def _defaults(db_path: Path, repo: str | None, branch: str | None, why: str,
              need_commits: bool, env_name: str | None = None,
              checked_out: bool = False) -> tuple[str, str]:
    """``--repo`` / ``--branch`` (or ``--env``'s branch) or the ones recorded in
    ``aureacore_meta``; refuses a database path that is not a registry, an unknown
    environment, and a local repository that is missing or holds another history than
    the database, before anything is written. ``checked_out``: with neither ``--env``
    nor ``--branch``, the environment whose branch a local repository has checked out
    (a sync follows every environment; it pulls that one)."""
    require_new_or_registry(db_path, why)
    if env_name is not None:
        env = stored_environment(db_path, env_name)
        assert env is not None
        if branch is not None and branch != env.branch:
            raise click.UsageError(f"--branch {branch} and --env {env_name} (branch "
                                   f"{env.branch}) disagree: give one of them")
        branch = env.branch
    repo, branch = _recorded(db_path, repo, branch)
    if checked_out and env_name is None and not is_url(repo):
        branch = _checked_out_env_branch(db_path, repo) or branch
    if not is_url(repo):
        check_source(repo, db_path, branch, need_commits=need_commits)
    return repo, branch


def _recorded(db_path: Path, repo: str | None, branch: str | None) -> tuple[str, str]:
    if repo is None or branch is None:
        if not db_path.exists():
            if repo is None:
                raise click.UsageError(
                    f"{db_path}: no such database; run `aureacore-db ingest REPO --db "
                    f"{db_path}` first, or pass --repo")
            return repo, branch or "main"
        source = repo_path = None
        if "aureacore_meta" in inspect_db(db_path)[1]:
            db = read_only(db_path, ingested=False)  # reading writes nothing
            try:
                source, repo_path = get_meta(db, "source"), get_meta(db, "repo_path")
                branch = branch or get_meta(db, "branch") or "main"
            finally:
                db.close()
        if repo is None:
            repo = source if source and is_url(source) else repo_path
        if repo is None:
            raise click.UsageError(f"{db_path} records no repository yet; pass --repo")
    return repo, branch or "main"


def _checked_out_env_branch(db_path: Path, repo: str) -> str | None:
    """The branch a local repository has checked out, when it is one of the database's
    environments' (None otherwise)."""
    import pygit2

    branches = {e.branch for e in stored_environments(db_path)}
    try:
        found = pygit2.discover_repository(repo)
        head = pygit2.Repository(found).lookup_reference("HEAD") if found else None
    except (pygit2.GitError, KeyError, ValueError):
        return None
    if head is None or not isinstance(head.target, str):
        return None
    name = head.target.removeprefix("refs/heads/")
    return name if name in branches else None


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@db_option
@repo_option
@branch_option
@click.option("--author", default=None, help='Commit author, "Name <email>".')
@click.option("--message", "-m", default=None, help="Commit message.")
@click.option("--allow-errors", is_flag=True,
              help="Register even when only the whole tree shows errors (missing "
                   "dependency, cycle, breaking another service): the service is ERROR.")
@click.option("--allow-breaking", is_flag=True,
              help="Register even when the preview shows other services going into ERROR.")
@click.option("--dry-run", is_flag=True, help="Print the preview only; write nothing.")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask, on a terminal, before a write that changes other "
                   "services' status.")
@env_option
@json_option()
@remote_options
def register(file: Path, db_path: Path, repo: str | None, branch: str | None,
             author: str | None, message: str | None, allow_errors: bool,
             allow_breaking: bool, dry_run: bool, yes: bool, env_name: str | None,
             as_json: bool) -> None:
    """Validate FILE (a service file), then write, commit and ingest it.

    Writes on the branch of one environment (--env; default the first). When a local
    repository has another branch checked out, the commit is made in a linked worktree
    beside the database; your working tree is left alone.

    Invalid files are rejected with every problem and nothing is written. First prints a
    preview: the services whose status the write would change (those it breaks are
    refused unless --allow-breaking) and why.
    """
    repo, branch = _defaults(db_path, repo, branch, "register ingests into it",
                             need_commits=False,  # the first service of a new repo is fine
                             env_name=env_name)
    try:
        config = ServiceConfig.from_file(file)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        registry = ServiceRegistry(db_path, repo, branch, environment=env_name)
        planned = registry.preview_registration(config)
        _print_preview(planned.preview, as_json)
        if dry_run:
            _print_dry_run(file, planned, as_json)
            return
        others = [c for c in (planned.preview or {}).get("changes", []) if not c["written"]]
        if others and not yes and not as_json and sys.stdin.isatty():
            click.confirm(f"Register {planned.service_id} in {planned.path}?", abort=True)
            allow_breaking = True
        result = registry.register_service(config, author=author, message=message,
                                           strict=not allow_errors,
                                           allow_breaking=allow_breaking)
    except RegistrationRejected as exc:
        for problem in exc.problems:
            if problem.severity == "error":
                click.echo(f"{file}: {problem.json_path}: {problem.message}", err=True)
        count = sum(p.severity == "error" for p in exc.problems)
        click.echo(f"rejected {exc.service_id}: {count} error(s); nothing was written"
                   + ("" if allow_breaking or not any(
                       p.message.startswith("would make ") for p in exc.problems)
                      else " (pass --allow-breaking to break those services anyway)"),
                   err=True)
        sys.exit(1)
    except (RegistryError, GitProviderError, SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
        return
    where = f"commit {result.commit[:12]}" if result.commit else "no change"
    click.echo(f"{result.service_id}: {result.status} ({where}, {result.path})")
    if result.message and result.status != CONFIGURED:
        click.echo(f"  {result.message}")


@click.command()
@db_option
@repo_option
@branch_option
@env_option
@json_option()
@click.option("--deliver/--no-deliver", "deliver_events", default=True, show_default=True,
              help="Then send configured webhooks their undelivered events.")
@click.option("--watch", "watch_interval", default=None, metavar="INTERVAL",
              help="Keep polling every INTERVAL (e.g. 30s, 5m) and sync on change; backs "
                   "off while the remote is down; SIGTERM or Ctrl-C stops it.")
@remote_options
def sync(db_path: Path, repo: str | None, branch: str | None, env_name: str | None,
         as_json: bool, deliver_events: bool, watch_interval: str | None) -> None:
    """Pull the config repository and ingest what changed; print the changes.

    Ingests every environment the database follows; pulls the branch of --env (default:
    the one a local repository has checked out, else the first). Only pulls: local
    commits the remote lacks are left for `aureacore-db push` (exit 12 when the remote
    moved too and they cannot simply be fast-forwarded).
    """
    repo, branch = _defaults(db_path, repo, branch, "sync ingests into it",
                             need_commits=True, env_name=env_name, checked_out=True)
    if watch_interval is not None:
        _watch(db_path, repo, branch, watch_interval, deliver_events, env_name)
        return
    try:
        result = ServiceRegistry(db_path, repo, branch,
                                 environment=env_name).sync_configurations()
    except (RegistryError, GitProviderError, SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        _print_sync(result)
    if deliver_events:
        _deliver_webhooks(db_path)
    if result.diverged:
        sys.exit(Diverged.exit_code)


def _print_sync(result: SyncResult) -> None:
    click.echo(f"{len(result.new_commits)} new commit(s), "
               f"{len(result.changed_services)} service change(s), "
               f"{len(result.status_changes)} status change(s)"
               + (" [branch was rewritten]" if result.rewrite_detected else ""))
    for change in result.status_changes:
        click.echo(f"  {change['service_id']}: {change['previous_status'] or '-'} -> "
                   f"{change['status']}")
    if result.diverged:
        click.secho(f"Warning: {result.diverged}", fg="yellow", err=True)
    elif result.unpushed:
        click.secho(f"{len(result.unpushed)} local commit(s) not pushed yet "
                    f"({', '.join(c[:12] for c in result.unpushed[:5])}); run "
                    "`aureacore-db push`", fg="yellow", err=True)


@click.command()
@db_option
@repo_option
@branch_option
@env_option
@json_option()
@remote_options
def push(db_path: Path, repo: str | None, branch: str | None, env_name: str | None,
         as_json: bool) -> None:
    """Push local commits the remote lacks (e.g. a write made while it was down).

    When the remote moved meanwhile, the local commits are replayed onto it if the two
    sides changed different files; otherwise nothing moves and the commits of both
    sides are listed (exit 12). Then syncs the database.
    """
    repo, branch = _defaults(db_path, repo, branch, "push syncs it", need_commits=True,
                             env_name=env_name, checked_out=True)
    try:
        result = ServiceRegistry(db_path, repo, branch, environment=env_name).push()
    except (RegistryError, GitProviderError, SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    if not result.pushed:
        click.echo("nothing to push")
    else:
        replayed = f", {len(result.rebased)} replayed onto the remote's new commits" \
            if result.rebased else ""
        click.echo(f"pushed {len(result.pushed)} commit(s){replayed}: "
                   + ", ".join(c[:12] for c in result.pushed[:10]))
    if result.sync is not None:
        _print_sync(result.sync)


def _watch(db_path: Path, repo: str, branch: str, interval_text: str,
           deliver_events: bool, env_name: str | None = None) -> None:
    """``sync --watch``: sync every INTERVAL until SIGTERM / Ctrl-C; a clean exit (0)."""
    from .watch import parse_interval, stop_on_signals, watch

    try:
        interval = parse_interval(interval_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--watch") from None
    stop = stop_on_signals()

    def once():  # type: ignore[no-untyped-def]
        result = ServiceRegistry(db_path, repo, branch,
                                 environment=env_name).sync_configurations()
        if deliver_events and result.changed:
            _deliver_webhooks(db_path)
        return result

    def describe(result) -> str | None:  # type: ignore[no-untyped-def]
        if not result.changed:
            return None
        return (f"synced {(result.new_tip or '-')[:12]}: {len(result.new_commits)} new "
                f"commit(s), {len(result.status_changes)} status change(s)")

    click.echo(f"watching {repo} ({branch}) every {interval:g}s; SIGTERM or Ctrl-C stops",
               err=True)
    rounds = watch(once, interval, stop=stop, describe=describe,
                   echo=lambda line: click.echo(line, err=True))
    click.echo(f"stopped after {rounds} round(s)", err=True)


def _deliver_webhooks(db_path: Path) -> None:
    """Send webhooks what they have not received yet (events of this sync, or older ones
    a receiver missed while it was down)."""
    from .webhooks import deliver_pending

    for run in deliver_pending(db_path):
        click.echo(f"  webhook {run.webhook}: {run.delivered} delivered"
                   + (f", stopped: {run.error}" if run.error else ""), err=True)


def _print_preview(preview: dict | None, as_json: bool) -> None:
    """The services whose status the write changes (to stderr with --json)."""
    for change in (preview or {}).get("changes", []):
        if change["written"]:
            continue
        verb = "breaks" if change["breaks"] else "fixes" if change["fixes"] else "changes"
        click.echo(f"  {verb} {change['service_id']}: {change['before'] or 'absent'} -> "
                   f"{change['after'] or 'absent'} ({change['reason']})", err=as_json)


def _print_dry_run(file: Path, planned, as_json: bool) -> None:  # type: ignore[no-untyped-def]
    if as_json:
        click.echo(json.dumps({"dry_run": True, **planned.as_dict()}, indent=2))
        return
    for problem in planned.problems:
        if problem.severity == "error":
            click.echo(f"{file}: {problem.json_path}: {problem.message}")
    click.echo(f"{planned.service_id}: would be {planned.status} ({planned.path}); dry run: "
               "nothing was written")


COMMANDS = [register, sync, push]

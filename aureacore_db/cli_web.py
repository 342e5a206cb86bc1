"""CLI commands of the web area: ``serve``, ``rollback`` and ``query``."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .cli_common import (
    check_port,
    check_source,
    db_option,
    dbs_option,
    json_option,
    local_repo_option,
    require_registry,
)
from .cli_env import env_option, stored_environment
from .cli_remote import failure, remote_options
from .names import ERROR


@click.command()
@click.argument("dbs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@dbs_option
@local_repo_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--root", is_flag=True,
              help="Print a URL that logs you in as root (may roll services back).")
def serve(dbs: tuple[Path, ...], db_paths: tuple[Path, ...], repo: Path | None, host: str,
          port: int, root: bool) -> None:
    """Browse registry databases in Datasette, with service pages and rollback.

    \b
    aureacore-db serve registry.db
    aureacore-db serve team-a.db team-b.db     (or --db team-a.db --db team-b.db)

    A convenience around plain `datasette registry.db`, which serves the same pages and
    canned queries (the plugin comes with aureacore-db). Opens
    http://HOST:PORT/<db>/-/aureacore (services overview); canned queries are at
    /<db>/<query> and every page and query is also available as .json / .csv.
    """
    from .web import serve as run

    paths = list(dict.fromkeys([*dbs, *db_paths])) or [Path("registry.db")]
    for path in paths:
        require_registry(path, writable="serve brings its schema up to date and records "
                                        "rollbacks there")
    if repo is not None:  # rollbacks commit there, then ingest it into this database
        if len(paths) > 1:
            raise click.UsageError("--repo needs a single database (each database rolls "
                                   "back in the repository it was ingested from)")
        check_source(repo, paths[0], "main", need_commits=False)
    check_port(host, port)
    run(paths, host=host, port=port, repo=repo, root=root, echo=click.echo)


def _cli_actor(actor: str | None, repo_path: str | None) -> dict[str, Any]:
    """The person running the CLI: --actor (``"Name <email>"`` or an id), else $USER with
    name and email from the repository's Git config (user.name / user.email)."""
    import pygit2

    from .rollback import normalize_actor

    if actor:
        try:
            return normalize_actor(actor)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--actor") from None
    who: dict[str, Any] = {"id": os.environ.get("USER") or getpass.getuser()}
    try:
        found = pygit2.discover_repository(repo_path) if repo_path else None
        config = pygit2.Repository(found).config if found else \
            pygit2.Config.get_global_config()
        who.update(name=config["user.name"], email=config["user.email"])
    except (pygit2.GitError, KeyError, ValueError, OSError):
        who.pop("name", None)
    return who


class _ActorOption(click.Option):
    """``--actor``, whose help says who the commit author is without it."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        from .rollback import actor_signature

        record = super().get_help_record(ctx)
        if record is None:
            return None
        try:
            sig = actor_signature(_cli_actor(None, os.getcwd()))
            who = f"{sig.name} <{sig.email}>"
        except (ValueError, OSError):
            who = "$USER"
        return record[0], f"{record[1]} Without it, here: {who}."


def actor_option(who: str) -> Callable:
    """``--actor`` of a command that commits (rollback, promote): who ``who``."""
    return click.option(
        "--actor", cls=_ActorOption,
        help=f'Who {who}, "Name <email>" or a user id; becomes the commit author '
             "(an id alone: <id>@aureacore-db). Default: your Git identity in the "
             "repository (user.name <user.email>), else $USER.")


@click.command()
@click.argument("service")
@click.option("--to", "to", required=True,
              help="Commit (sha, short sha or revision) whose version to restore.")
@db_option
@local_repo_option
@actor_option("rolls back")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (a rollback that breaks other services "
                   "still needs --allow-breaking).")
@click.option("--allow-breaking", is_flag=True,
              help="With --yes: roll back even when the preview shows other services "
                   "going into ERROR.")
@click.option("--dry-run", is_flag=True, help="Print the preview only; write nothing.")
@env_option
@json_option("the plan, its preview and the result")
@remote_options
def rollback(service: str, to: str, db_path: Path, repo: Path | None, actor: str | None,
             yes: bool, allow_breaking: bool, dry_run: bool, env_name: str | None,
             as_json: bool) -> None:
    """Roll SERVICE back to its configuration at commit --to.

    Writes the exact bytes of that version to the service's path as a new commit on the
    environment's branch (--env; pushed to origin if there is one) and ingests it. First
    prints a preview: the services whose status the rollback would change (e.g. those it
    breaks) and why.
    Refuses to touch a working tree with uncommitted changes. Every attempt is logged in
    the rollbacks table.
    """
    import json

    from .db import connect, get_meta
    from .gitsource import SourceError
    from .ingest import IngestBusy, ingest
    from .rollback import RollbackRefused, describe
    from .rollback import rollback as do_rollback

    require_registry(db_path, ingested=repo is None,
                     writable="a rollback is ingested and logged there")
    env = stored_environment(db_path, env_name)  # an unknown name: nothing is written
    db = connect(db_path)
    source = get_meta(db, "source")
    branch = env.branch if env else get_meta(db, "branch") or "main"
    repo_path = str(repo) if repo else get_meta(db, "repo_path")
    db.close()
    if not (repo or source):
        raise click.ClickException(f"{db_path} was never ingested; pass --repo")
    if repo is not None:
        check_source(repo, db_path, branch, need_commits=False)
    try:
        ingest(str(repo) if repo else source, db_path, branch=branch)  # the branch as it is now
    except (SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    who = _cli_actor(actor, repo_path)
    try:
        plan = describe(db_path, service, to, repo_path=repo, environment=env_name)
    except LookupError as exc:
        if dry_run:
            raise click.ClickException(str(exc)) from None
        plan = None  # rollback() below records and reports the refusal
    echo = (lambda text, **kw: click.echo(text, err=True)) if as_json else click.echo
    if plan is not None:
        _print_plan(service, plan, echo)
        if plan["target"]["status"] == ERROR:  # said even with --yes
            click.secho(f"warning: the version of {service} at "
                        f"{plan['target']['commit_sha'][:7]} was ERROR", fg="yellow", err=True)
    if dry_run:
        if as_json:
            click.echo(json.dumps({"dry_run": True, **plan}, indent=2, default=str))
        else:
            echo("dry run: nothing was written")
        return
    breaks = bool(plan and plan["preview"] and plan["preview"]["breaks"])
    confirm, allowed = yes, allow_breaking
    if plan is not None and not yes:
        if not sys.stdin.isatty():
            raise click.ClickException("not on a terminal: pass --yes to roll back")
        where = plan["branch"] if plan["environment"] == plan["branch"] else \
            f"{plan['branch']} (environment {plan['environment']})"
        question = f"Commit this to {where} in {plan['repo']}?"
        if breaks:
            question = (f"This breaks {len(plan['preview']['breaks'])} other service(s). "
                        + question)
        click.confirm(question, abort=True, err=as_json)
        confirm = allowed = True
    tip = plan["tip"] if plan else None
    try:
        result = do_rollback(db_path, service, to, actor=who, repo_path=repo,
                             expected_head=tip, confirm=confirm, allow_breaking=allowed,
                             via="cli", environment=env_name)
    except RollbackRefused as refused:
        if as_json:
            click.echo(json.dumps(refused.result.as_dict(), indent=2, default=str))
            sys.exit(refused.exit_code)
        hint = " Pass --allow-breaking to roll back anyway." \
            if refused.result.outcome == "breaking" else ""
        error = click.ClickException(f"{refused.result.outcome}: {refused}{hint}")
        error.exit_code = refused.exit_code
        raise error from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    click.echo(result.message)


def _print_plan(service: str, plan: dict[str, Any], echo: Any) -> None:
    """What the rollback will do, and the services whose status it changes."""
    current, target = plan["current"], plan["target"]
    echo(f"{service}: now version {current['version'] or '?'} "
         f"({current['status']}, config {(current['config_id'] or '-')[:7]})")
    echo(f"  back to version {target['version'] or '?'} of commit "
         f"{target['commit_sha'][:7]} ({target['status']}, "
         f"config {(target['config_id'] or '-')[:7]})")
    preview = plan.get("preview")
    if preview is None:
        return
    if preview["subject_after"] == ERROR:
        echo(f"  {service} would be ERROR at the tip: {preview['subject_reason']}")
    others = [c for c in preview["changes"] if not c["written"]]
    if not others:
        echo("  no other service changes status")
    for change in others:
        verb = "breaks" if change["breaks"] else "fixes" if change["fixes"] else "changes"
        echo(f"  {verb} {change['service_id']}: {change['before'] or 'absent'} -> "
             f"{change['after'] or 'absent'} ({change['reason']})")


@click.command()
@click.argument("name", required=False)
@db_option
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A query parameter; repeat for more.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
def query(name: str | None, db_path: Path, params: tuple[str, ...], fmt: str) -> None:
    """Run canned query NAME from metadata.yml (no NAME: list them), e.g. for cron reports.

    \b
    aureacore-db query errors_now --format csv
    aureacore-db query parameter_blame -p key=replicas -p service=platform/auth
    """
    from .queries import QueryError, canned_queries, parameters, render, run_query

    if not name:
        for qname, spec in canned_queries().items():
            wanted = " ".join(f"-p {p}=…" for p in parameters(spec["sql"]))
            click.echo(f"{qname:18} {spec.get('title', '')}" + (f"  [{wanted}]" if wanted else ""))
        return
    values = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="-p")
        values[key.strip()] = value
    if name in canned_queries():  # an unknown name or parameter is reported first
        require_registry(db_path)
    try:
        result = run_query(db_path, name, values)
    except QueryError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(render(result, fmt), nl=False)


COMMANDS = [serve, rollback, query]

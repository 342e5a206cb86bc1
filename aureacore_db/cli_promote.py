"""CLI command ``promote``: move services from one environment to the next."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from .cli_common import db_option, json_option, local_repo_option, require_registry
from .cli_remote import failure, remote_options
from .cli_web import _cli_actor, actor_option
from .names import ERROR


@click.command()
@click.argument("services", nargs=-1, required=True)
@click.option("--from", "source", required=True, metavar="ENV",
              help="The environment whose versions are promoted, e.g. staging.")
@click.option("--to", "target", required=True, metavar="ENV",
              help="The environment whose branch gets the commit, e.g. prod.")
@db_option
@local_repo_option
@actor_option("promotes")
@click.option("--yes", "-y", is_flag=True,
              help="Do not ask for confirmation (a promotion that breaks other services "
                   "still needs --allow-breaking, an ERROR source --allow-error).")
@click.option("--allow-error", is_flag=True,
              help="Promote even a version that is ERROR in the source environment.")
@click.option("--allow-breaking", is_flag=True,
              help="With --yes: promote even when the preview shows other services of the "
                   "target environment going into ERROR.")
@click.option("--dry-run", is_flag=True, help="Print the preview only; write nothing.")
@json_option("the plan, its preview and the result")
@remote_options
def promote(services: tuple[str, ...], source: str, target: str, db_path: Path,
            repo: Path | None, actor: str | None, yes: bool, allow_error: bool,
            allow_breaking: bool, dry_run: bool, as_json: bool) -> None:
    """Promote SERVICES from environment --from to environment --to.

    Writes the exact bytes of each service's file in the source environment onto the
    target environment's branch as one new commit (trailer "Promoted-from: BRANCH
    COMMIT"; pushed to origin if there is one) and ingests it. First prints a preview:
    the services whose status in the target the promotion would change (those it breaks
    or fixes) and why; one that breaks other services there is refused unless confirmed
    (--allow-breaking with --yes). Refuses to touch a working tree with uncommitted changes. Every
    attempt is logged in the promotions table.

    \b
    aureacore-db promote platform/auth --from staging --to prod
    """
    from .db import connect, get_meta
    from .gitsource import SourceError
    from .ingest import IngestBusy
    from .promote import PromotionRefused, describe, ingest_environments
    from .promote import promote as do_promote

    require_registry(db_path, writable="a promotion is ingested and logged there")
    db = connect(db_path)
    source_repo = str(repo) if repo else get_meta(db, "source")
    repo_path = str(repo) if repo else get_meta(db, "repo_path")
    db.close()
    if not source_repo:
        raise click.ClickException(f"{db_path} was never ingested; pass --repo")
    try:
        ingest_environments(source_repo, db_path)  # the branches as they are now
    except (SourceError, IngestBusy) as exc:
        raise failure(exc) from exc
    who = _cli_actor(actor, repo_path)
    try:
        plan = describe(db_path, list(services), source, target, repo_path=repo)
    except LookupError as exc:
        if dry_run:
            raise click.ClickException(str(exc)) from None
        plan = None  # promote() below records and reports the refusal
    echo = (lambda text, **kw: click.echo(text, err=True)) if as_json else click.echo
    if plan is not None:
        print_plan(plan, echo)
        for item in plan["services"]:
            if item["source_status"] == ERROR and not item["unchanged"]:  # even with --yes
                click.secho(f"warning: {item['service_id']} is ERROR in "
                            f"{plan['from_environment']}", fg="yellow", err=True)
    if dry_run:
        if as_json:
            plan.pop("repo", None)
            click.echo(json.dumps({"dry_run": True, **plan}, indent=2, default=str))
        else:
            echo("dry run: nothing was written")
        return
    if plan is not None and not yes and not plan["refused"]:
        if not sys.stdin.isatty():
            raise click.ClickException("not on a terminal: pass --yes to promote")
        breaks = (plan["preview"] or {}).get("breaks") or []
        question = f"Commit this to {plan['to_branch']} ({plan['to_environment']})?"
        if breaks:
            question = f"This breaks {len(breaks)} service(s) in " \
                       f"{plan['to_environment']}. " + question
        if plan["needs_confirm"] and not allow_error:
            question = "A version promoted is ERROR in its source. " + question
        click.confirm(question, abort=True, err=as_json)
        allow_error = allow_error or plan["needs_confirm"]  # what the question said
        allow_breaking = allow_breaking or bool(breaks)
    try:
        result = do_promote(db_path, list(services), source, target, actor=who,
                            repo_path=repo, expected_head=plan["expected_head"] if plan
                            else None, allow_error=allow_error,
                            allow_breaking=allow_breaking, via="cli")
    except PromotionRefused as refused:
        if as_json:
            click.echo(json.dumps(refused.result.as_dict(), indent=2, default=str))
            sys.exit(refused.exit_code)
        hint = {"needs_confirm": " Pass --allow-error to promote it anyway.",
                "breaking": " Pass --allow-breaking to promote anyway."}.get(
                    refused.result.outcome, "")
        error = click.ClickException(f"{refused.result.outcome}: {refused}{hint}")
        error.exit_code = refused.exit_code
        raise error from None
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    click.echo(result.message)


def print_plan(plan: dict[str, Any], echo: Any) -> None:
    """Each service's version in both environments, and the target's status changes."""
    src, dst = plan["from_environment"], plan["to_environment"]
    echo(f"promote {src} ({plan['from_branch']} {str(plan['source_commit'])[:7]}) -> "
         f"{dst} ({plan['to_branch']} {plan['expected_head'][:7]})")
    for item in plan["services"]:
        now = (f"version {item['target_version'] or '?'} ({item['target_status']}, config "
               f"{(item['from_config'] or '-')[:7]})" if item["from_config"] else "absent")
        echo(f"  {item['service_id']}: {dst} {now} -> {src} version "
             f"{item['version'] or '?'} ({item['source_status']}, config "
             f"{item['to_config'][:7]})" + ("  [already there]" if item["unchanged"] else "")
             + (f"  [moves {item['target_path']} -> {item['path']}]" if item["moved"] else ""))
    if plan["refused"]:
        echo(f"  nothing to do: {plan['refused']}")
        return
    preview = plan.get("preview") or {}
    for sid, after in (preview.get("written_after") or {}).items():
        if after == ERROR:
            echo(f"  {sid} would be ERROR in {dst}")
    others = [c for c in preview.get("changes", []) if not c["written"]]
    if not others:
        echo(f"  no other service in {dst} changes status")
    for change in others:
        verb = "breaks" if change["breaks"] else "fixes" if change["fixes"] else "changes"
        echo(f"  {verb} {change['service_id']}: {change['before'] or 'absent'} -> "
             f"{change['after'] or 'absent'} ({change['reason']})")


COMMANDS = [promote]

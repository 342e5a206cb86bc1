"""CLI commands of webhooks: ``deliver`` and ``webhooks add / list / remove``.
Registered by :mod:`aureacore_db.cli` through ``COMMANDS``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .cli_common import db_option, json_option, require_registry


@click.command()
@db_option
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file of webhooks, synced into the database first.")
@click.option("--webhook", "only", multiple=True, help="Only this webhook (name or id).")
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--backoff", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds before the first retry; doubles each retry.")
@click.option("--max-backoff", default=60.0, show_default=True, type=click.FloatRange(0))
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds per attempt, connect to last byte of the answer.")
@json_option("the outcome")
def deliver(db_path: Path, config: Path | None, only: tuple[str, ...], max_attempts: int,
            backoff: float, max_backoff: float, timeout: float, as_json: bool) -> None:
    """Send each webhook the events it has not received yet.

    Events go out in order; one that cannot be delivered (after retries) stops that
    webhook until the next run, so nothing is lost while a receiver is down. Exits 1
    when some webhook could not be served.
    """
    from .webhooks import DeliverBusy, Policy, WebhookError
    from .webhooks import deliver as run

    policy = Policy(max_attempts=max_attempts, backoff=backoff, max_backoff=max_backoff,
                    timeout=timeout)
    require_registry(db_path, writable="delivery cursors are kept there")
    try:
        results = run(db_path, config=config, policy=policy, only=list(only) or None)
    except (DeliverBusy, WebhookError) as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results], indent=2))
    else:
        if not results:
            click.echo("no active webhooks", err=True)
        for r in results:
            line = f"{r.webhook}: {r.delivered} delivered, cursor at event {r.cursor}"
            if r.error:
                failed = f" at event {r.failed_event}" if r.failed_event else ""
                line += f"; stopped{failed}: {r.error}"
            click.echo(line)
    if any(r.error for r in results):
        raise SystemExit(1)


@click.group()
def webhooks() -> None:
    """Configure webhooks (receivers of events)."""


@webhooks.command("add")
@click.argument("url")
@db_option
@click.option("--name", help="A name (default: the URL); adding a name again updates it.")
@click.option("--kind", "kinds", multiple=True,
              help="Event kind to send (repeatable; default: all).")
@click.option("--secret", help="HMAC secret, stored in the database.")
@click.option("--secret-env", help="Environment variable holding the secret (not stored).")
@click.option("--from-start", is_flag=True, help="Also send every earlier event.")
def webhooks_add(url: str, db_path: Path, name: str | None, kinds: tuple[str, ...],
                 secret: str | None, secret_env: str | None, from_start: bool) -> None:
    """Add a webhook that receives events at URL."""
    from .db import connect
    from .webhooks import WebhookError, add_webhook

    if secret and secret_env:
        raise click.UsageError("give --secret or --secret-env, not both")
    db = connect(require_registry(db_path, writable="webhooks are kept there"))
    try:
        hook = add_webhook(db, url, name=name, kinds=list(kinds) or None, secret=secret,
                           secret_env=secret_env, from_start=from_start)
    except WebhookError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    click.echo(f"webhook {hook.id} {hook.name} -> {hook.url} "
               f"({', '.join(hook.kinds) if hook.kinds else 'all events'}), "
               f"from event {hook.cursor + 1}")


@webhooks.command("list")
@db_option
@json_option("the webhooks")
def webhooks_list(db_path: Path, as_json: bool) -> None:
    """List webhooks with their cursor and undelivered count (secrets are not shown)."""
    from .db import connect
    from .webhooks import list_webhooks

    db = connect(require_registry(db_path, writable="webhooks are kept there"))
    try:
        hooks = [h.public() for h in list_webhooks(db)]
        for h in hooks:
            kinds = h["kinds"] or []
            where = f" and kind in ({','.join('?' * len(kinds))})" if kinds else ""
            h["pending"] = db.execute(f"select count(*) from events where id > ?{where}",
                                      [h["cursor"], *kinds]).fetchone()[0]
    finally:
        db.close()
    if as_json:
        click.echo(json.dumps(hooks, indent=2))
        return
    for h in hooks:
        click.echo(f"{h['id']:>3} {h['name']}  {h['url']}  "
                   f"kinds={','.join(h['kinds']) if h['kinds'] else 'all'}  "
                   f"{'signed' if h['signed'] else 'unsigned'}  "
                   f"{'active' if h['active'] else 'inactive'}  cursor={h['cursor']}  "
                   f"pending={h['pending']}")


@webhooks.command("remove")
@click.argument("webhook")
@db_option
def webhooks_remove(webhook: str, db_path: Path) -> None:
    """Remove WEBHOOK (name or id); its delivery history stays."""
    from .db import connect
    from .webhooks import WebhookError, remove_webhook

    db = connect(require_registry(db_path, writable="webhooks are kept there"))
    try:
        hook = remove_webhook(db, webhook)
    except WebhookError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    click.echo(f"removed webhook {hook.id} {hook.name}")


COMMANDS = [deliver, webhooks]

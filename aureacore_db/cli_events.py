"""CLI commands of events, dependencies and health: ``deliver``, ``webhooks``, ``deps``,
``health``. Registered by :mod:`aureacore_db.cli` through ``COMMANDS``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click

from .cli_common import read_only, require_registry

DB_OPTION = click.option(
    "--db", "db_path", default="registry.db", show_default=True,
    type=click.Path(dir_okay=False, path_type=Path), help="The registry database.")


def _existing(db_path: Path, why: str) -> Path:
    """An ingested registry database that can be written (``why``), else a clear error."""
    return require_registry(db_path, writable=why)


# -- deliver / webhooks -------------------------------------------------------------
@click.command()
@DB_OPTION
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML file of webhooks, synced into the database first.")
@click.option("--webhook", "only", multiple=True, help="Only this webhook (name or id).")
@click.option("--max-attempts", default=5, show_default=True, type=click.IntRange(1, 100))
@click.option("--backoff", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds before the first retry; doubles each retry.")
@click.option("--max-backoff", default=60.0, show_default=True, type=click.FloatRange(0))
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds per attempt, connect to last byte of the answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
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
    _existing(db_path, "delivery cursors are kept there")
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
@DB_OPTION
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
    db = connect(_existing(db_path, "webhooks are kept there"))
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
@DB_OPTION
@click.option("--json", "as_json", is_flag=True)
def webhooks_list(db_path: Path, as_json: bool) -> None:
    """List webhooks with their cursor and undelivered count (secrets are not shown)."""
    from .db import connect
    from .webhooks import list_webhooks

    db = connect(_existing(db_path, "webhooks are kept there"))
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
@DB_OPTION
def webhooks_remove(webhook: str, db_path: Path) -> None:
    """Remove WEBHOOK (name or id); its delivery history stays."""
    from .db import connect
    from .webhooks import WebhookError, remove_webhook

    db = connect(_existing(db_path, "webhooks are kept there"))
    try:
        hook = remove_webhook(db, webhook)
    except WebhookError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    click.echo(f"removed webhook {hook.id} {hook.name}")


# -- deps ---------------------------------------------------------------------------
def _link_line(link: dict[str, Any]) -> str:
    state = link["status"] or ("MISSING" if not link["present"] else "?")
    kind = "required" if link["required"] else "optional"
    extra = f" {link['version_constraint']}" if link.get("version_constraint") else ""
    via = f"  via {' -> '.join(link['path'])}" if link["depth"] > 1 else ""
    indent = "  " * link["depth"]
    return f"{indent}{link['service']} {link['version'] or ''} [{state}] {kind}{extra}{via}"


def _print_report(report: dict[str, Any]) -> None:
    at = f"{report['commit'][:12]} (seq {report['seq']})" if report["commit"] else "-"
    state = report["status"] or ("MISSING" if not report["present"] else "?")
    click.echo(f"{report['service']} {report['version'] or ''} [{state}] at {at}")
    click.echo("\nDepends on (upstream):")
    for link in report["upstream"] or [{"none": 1}]:
        click.echo(_link_line(link) if "service" in link else "  (nothing)")
    click.echo("\nDepended on by (downstream):")
    for link in report["downstream"] or [{"none": 1}]:
        click.echo(_link_line(link) if "service" in link else "  (nothing)")
    impact = report["impact"]
    click.echo(f"\nIf {report['service']} goes:")
    click.echo(f"  breaks (required chain): "
               f"{', '.join(x['service'] for x in impact['breaks']) or 'nothing'}")
    click.echo(f"  degraded (through an optional edge): "
               f"{', '.join(x['service'] for x in impact['degraded']) or 'nothing'}")
    for cycle in report["cycles"]:
        loop = " -> ".join([*cycle["services"], cycle["services"][0]])
        kind = "a required" if cycle["required"] else "an optional"
        click.echo(f"  on {kind} cycle: {loop}")


@click.command()
@click.argument("service", required=False)
@DB_OPTION
@click.option("--at", "at", metavar="COMMIT", help="A mainline commit (default: the tip).")
@click.option("--cycles", "show_cycles", is_flag=True, help="List dependency cycles.")
@click.option("--order", "show_order", is_flag=True,
              help="A start-up order: dependencies first, in generations.")
@click.option("--depth", type=click.IntRange(1), help="Limit upstream/downstream depth.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def deps(service: str | None, db_path: Path, at: str | None, show_cycles: bool,
         show_order: bool, depth: int | None, as_json: bool) -> None:
    """Dependencies of SERVICE (namespace/name) at a mainline commit: upstream,
    downstream and impact; or every cycle (--cycles); or a topological order (--order).
    """
    from .depgraph import DepGraphError, load_graph

    if not (service or show_cycles or show_order):
        raise click.UsageError("give a SERVICE, --cycles or --order")
    conn = read_only(db_path)
    try:
        graph = load_graph(conn, at)
        out: dict[str, Any] = {"commit": graph.commit, "seq": graph.seq}
        if service:
            out["service"] = graph.report(graph.resolve(service), depth)
        if show_cycles:
            out["cycles"] = [asdict(c) for c in graph.cycles()]
        if show_order:
            out["order"] = asdict(graph.order())
    except DepGraphError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        conn.close()
    if as_json:
        click.echo(json.dumps(out if not service or show_cycles or show_order
                              else out["service"], indent=2))
        return
    if service:
        _print_report(out["service"])
    if show_cycles:
        cycles = out["cycles"]
        click.echo(f"{len(cycles)} cycle(s)")
        for cycle in cycles:
            loop = " -> ".join([*cycle["services"], cycle["services"][0]])
            click.echo(f"  [{'required' if cycle['required'] else 'optional'}] {loop}")
    if show_order:
        order = out["order"]
        for i, generation in enumerate(order["generations"], 1):
            click.echo(f"{i}. {' '.join(generation)}")
        for group in order["cyclic"]:
            click.echo(f"cycle (started together): {' '.join(group)}")
        if order["missing"]:
            click.echo(f"missing (depended on, not present): {' '.join(order['missing'])}")


# -- health -------------------------------------------------------------------------
def _print_results(results: list, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([asdict(r) for r in results]))
        return
    colours = {"passing": "green", "warning": "yellow", "critical": "red"}
    for r in results:
        change = f" (was {r.previous_state})" if r.changed and r.previous_state else ""
        code = r.status_code if r.status_code is not None else "-"
        click.echo(f"{click.style(r.state.upper(), fg=colours[r.state])}{change} "
                   f"{r.service_id} {code} {r.latency_ms}ms {r.error or ''}".rstrip())
    if not results:
        click.echo("no current service declares a health_check url", err=True)


@click.command()
@DB_OPTION
@click.option("--once", "once", is_flag=True, help="Probe once and exit (the default).")
@click.option("--interval", type=click.FloatRange(0.1), metavar="SECONDS",
              help="Probe every SECONDS until interrupted.")
@click.option("--rounds", type=click.IntRange(1), hidden=True,
              help="With --interval: stop after this many rounds.")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1000))
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds per probe, connect to last byte (the ceiling: a service's "
                   "shorter health_check.timeout_s wins).")
@click.option("--json", "as_json", is_flag=True, help="One JSON list per round.")
def health(db_path: Path, once: bool, interval: float | None, rounds: int | None,
           concurrency: int, timeout: float, as_json: bool) -> None:
    """Probe each current service's health_check URL and record the results.

    2xx is passing, 429 warning, anything else or no answer critical. A change of
    state is a health_changed event. See the current_health and health_summary views.
    """
    from .health import check_forever, check_once

    if once and interval is not None:
        raise click.UsageError("--once and --interval exclude each other")
    _existing(db_path, "health records its probes there")
    if interval is None:
        _print_results(check_once(db_path, concurrency=concurrency, timeout=timeout), as_json)
        return
    try:
        check_forever(db_path, interval, concurrency=concurrency, timeout=timeout,
                      rounds=rounds, on_round=lambda r: _print_results(r, as_json))
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


COMMANDS = [deliver, webhooks, deps, health]

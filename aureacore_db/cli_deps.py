"""CLI command ``deps``: one service's dependencies (SERVICE), every cycle (--cycles) or
a start-up order (--order), at a mainline commit. Registered by :mod:`aureacore_db.cli`
through ``COMMANDS``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .cli_common import db_option, json_option, read_only
from .cli_env import env_option, stored_environment

if TYPE_CHECKING:
    from .depgraph import DepGraph


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


def service_report(graph: DepGraph, service: str, depth: int | None) -> dict[str, Any]:
    """``deps SERVICE``: upstream, downstream and impact of one service."""
    return graph.report(graph.resolve(service), depth)


def cycles_report(graph: DepGraph) -> list[dict[str, Any]]:
    """``deps --cycles``: every dependency cycle."""
    return [asdict(c) for c in graph.cycles()]


def order_report(graph: DepGraph) -> dict[str, Any]:
    """``deps --order``: a start-up order, dependencies first, in generations."""
    return asdict(graph.order())


def _print_cycles(cycles: list[dict[str, Any]]) -> None:
    click.echo(f"{len(cycles)} cycle(s)")
    for cycle in cycles:
        loop = " -> ".join([*cycle["services"], cycle["services"][0]])
        click.echo(f"  [{'required' if cycle['required'] else 'optional'}] {loop}")


def _print_order(order: dict[str, Any]) -> None:
    for i, generation in enumerate(order["generations"], 1):
        click.echo(f"{i}. {' '.join(generation)}")
    for group in order["cyclic"]:
        click.echo(f"cycle (started together): {' '.join(group)}")
    if order["missing"]:
        click.echo(f"missing (depended on, not present): {' '.join(order['missing'])}")


@click.command()
@click.argument("service", required=False)
@db_option
@click.option("--at", "at", metavar="COMMIT",
              help="A commit of the environment's mainline (default: its tip).")
@click.option("--cycles", "show_cycles", is_flag=True, help="List dependency cycles.")
@click.option("--order", "show_order", is_flag=True,
              help="A start-up order: dependencies first, in generations.")
@click.option("--depth", type=click.IntRange(1), help="Limit upstream/downstream depth.")
@env_option
@json_option("the report")
def deps(service: str | None, db_path: Path, at: str | None, show_cycles: bool,
         show_order: bool, depth: int | None, env_name: str | None, as_json: bool) -> None:
    """Dependencies of SERVICE (namespace/name) at a mainline commit of an environment
    (--env; default the first): upstream, downstream and impact; or every cycle
    (--cycles); or a topological order (--order).
    """
    from .depgraph import DepGraphError, load_graph

    if not (service or show_cycles or show_order):
        raise click.UsageError("give a SERVICE, --cycles or --order")
    conn = read_only(db_path)
    try:
        env = stored_environment(db_path, env_name) if env_name is not None else None
        graph = load_graph(conn, at, env)
        out: dict[str, Any] = {"commit": graph.commit, "seq": graph.seq}
        if env is not None:
            out["environment"] = env.name
        if service:
            out["service"] = service_report(graph, service, depth)
        if show_cycles:
            out["cycles"] = cycles_report(graph)
        if show_order:
            out["order"] = order_report(graph)
    except DepGraphError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        conn.close()
    if as_json:  # one mode, SERVICE: its report alone; otherwise every part asked for
        only_service = service and not (show_cycles or show_order)
        click.echo(json.dumps(out["service"] if only_service else out, indent=2))
        return
    if service:
        _print_report(out["service"])
    if show_cycles:
        _print_cycles(out["cycles"])
    if show_order:
        _print_order(out["order"])


COMMANDS = [deps]

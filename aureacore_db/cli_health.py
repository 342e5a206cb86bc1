"""CLI command ``health``: probe health_check URLs and record the results.
Registered by :mod:`aureacore_db.cli` through ``COMMANDS``."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from .cli_common import db_option, json_option, require_registry
from .cli_env import env_option, stored_environment


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
@db_option
@click.option("--once", "once", is_flag=True, help="Probe once and exit (the default).")
@click.option("--interval", type=click.FloatRange(0.1), metavar="SECONDS",
              help="Probe every SECONDS until interrupted.")
@click.option("--rounds", type=click.IntRange(1), hidden=True,
              help="With --interval: stop after this many rounds.")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 1000))
@click.option("--timeout", default=5.0, show_default=True, type=click.FloatRange(0.01),
              help="Seconds per probe, connect to last byte (the ceiling: a service's "
                   "shorter health_check.timeout_s wins).")
@env_option
@json_option("each round (one list per line)")
def health(db_path: Path, once: bool, interval: float | None, rounds: int | None,
           concurrency: int, timeout: float, env_name: str | None, as_json: bool) -> None:
    """Probe each current service's health_check URL and record the results.

    The services are those of one environment (--env; default the first), and so are
    the recorded checks.

    2xx is passing, 429 warning, anything else or no answer critical. A change of
    state is a health_changed event. See the current_health and health_summary views.
    """
    from .health import check_forever, check_once

    if once and interval is not None:
        raise click.UsageError("--once and --interval exclude each other")
    require_registry(db_path, writable="health records its probes there")
    if env_name is not None:
        stored_environment(db_path, env_name)  # an unknown name: nothing is probed
    if interval is None:
        _print_results(check_once(db_path, concurrency=concurrency, timeout=timeout,
                                  environment=env_name), as_json)
        return
    try:
        check_forever(db_path, interval, concurrency=concurrency, timeout=timeout,
                      rounds=rounds, on_round=lambda r: _print_results(r, as_json),
                      environment=env_name)
    except KeyboardInterrupt:
        click.echo("stopped", err=True)


COMMANDS = [health]

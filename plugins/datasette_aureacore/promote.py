"""The promotion pages: ``/<db>/-/aureacore/promote`` (and ``/-/aureacore/promote`` for
the first registry).

Its own ``datasette`` entry point (``aureacore_promote``)::

    GET  …/promote?service=<id>&from=<env>&to=<env>   confirm page (preview of the target)
    POST …/promote                                     promote (form: service, from, to,
                                                       expected_head, allow_error,
                                                       allow_breaking, csrftoken)

Promoting needs the ``aureacore-promote`` permission, granted only by the allow block at
``plugins: aureacore: promote: allow:`` in metadata (default: the shipped metadata.yml's,
i.e. the root actor). Datasette's CSRF check applies to the POST; its body is bounded
and must be UTF-8 (the plugin's POST guard), and a target branch that moved since the
page was shown is a 409 (nothing written), and so is a promotion whose preview puts
other services of the target into ERROR unless the form's ``allow_breaking`` checkbox
is ticked. A promotion made redirects to the (first) service's page in the target
environment (``?env=``). The work is :func:`aureacore_db.promote.promote`.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette import Forbidden
from datasette.utils.asgi import Response

from . import (
    MAX_FORM_BYTES,
    PREFIX,
    _config,
    _page,
    _refuse,
    _registry_db,
    _truthy,
    allowed_by_block,
    aureacore_url,
    read_body,
    service_url,
)

PERMISSION = "aureacore-promote"
FIELDS = {"service": 200, "from": 64, "to": 64, "expected_head": 40, "allow_error": 8,
          "allow_breaking": 8, "csrftoken": 512}
MAX_SERVICES = 20
_HEAD = re.compile(r"[0-9a-fA-F]{40}")


def promote_url(datasette, database: str, services: list[str] | None = None,
                source: str | None = None, target: str | None = None) -> str:
    """The confirm page's URL (no arguments: the form's action)."""
    url = aureacore_url(datasette, database, "/promote")
    args = [("service", s) for s in services or []] + [
        (k, v) for k, v in (("from", source), ("to", target)) if v]
    return url + (f"?{urlencode(args)}" if args else "")


async def _read_form(request) -> dict[str, list[str]] | Response:
    """The url-encoded POST form (repeatable ``service``), bounded like the rollback's."""
    body = await read_body(request, MAX_FORM_BYTES)
    if body is None:
        return _refuse(413, f"the form is larger than {MAX_FORM_BYTES} bytes", None)
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, errors="strict",
                          max_num_fields=len(FIELDS) + MAX_SERVICES)
    except (UnicodeDecodeError, ValueError):
        return _refuse(400, "the form is not UTF-8 url-encoded text", None)
    form: dict[str, list[str]] = {}
    for key, value in pairs:
        if len(value) > FIELDS.get(key, 0):
            return _refuse(400, f"form field {key[:40]!r} is unknown or too long", None)
        form.setdefault(key, []).append(value)
    return form


def _first(form: dict[str, list[str]], key: str) -> str:
    return (form.get(key) or [""])[0]


def _forbidden(fmt: str | None, services: list[str]) -> Response:
    message = f"not allowed: {PERMISSION}"
    if fmt == "json":
        return Response.json({"ok": False, "outcome": "forbidden", "error": message,
                              "services": services}, status=403)
    raise Forbidden(f"You may not promote services ({PERMISSION})")


def plan(db_path: str, services: list[str], source: str, target: str,
         repo: str | None) -> dict[str, Any]:
    """:func:`aureacore_db.promote.describe` for the confirm page; the database first
    catches up when the target branch moved since the last ingest, so that the versions
    shown and the preview are of the same head. Raises :class:`LookupError`."""
    from aureacore_db.promote import catch_up, describe

    found = describe(db_path, services, source, target, repo_path=repo)
    if found["expected_head"] != found["target_tip"] and catch_up(db_path, repo):
        found = describe(db_path, services, source, target, repo_path=repo)
    found.pop("repo", None)  # a server path: not for the page
    return found


async def promote_view(datasette, request):
    """GET: the confirm page. POST: promote (:func:`aureacore_db.promote.promote`)."""
    fmt = request.url_vars.get("format")
    db = await _registry_db(datasette, request)
    services = request.args.getlist("service")
    if not await datasette.permission_allowed(request.actor, PERMISSION, default=False):
        # refused before the body is read or anything computed: writes nothing at all
        return _forbidden(fmt, services)
    if request.method != "POST":
        return await confirm_page(datasette, request, db, fmt)
    form = await _read_form(request)
    if isinstance(form, Response):
        return _refuse(form.status, form.body, fmt) if fmt == "json" else form
    return await _perform(datasette, request, db, fmt, form)


async def confirm_page(datasette, request, db, fmt: str | None) -> Response:
    services = [s for s in request.args.getlist("service") if s]
    source, target = request.args.get("from") or "", request.args.get("to") or ""
    if not services or not source or not target:
        return _refuse(400, "say which service to promote, from and to which environment "
                            "(?service=<id>&from=<env>&to=<env>)", fmt)
    if len(services) > MAX_SERVICES or any(
            len(v) > FIELDS[k] for k, values in (("service", services), ("from", [source]),
                                                 ("to", [target])) for v in values):
        return _refuse(400, "too many services, or a parameter too long", fmt)
    repo = _config(datasette, db.name).get("repo")
    try:
        found = await asyncio.to_thread(plan, db.path, services, source, target, repo)
    except LookupError as exc:
        return _refuse(404, str(exc), fmt)
    diffs = {s["service_id"]: service_url(datasette, s["service_id"], "/diff?" + urlencode(
        {"from": s["target_change"], "to": s["source_change"]}), db.name)
        for s in found["services"] if s["target_change"] and s["source_change"]}
    return await _page(datasette, request, "aureacore_promote.html", found, fmt,
                       database=db.name, mode="confirm", diffs=diffs,
                       promote_url=promote_url(datasette, db.name))


async def _perform(datasette, request, db, fmt: str | None,
                   form: dict[str, list[str]]) -> Response:
    from aureacore_db.promote import (
        PromotionRefused,
        PromotionResult,
        catch_up,
        promote,
    )
    from aureacore_db.rollback import normalize_actor

    services = [s for s in form.get("service", []) if s]
    source, target = _first(form, "from"), _first(form, "to")
    expected = _first(form, "expected_head")
    if not services or not source or not target:
        return _refuse(400, "say which service to promote, from and to which environment "
                            "(form fields 'service', 'from', 'to')", fmt)
    if not _HEAD.fullmatch(expected):
        return _refuse(400, "expected_head must be the full 40-hex head of the target "
                            "branch the page showed", fmt)
    repo = _config(datasette, db.name).get("repo")
    try:
        result = await asyncio.to_thread(
            promote, db.path, services, source, target, actor=request.actor,
            repo_path=repo, expected_head=expected,
            allow_error=_truthy(_first(form, "allow_error")),
            allow_breaking=_truthy(_first(form, "allow_breaking")), via="web")
    except PromotionRefused as refused:
        result = refused.result
        if result.outcome == "stale_head":  # so that a reload shows the branch as it is
            await asyncio.to_thread(catch_up, db.path, repo)
    except Exception as exc:  # recorded by promote(); show it instead of a bare 500
        result = PromotionResult(from_environment=source, to_environment=target,
                                 actor_id=str(normalize_actor(request.actor)["id"]),
                                 outcome="error", message=f"{type(exc).__name__}: {exc}")
    if fmt == "json":
        return Response.json(result.as_dict(), status=result.http_status, default=str)
    if result.ok:
        datasette.add_message(request, result.message, datasette.INFO)
        return Response.redirect(service_url(
            datasette, services[0], "?" + urlencode({"env": result.to_environment}),
            db.name), status=303)
    return await _page(datasette, request, "aureacore_promote.html",
                       {"result": result.as_dict()}, None, status=result.http_status,
                       database=db.name, mode="result", services=services,
                       retry_url=promote_url(datasette, db.name, services, source, target))


def routes() -> list:
    """The promotion routes (registered by the package's ``register_routes``)."""
    fmt = r"(\.(?P<format>json))?$"
    return [(rf"^/(?P<database>[^/]+){PREFIX}/promote{fmt}", promote_view),
            (rf"^{PREFIX}/promote{fmt}", promote_view)]


def permission_allowed(datasette, actor) -> bool:
    """``aureacore-promote``: only actors matched by the plugin's promote allow block."""
    return allowed_by_block(datasette, actor, "promote")

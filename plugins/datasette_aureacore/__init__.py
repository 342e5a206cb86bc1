"""Datasette plugin for aureacore-db: service pages, links, and the rollback action.

Pages (each also as ``.json``)::

    /-/aureacore                          services overview
    /-/aureacore/services/<ns>/<name>     one service (config, status, timeline, deps)
    /-/aureacore/services/<ns>/<name>/diff?from=<commit>&to=<commit>
    /-/aureacore/commits/<sha>            one commit (what it changed, statuses moved)
    POST /-/aureacore/services/<ns>/<name>/rollback

Rolling back needs the ``aureacore-rollback`` permission, granted only by the allow
block at ``plugins: aureacore: rollback: allow:`` in metadata.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import sqlite3
import weakref
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from datasette import Forbidden, NotFound, hookimpl
from datasette.utils import actor_matches_allow
from datasette.utils.asgi import Response
from jinja2 import FileSystemLoader
from markupsafe import Markup, escape

PLUGIN = "aureacore"
PERMISSION = "aureacore-rollback"
PREFIX = "/-/aureacore"
TEMPLATES = Path(__file__).resolve().parent / "templates"
TIMELINE_LIMIT = 200
SERVICE_COLUMNS = {"service_id", "depends_on"}
SERVICE_TABLES = {"services", "current_services", "services_in_error"}
COMMIT_COLUMNS = {"commit_sha", "first_commit", "last_commit", "target_commit", "new_commit",
                  "head_before"}
_SHA = re.compile(r"[0-9a-f]{40}")
LINK_COLUMNS = SERVICE_COLUMNS | COMMIT_COLUMNS | {"id", "sha", "name"}

_REGISTRY_NAMES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


# --------------------------------------------------------------------------- helpers
def _config(datasette) -> dict[str, Any]:
    return datasette.plugin_config(PLUGIN) or {}


def registry_name(datasette) -> str | None:
    """Name of the registry database: plugin config ``database``, else the one found."""
    found = _REGISTRY_NAMES.get(datasette)  # set at startup; cheap, used per table cell
    if found is not None:
        return found
    configured = _config(datasette).get("database")
    if configured:
        return configured
    names = [n for n in datasette.databases if n not in ("_internal", "_memory")]
    return names[0] if names else None


async def _find_registry(datasette) -> str | None:
    for name, db in datasette.databases.items():
        if name in ("_internal", "_memory"):
            continue
        tables = set(await db.table_names())
        if {"services", "commits", "history"} <= tables:
            return name
    return None


def service_url(datasette, sid: str, suffix: str = "") -> str:
    return datasette.urls.path(f"{PREFIX}/services/{quote(sid, safe='/')}{suffix}")


def commit_url(datasette, sha: str, suffix: str = "") -> str:
    return datasette.urls.path(f"{PREFIX}/commits/{sha}{suffix}")


def subject(message: str | None) -> str:
    return (message or "").split("\n", 1)[0]


def _rows(conn: sqlite3.Connection, sql: str, params: Any = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _row(conn: sqlite3.Connection, sql: str, params: Any = ()) -> dict[str, Any] | None:
    found = _rows(conn, sql, params)
    return found[0] if found else None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("select 1 from sqlite_master where type = 'table' and name = ?",
                        [name]).fetchone() is not None


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    found = conn.execute("select value from aureacore_meta where key = ?", [key]).fetchone()
    return found[0] if found else None


def _prefix_range(text: str) -> tuple[str, str]:
    text = text.strip().lower()
    return text, text + "g"


SUBJECT_SQL = "substr(m.message, 1, instr(m.message || char(10), char(10)) - 1)"


# --------------------------------------------------------------------------- page data
def overview_data(conn: sqlite3.Connection) -> dict[str, Any]:
    """Counts per status and namespace, services in ERROR, recent changes."""
    counts = {row["status"] or "(none)": row["n"] for row in _rows(
        conn, "select status, count(*) as n from services where removed = 0 "
              "group by status order by status")}
    namespaces = _rows(conn, """
        select namespace, count(*) as services,
               sum(status = 'CONFIGURED') as configured, sum(status = 'ERROR') as error,
               sum(status = 'PENDING') as pending, sum(warning_count > 0) as with_warnings
        from services where removed = 0 group by namespace order by namespace""")
    data = {
        "tip": _meta(conn, "tip"),
        "branch": _meta(conn, "branch"),
        "source": _meta(conn, "source"),
        "services": sum(counts.values()),
        "removed": conn.execute("select count(*) from services where removed = 1").fetchone()[0],
        "commits": conn.execute("select count(*) from commits").fetchone()[0],
        "counts_by_status": counts,
        "namespaces": namespaces,
        "errors": _rows(conn, """
            select id as service_id, version, status_message, last_commit, last_updated
            from services where removed = 0 and status = 'ERROR' order by id limit 200"""),
        "recent_changes": _rows(conn, f"""
            select h.seq, h.commit_sha, h.committed_at, h.author_name, h.service_id,
                   h.change, h.status, {SUBJECT_SQL} as subject
            from history h join commits m on m.sha = h.commit_sha
            where h.mainline = 1 order by h.seq desc, h.id desc limit 20"""),
        "last_ingest": _row(conn, "select started_at, finished_at, outcome, commits_added, "
                                  "duration_s from ingest_runs order by id desc limit 1"),
        "recent_rollbacks": _rows(conn, "select id, attempted_at, actor_id, service_id, "
                                        "target_commit, new_commit, outcome, message "
                                        "from rollbacks order by id desc limit 10")
        if _has_table(conn, "rollbacks") else [],
    }
    return data


def service_data(conn: sqlite3.Connection, sid: str) -> dict[str, Any] | None:
    """Everything the service page shows."""
    service = _row(conn, "select * from services where id = ?", [sid])
    if service is None:
        return None
    config = None
    if service["config_id"]:
        config = _row(conn, "select id, path, format, size, raw, version, schema_version, "
                            "parse_error, parse_line, parse_column from configs where id = ?",
                      [service["config_id"]])
    latest_status = _row(conn, "select id, commit_sha, status, previous_status, message, "
                               "checked_at from status where service_id = ? and mainline = 1 "
                               "order by seq desc, id desc limit 1", [sid])
    problems = []
    if latest_status and not service["removed"]:
        problems = _rows(conn, "select severity, kind, json_path, message, schema, commit_sha "
                               "from validation_errors where status_id = ? "
                               "order by severity, json_path", [latest_status["id"]])
    timeline = _rows(conn, f"""
        select h.id, h.seq, h.commit_sha, h.committed_at, h.author_name, h.change, h.path,
               h.old_path, h.status, h.config_id, h.previous_config_id, h.mainline,
               c.version, {SUBJECT_SQL} as subject
        from history h join commits m on m.sha = h.commit_sha
        left join configs c on c.id = h.config_id
        where h.service_id = ? order by h.seq desc, h.id desc limit ?""",
                     [sid, TIMELINE_LIMIT])
    total = conn.execute("select count(*) from history where service_id = ?",
                         [sid]).fetchone()[0]
    for row, older in zip(timeline, timeline[1:] + [None], strict=True):
        row["previous_commit"] = older["commit_sha"] if older and older["config_id"] else None
        row["is_current"] = bool(row["config_id"]) and row["config_id"] == service["config_id"]
        row["can_roll_back_to"] = bool(row["config_id"]) and not row["is_current"]
    return {
        "service": service,
        "tip": _meta(conn, "tip"),
        "branch": _meta(conn, "branch"),
        "config": config,
        "status": latest_status,
        "problems": problems,
        "timeline": timeline,
        "timeline_total": total,
        "parameter_changes": _rows(conn, """
            select key, change, old_value, new_value, commit_sha, committed_at, author_name
            from parameter_changes where service_id = ?
            order by seq desc, id desc limit ?""", [sid, TIMELINE_LIMIT]),
        "upstream": _rows(conn, """
            select d.depends_on as service_id, d.version_constraint, d.required,
                   t.version, t.status, coalesce(t.removed, 1) as missing
            from dependencies d left join services t on t.id = d.depends_on
            where d.config_id = ? and d.service_id = ? order by d.position""",
                          [service["config_id"] or "", sid]),
        "downstream": _rows(conn, """
            select s.id as service_id, s.status, s.version, d.version_constraint, d.required
            from services s
            cross join dependencies d on d.config_id = s.config_id and d.service_id = s.id
            where +d.depends_on = ? and s.removed = 0 order by s.id""", [sid]),
        "rollbacks": _rows(conn, "select id, attempted_at, actor_id, target_commit, "
                                 "new_commit, outcome, message from rollbacks "
                                 "where service_id = ? order by id desc limit 20", [sid])
        if _has_table(conn, "rollbacks") else [],
    }


def _version_at(conn: sqlite3.Connection, sid: str, commit: str) -> dict[str, Any] | None:
    """The service's history row at (or, on the mainline, as of) a commit."""
    low, high = _prefix_range(commit)
    found = _rows(conn, "select sha, seq from commits where sha >= ? and sha < ? limit 2",
                  [low, high])
    if len(found) != 1:
        return None
    sha, seq = found[0]["sha"], found[0]["seq"]
    columns = ("h.id, h.commit_sha, h.seq, h.committed_at, h.author_name, h.change, h.path, "
               "h.status, h.config_id, c.raw, c.content, c.version, c.format")
    row = _row(conn, f"select {columns} from history h left join configs c on c.id = h.config_id "
                     "where h.service_id = ? and h.commit_sha = ? order by h.id desc limit 1",
               [sid, sha])
    if row is None:
        row = _row(conn, f"select {columns} from history h "
                         "left join configs c on c.id = h.config_id "
                         "where h.service_id = ? and h.mainline = 1 and h.seq <= ? "
                         "order by h.seq desc, h.id desc limit 1", [sid, seq])
    return row


def diff_data(conn: sqlite3.Connection, sid: str, old: str | None,
              new: str | None) -> dict[str, Any] | None:
    """Text diff and per-key changes between two versions of a service."""
    from aureacore_db.leafdiff import leaf_changes

    if conn.execute("select 1 from services where id = ?", [sid]).fetchone() is None:
        return None
    versions = _rows(conn, """
        select h.commit_sha, h.seq, h.committed_at, h.author_name, h.change, h.status,
               h.config_id, c.version
        from history h left join configs c on c.id = h.config_id
        where h.service_id = ? and h.config_id is not null
        order by h.seq desc, h.id desc limit 1000""", [sid])
    if new is None and versions:
        new = versions[0]["commit_sha"]
    if old is None and len(versions) > 1:
        old = versions[1]["commit_sha"]
    before = _version_at(conn, sid, old) if old else None
    after = _version_at(conn, sid, new) if new else None
    old_raw = (before or {}).get("raw") or ""
    new_raw = (after or {}).get("raw") or ""
    text = list(difflib.unified_diff(
        old_raw.splitlines(), new_raw.splitlines(),
        fromfile=f"{sid} @ {(before or {}).get('commit_sha', '')[:10]}",
        tofile=f"{sid} @ {(after or {}).get('commit_sha', '')[:10]}", lineterm=""))
    old_doc = json.loads(before["content"]) if before and before.get("content") else None
    new_doc = json.loads(after["content"]) if after and after.get("content") else None
    changes = [{"key": key, "change": change, "old_value": old_value, "new_value": new_value}
               for key, change, old_value, new_value in leaf_changes(old_doc, new_doc)]
    strip = ("raw", "content")
    return {
        "service_id": sid,
        "from": {k: v for k, v in before.items() if k not in strip} if before else None,
        "to": {k: v for k, v in after.items() if k not in strip} if after else None,
        "requested": {"from": old, "to": new},
        "diff": text,
        "changes": changes,
        "versions": versions,
    }


def commit_data(conn: sqlite3.Connection, sha: str) -> dict[str, Any] | None:
    """What a commit changed and which statuses it moved."""
    low, high = _prefix_range(sha)
    found = _rows(conn, "select * from commits where sha >= ? and sha < ? limit 2", [low, high])
    if len(found) != 1:
        return None
    commit = found[0]
    sha = commit["sha"]
    commit["parents"] = json.loads(commit["parents"] or "[]")
    commit["subject"] = subject(commit["message"])
    children = _rows(conn, "select sha from commits where parents like ? order by seq",
                     [f'%"{sha}"%']) if commit["seq"] else []
    return {
        "commit": commit,
        "children": [c["sha"] for c in children],
        "changes": _rows(conn, """
            select h.id, h.service_id, h.change, h.path, h.old_path, h.status, h.config_id,
                   h.previous_config_id, c.version
            from history h left join configs c on c.id = h.config_id
            where h.commit_sha = ? order by h.service_id""", [sha]),
        "parameter_changes": _rows(conn, """
            select service_id, key, change, old_value, new_value from parameter_changes
            where commit_sha = ? order by service_id, id""", [sha]),
        "statuses": _rows(conn, """
            select service_id, previous_status, status, message from status
            where commit_sha = ? order by service_id""", [sha]),
        "problems": _rows(conn, """
            select service_id, severity, kind, json_path, message from validation_errors
            where commit_sha = ? order by service_id, severity, json_path""", [sha]),
        "rollback": _row(conn, "select id, actor_id, service_id, target_commit, attempted_at "
                               "from rollbacks where new_commit = ?", [sha])
        if _has_table(conn, "rollbacks") else None,
    }


# --------------------------------------------------------------------------- rendering
def highlight(raw: str | None, fmt: str | None) -> Markup:
    """Syntax-highlighted config as HTML (Pygments)."""
    from pygments import highlight as pyg_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import JsonLexer, YamlLexer

    if raw is None:
        return Markup("")
    lexer = JsonLexer() if fmt == "json" else YamlLexer()
    return Markup(pyg_highlight(raw, lexer, HtmlFormatter(cssclass="aureacore-highlight",
                                                          linenos="inline")))


def highlight_css() -> Markup:
    from pygments.formatters import HtmlFormatter

    return Markup(HtmlFormatter().get_style_defs(".aureacore-highlight"))


async def _page(datasette, request, template: str, data: dict[str, Any], fmt: str | None,
                status: int = 200, **extra: Any) -> Response:
    if fmt == "json":
        return Response.json(data, status=status, default=str)
    context = {**data, **extra, "data": data, "service_url": lambda sid, s="": service_url(
        datasette, sid, s), "commit_url": lambda sha, s="": commit_url(datasette, sha, s),
        "database": registry_name(datasette), "json_url": _json_url(request),
        "subject": subject}
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status)


def _json_url(request) -> str:
    path = request.path + ".json"
    return path + (f"?{request.query_string}" if request.query_string else "")


async def _registry_db(datasette, request):
    """The registry database, after the view permissions of Datasette itself."""
    name = registry_name(datasette)
    if name is None or name not in datasette.databases:
        raise NotFound("no aureacore registry database is attached")
    await datasette.ensure_permissions(request.actor, [("view-database", name),
                                                       "view-instance"])
    return datasette.get_database(name)


# --------------------------------------------------------------------------- views
async def overview_view(datasette, request):
    db = await _registry_db(datasette, request)
    data = await db.execute_fn(overview_data)
    data["database"] = db.name
    return await _page(datasette, request, "aureacore_overview.html", data,
                       request.url_vars.get("format"))


async def service_view(datasette, request):
    db = await _registry_db(datasette, request)
    sid = unquote(request.url_vars["sid"])
    data = await db.execute_fn(lambda conn: service_data(conn, sid))
    if data is None:
        raise NotFound(f"no service {sid}")
    allowed = await datasette.permission_allowed(request.actor, PERMISSION, default=False)
    data["can_rollback"] = bool(allowed)
    config = data["config"] or {}
    return await _page(datasette, request, "aureacore_service.html", data,
                       request.url_vars.get("format"),
                       highlighted=highlight(config.get("raw"), config.get("format")),
                       highlight_css=highlight_css(),
                       rollback_url=service_url(datasette, sid, "/rollback"))


async def diff_view(datasette, request):
    db = await _registry_db(datasette, request)
    sid = unquote(request.url_vars["sid"])
    old, new = request.args.get("from") or None, request.args.get("to") or None
    data = await db.execute_fn(lambda conn: diff_data(conn, sid, old, new))
    if data is None:
        raise NotFound(f"no service {sid}")
    return await _page(datasette, request, "aureacore_diff.html", data,
                       request.url_vars.get("format"))


async def commit_view(datasette, request):
    db = await _registry_db(datasette, request)
    sha = request.url_vars["sha"]
    data = await db.execute_fn(lambda conn: commit_data(conn, sha))
    if data is None:
        raise NotFound(f"no commit {sha} (or more than one starts with it)")
    return await _page(datasette, request, "aureacore_commit.html", data,
                       request.url_vars.get("format"))


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "on", "yes", "true")


async def rollback_view(datasette, request):
    """POST: roll the service back to the version at form field ``to``."""
    from aureacore_db.rollback import (
        RollbackRefused,
        RollbackResult,
        catch_up,
        normalize_actor,
        record_attempt,
        rollback,
    )

    sid = unquote(request.url_vars["sid"])
    fmt = request.url_vars.get("format")
    if request.method != "POST":
        return Response.redirect(service_url(datasette, sid))
    db = await _registry_db(datasette, request)
    form = await request.post_vars()
    actor = request.actor
    to, expected = form.get("to") or "", form.get("expected_head") or None
    if not await datasette.permission_allowed(actor, PERMISSION, default=False):
        refused = RollbackResult(service_id=sid, target_commit=to,
                                 actor_id=str(normalize_actor(actor)["id"]),
                                 expected_head=expected, outcome="forbidden",
                                 message=f"not allowed: {PERMISSION}")
        await asyncio.to_thread(record_attempt, db.path, refused, normalize_actor(actor), "web")
        if fmt == "json":
            return Response.json({**refused.as_dict(), "error": refused.message}, status=403)
        raise Forbidden(f"You may not roll services back ({PERMISSION})")
    repo = _config(datasette).get("repo")
    try:
        result = await asyncio.to_thread(
            rollback, db.path, sid, to, actor=actor, repo_path=repo, expected_head=expected,
            confirm=_truthy(form.get("confirm")), via="web")
    except RollbackRefused as refused:
        result = refused.result
        if result.outcome == "stale_head":  # so that a reload shows the branch as it is
            await asyncio.to_thread(catch_up, db.path, repo)
    except Exception as exc:  # recorded by rollback(); show it instead of a bare 500
        result = RollbackResult(service_id=sid, target_commit=to,
                                actor_id=str(normalize_actor(actor)["id"]), outcome="error",
                                message=f"{type(exc).__name__}: {exc}")
    if fmt == "json":
        return Response.json(result.as_dict(), status=result.http_status, default=str)
    if result.ok:
        datasette.add_message(request, result.message, datasette.INFO)
        return Response.redirect(service_url(datasette, sid), status=303)
    return await _page(datasette, request, "aureacore_rollback.html", {"result":
                       result.as_dict()}, None, status=result.http_status,
                       rollback_url=service_url(datasette, sid, "/rollback"),
                       service_id=sid, form={"to": to, "expected_head": expected or ""})


# --------------------------------------------------------------------------- hooks
@hookimpl
def register_routes(datasette):
    fmt = r"(\.(?P<format>json))?$"
    two = r"(?P<sid>[^/]+/[^/]+?)"
    return [
        (rf"^{PREFIX}{fmt}", overview_view),
        (rf"^{PREFIX}/services/{two}/diff{fmt}", diff_view),
        (rf"^{PREFIX}/services/{two}/rollback{fmt}", rollback_view),
        (rf"^{PREFIX}/services/(?P<sid>.+?){fmt}", service_view),
        (rf"^{PREFIX}/commits/(?P<sha>[0-9a-fA-F]{{4,40}}){fmt}", commit_view),
    ]


@hookimpl
def permission_allowed(datasette, actor, action, resource):
    """``aureacore-rollback``: only actors matched by the plugin's rollback allow block."""
    if action != PERMISSION:
        return None
    allow = (_config(datasette).get("rollback") or {}).get("allow")
    if allow is None:
        return False
    return actor_matches_allow(actor, allow)


@hookimpl
def prepare_jinja2_environment(env, datasette):
    """Put this plugin's templates first (a --plugins-dir plugin gets none otherwise)."""
    loaders = getattr(env.loader, "loaders", None)
    if loaders is not None and not any(getattr(lo, "searchpath", None) == [str(TEMPLATES)]
                                       for lo in loaders):
        loaders.insert(0, FileSystemLoader(str(TEMPLATES)))


@hookimpl
def startup(datasette):
    async def inner():
        from aureacore_db.rollback import ensure_rollbacks_table

        name = _config(datasette).get("database") or await _find_registry(datasette)
        if name is None:
            return
        _REGISTRY_NAMES[datasette] = name
        db = datasette.get_database(name)
        if db.is_mutable and not await db.table_exists("rollbacks"):
            import sqlite_utils

            await db.execute_write_fn(
                lambda conn: ensure_rollbacks_table(sqlite_utils.Database(conn)))

    return inner


@hookimpl
def menu_links(datasette, actor, request):
    if registry_name(datasette) is None:
        return None
    return [{"href": datasette.urls.path(PREFIX), "label": "Services overview"}]


@hookimpl
def table_actions(datasette, actor, database, table, request):
    if database != registry_name(datasette):
        return None
    links = [{"href": datasette.urls.path(PREFIX), "label": "Services overview"}]
    if table in SERVICE_TABLES:
        links.append({"href": datasette.urls.table(database, "services") + "?" + urlencode(
            {"status": "ERROR", "removed": 0}), "label": "Services in ERROR"})
    return links


def _link(href: str, text: str, title: str | None = None) -> Markup:
    extra = f' title="{escape(title)}"' if title else ""
    return Markup(f'<a href="{escape(href)}"{extra}>{escape(text)}</a>')


def _row_value(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError, TypeError):
        return None


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    """Link service ids and commit ids in the registry's tables, rows and queries."""
    if column not in LINK_COLUMNS or not isinstance(value, str) or not value:
        return None  # the common case, kept cheap: this runs for every cell shown
    if database != registry_name(datasette):
        return None
    base = datasette.urls.path(PREFIX)
    if column in SERVICE_COLUMNS or (column in ("id", "name") and table in SERVICE_TABLES):
        # the table page links its primary key to the row page, so "name" links here too
        sid = value if column != "name" else _row_value(row, "id")
        if sid:
            href = escape(f"{base}/services/{quote(sid, safe='/')}")
            return Markup(f'<a href="{href}">{escape(value)}</a>')
    if column in COMMIT_COLUMNS or (column == "sha" and table == "commits"):
        if _SHA.fullmatch(value):  # hex: nothing to escape
            return Markup(f'<a href="{base}/commits/{value}" title="{value}">{value[:10]}</a>')
    return None
    if column in SERVICE_COLUMNS or (column == "id" and table in SERVICE_TABLES):
        return _link(service_url(datasette, value), value)
    if column in COMMIT_COLUMNS or (column == "sha" and table == "commits"):
        if _SHA.fullmatch(value):
            return _link(commit_url(datasette, value), value[:10], value)
    return None

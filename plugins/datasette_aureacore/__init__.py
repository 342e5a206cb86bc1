"""Datasette plugin for aureacore-db: service pages, links, and the rollback action.

Installed with aureacore-db and registered through a ``datasette`` entry point, so plain
``datasette registry.db`` serves it. It works on every attached database that is an
aureacore registry (has an ``aureacore_meta`` table). Pages, under ``/<db>/-/aureacore``
(each also as ``.json``; ``/-/aureacore/...`` is the same for the first registry)::

    /<db>/-/aureacore                          services overview
    /<db>/-/aureacore/environments             services x environments (drift, promotion)
    /<db>/-/aureacore/services/<ns>/<name>     one service (config, status, timeline, deps;
                                               ?env=<environment>: in that environment)
    /<db>/-/aureacore/services/<ns>/<name>/diff?from=<commit>&to=<commit>
    /<db>/-/aureacore/services/<ns>/<name>/diff?from_env=<env>&to_env=<env>
    /<db>/-/aureacore/commits/<sha>            one commit (what it changed, statuses moved)
    /<db>/-/aureacore/services/<ns>/<name>/rollback?to=<commit>   confirm page (preview)
    POST /<db>/-/aureacore/services/<ns>/<name>/rollback

For each registry it also provides the canned queries, table titles, descriptions and
facets of the shipped ``metadata.yml`` (its ``registry`` section; local metadata wins).

Rolling back needs the ``aureacore-rollback`` permission, granted only by the allow
block at ``plugins: aureacore: rollback: allow:`` in metadata (default: the shipped
metadata.yml's, i.e. the root actor); promoting (``promote.py``), ``aureacore-promote``.

One entry point: the routes of the dependency page (``deps.py``), the Git push hook
(``githooks.py``) and promotion (``promote.py``) are registered by this module's hooks,
so ``datasette plugins`` lists the plugin once.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import difflib
import json
import re
import sqlite3
import weakref
from typing import Any
from urllib.parse import quote, unquote, urlencode

from datasette import Forbidden, NotFound, hookimpl
from datasette.utils import actor_matches_allow, tilde_decode
from datasette.utils.asgi import Response
from markupsafe import Markup, escape

from aureacore_db.environments import (
    EnvError,
    Environment,
    get_environment,
    list_environments,
)
from aureacore_db.queries import (
    ENV_FUNCTION,
    environment_named,
    environment_parameter_error,
    register_environment_function,
)
from aureacore_db.revisions import (
    COMMIT_PARAM,
    UnknownCommit,
    commit_parameter_error,
    register_sql_function,
)

from .peringest import per_ingest

PLUGIN = "aureacore"
SECRETS_TABLE = "webhook_secrets"
PERMISSION = "aureacore-rollback"
PROMOTE_PERMISSION = "aureacore-promote"  # granted in promote.py
MAX_ENV = 200  # an environment name given in a URL, at most
MATRIX_PAGE = 100  # services per page of the environments matrix
PREFIX = "/-/aureacore"
MAX_FORM_BYTES = 4096  # a rollback form is a few short fields
MAX_FIELD = {"to": 200, "expected_head": 40, "confirm": 8, "allow_breaking": 8,
             "csrftoken": 512, "env": 64}
_HEAD = re.compile(r"[0-9a-fA-F]{40}")
MARKER_TABLE = "aureacore_meta"  # a database with this table is a registry
TIMELINE_LIMIT = 200
CHART_POINTS = 300  # mainline commits drawn in the overview's status chart, at most
SERVICE_COLUMNS = {"service_id", "depends_on"}
SERVICE_TABLES = {"services", "current_services", "services_in_error"}
COMMIT_COLUMNS = {"commit_sha", "first_commit", "last_commit", "target_commit", "new_commit",
                  "head_before"}
_SHA = re.compile(r"[0-9a-f]{40}")
LINK_COLUMNS = SERVICE_COLUMNS | COMMIT_COLUMNS | {"id", "sha", "name"}
PREVIEW_COLUMNS = {"raw", "content", "parameters", "dependencies", "problems", "payload",
                   "old_value", "new_value", "message", "status_message"}
PREVIEW_CHARS = 160

# registry database names per Datasette instance, in attach order (found at startup)
_REGISTRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# the path of the request being answered (render_cell gets no request in Datasette 0.65)
_REQUEST_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("aureacore_path",
                                                                    default="")


# --------------------------------------------------------------------------- helpers
def _config(datasette, database: str | None = None) -> dict[str, Any]:
    return datasette.plugin_config(PLUGIN, database=database) or {}


def registries(datasette) -> list[str]:
    """Names of the attached registry databases (cheap: used per table cell)."""
    return list(_REGISTRIES.get(datasette, ()))


def is_registry(datasette, database: str | None) -> bool:
    return database in _REGISTRIES.get(datasette, ())


def registry_name(datasette) -> str | None:
    """The first registry database (the one ``/-/aureacore`` is about)."""
    found = registries(datasette)
    return found[0] if found else None


async def find_registries(datasette) -> list[str]:
    """Detect the registries among the attached databases (again, if that set changed)."""
    names = [n for n in datasette.databases if n not in ("_internal", "_memory")]
    known = _REGISTRIES.get(datasette)
    if known is not None and getattr(known, "among", None) == names:
        return list(known)
    found = _Found([n for n in names
                    if await datasette.get_database(n).table_exists(MARKER_TABLE)])
    found.among = names
    _REGISTRIES[datasette] = found
    return list(found)


class _Found(tuple):
    """A tuple of registry names that remembers which databases it was chosen among."""

    among: list[str]


def aureacore_url(datasette, database: str | None = None, suffix: str = "") -> str:
    """``/<db>/-/aureacore<suffix>``; without a database, the first registry's short form."""
    if database is None:
        return datasette.urls.path(f"{PREFIX}{suffix}")
    return f"{datasette.urls.database(database)}{PREFIX}{suffix}"


def service_url(datasette, sid: str, suffix: str = "", database: str | None = None) -> str:
    return aureacore_url(datasette, database, f"/services/{quote(sid, safe='/')}{suffix}")


def commit_url(datasette, sha: str, suffix: str = "", database: str | None = None) -> str:
    return aureacore_url(datasette, database, f"/commits/{sha}{suffix}")


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


SUBJECT_SQL = "substr(m.message, 1, instr(m.message || char(10), char(10)) - 1)"


# --------------------------------------------------------------------------- page data
def overview_data(conn: sqlite3.Connection, env: Environment | None = None
                  ) -> dict[str, Any]:
    """Counts per status and namespace, services in ERROR, recent changes: of the first
    environment (``env`` None: the ``services`` table), or of environment ``env``."""
    if env is None:
        src, args = "services", []
        tip = _meta(conn, "tip")
        recent_from = ("history h join commits m on m.sha = h.commit_sha "
                       "where h.mainline = 1")
        recent_args: list[Any] = []
    else:
        src = ("(select e.service_id as id, substr(e.service_id, 1, "
               "instr(e.service_id, '/') - 1) as namespace, e.version, e.status, "
               "e.status_message, e.removed, e.warning_count, e.last_commit, e.last_updated "
               "from environment_services e where e.environment = ?)")
        args, tip = [env.name], env.tip
        recent_from = ("environment_commits ec cross join history h on h.commit_sha = "
                       "ec.commit_sha join commits m on m.sha = h.commit_sha "
                       "where ec.environment = ?")
        recent_args = [env.name]
    counts = {row["status"] or "(none)": row["n"] for row in _rows(
        conn, f"select status, count(*) as n from {src} where removed = 0 "
              "group by status order by status", args)}
    namespaces = _rows(conn, f"""
        select namespace, count(*) as services,
               sum(status = 'CONFIGURED') as configured, sum(status = 'ERROR') as error,
               sum(status = 'PENDING') as pending, sum(warning_count > 0) as with_warnings
        from {src} where removed = 0 group by namespace order by namespace""", args)
    data = {
        "tip": tip,
        "branch": env.branch if env else _meta(conn, "branch"),
        "environment": env.name if env else None,
        "source": _meta(conn, "source"),
        "services": sum(counts.values()),
        "removed": conn.execute(f"select count(*) from {src} where removed = 1",
                                args).fetchone()[0],
        "commits": conn.execute("select count(*) from commits").fetchone()[0],
        "counts_by_status": counts,
        "namespaces": namespaces,
        "errors": _rows(conn, f"""
            select id as service_id, version, status_message, last_commit, last_updated
            from {src} where removed = 0 and status = 'ERROR' order by id limit 200""", args),
        "recent_changes": _rows(conn, f"""
            select h.seq, h.commit_sha, h.committed_at, h.author_name, h.service_id,
                   h.change, h.status, {SUBJECT_SQL} as subject
            from {recent_from} order by h.seq desc, h.id desc limit 20""", recent_args),
        "last_ingest": _row(conn, "select started_at, finished_at, outcome, commits_added, "
                                  "duration_s from ingest_runs order by id desc limit 1"),
        "recent_rollbacks": _rows(conn, """
            select r.id, r.attempted_at, r.actor_id, r.service_id, r.target_commit,
                   r.new_commit, r.outcome, r.message,
                   exists (select 1 from services s where s.id = r.service_id) as service_known,
                   exists (select 1 from commits c where c.sha = r.target_commit) as target_known
            from rollbacks r order by r.id desc limit 10""")
        if _has_table(conn, "rollbacks") else [],
        "status_over_time": status_over_time(conn, env=env),
        "environments": [{"name": e.name, "branch": e.branch, "tip": e.tip}
                         for e in list_environments(conn)],
    }
    return data


def status_over_time(conn: sqlite3.Connection, points: int = CHART_POINTS,
                     env: Environment | None = None) -> list[dict[str, Any]]:
    """Services per status after each mainline commit (at most ``points`` of them, evenly
    spread, the tip always last): one sweep over the mainline status and removal rows
    (of the first environment, or of ``env``)."""
    if env is None:
        commits = conn.execute("select sha, seq, committed_at from commits where mainline = 1 "
                               "order by seq").fetchall()
        line, args = "mainline = 1", []
    else:
        commits = conn.execute(
            "select c.sha, c.seq, c.committed_at from environment_commits e "
            "join commits c on c.sha = e.commit_sha where e.environment = ? order by e.seq",
            [env.name]).fetchall()
        line = ("commit_sha in (select commit_sha from environment_commits "
                "where environment = ?)")
        args = [env.name, env.name]
    if not commits:
        return []
    step = max(1, -(-len(commits) // points))
    chosen = commits[len(commits) - 1::-step][::-1]
    changes = conn.execute(f"""
        select seq, 0 as removal, service_id, status from status where {line}
        union all
        select seq, 1, service_id, null from history where {line} and change = 'removed'
        order by 1, 2""", args)
    current: dict[str, str] = {}
    counts = {"CONFIGURED": 0, "ERROR": 0}
    out = []
    pending = next(changes, None)
    for sha, seq, committed_at in chosen:
        while pending is not None and pending[0] <= seq:
            _, removal, sid, status = pending
            before = current.pop(sid, None) if removal else current.get(sid)
            if before in counts:
                counts[before] -= 1
            if not removal:
                current[sid] = status
                if status in counts:
                    counts[status] += 1
            pending = next(changes, None)
        out.append({"commit_sha": sha, "seq": seq, "committed_at": committed_at, **counts})
    return out



# every mainline commit and status row goes into the chart: drawn once per ingest
# (0.5 s at 10,000 services x 100,000 commits)
status_over_time = per_ingest(status_over_time)

def _on_line(alias: str, env: Environment | None) -> tuple[str, list[Any]]:
    """SQL that row ``alias`` (with a ``commit_sha``) is on the mainline of ``env`` (None:
    the first environment, i.e. the ``mainline`` column), and its parameters."""
    if env is None:
        return f"{alias}.mainline = 1", []
    return (f"exists (select 1 from environment_commits ec where ec.environment = ? "
            f"and ec.commit_sha = {alias}.commit_sha)", [env.name])


ENV_SERVICE_SQL = """
    select s.service_id as id, substr(s.service_id, 1, instr(s.service_id, '/') - 1)
             as namespace, substr(s.service_id, instr(s.service_id, '/') + 1) as name,
           s.path, s.config_id, s.version, s.status, s.status_message, s.removed,
           json_extract(c.content, '$.owner') as owner,
           json_extract(c.content, '$.description') as description,
           s.error_count, s.warning_count, s.first_commit, s.last_commit, s.last_updated
    from environment_services s left join configs c on c.id = s.config_id
    where s.environment = ? and s.service_id = ?"""


def service_environments(conn: sqlite3.Connection, sid: str) -> list[dict[str, Any]]:
    """The service in every environment, in promotion order (``state`` live, removed or
    absent)."""
    if not _has_table(conn, "environment_services"):
        return []
    return _rows(conn, """
        select e.name as environment, e.branch, e.position, s.version, s.status,
               s.config_id, s.last_commit, s.last_updated,
               case when s.service_id is null then 'absent'
                    when s.removed then 'removed' else 'live' end as state
        from environments e
        left join environment_services s on s.environment = e.name and s.service_id = ?
        order by e.position, e.name""", [sid])


def service_data(conn: sqlite3.Connection, sid: str,
                 env: Environment | None = None) -> dict[str, Any] | None:
    """Everything the service page shows: as of the first environment's tip (``env``
    None), or of environment ``env``'s (None when the service was never in it)."""
    if env is None:
        service = _row(conn, "select * from services where id = ?", [sid])
    else:
        service = _row(conn, ENV_SERVICE_SQL, [env.name, sid])
    if service is None:
        return None
    config = None
    if service["config_id"]:
        config = _row(conn, "select id, path, format, size, raw, version, schema_version, "
                            "parse_error, parse_line, parse_column from configs where id = ?",
                      [service["config_id"]])
    on_line, line_args = _on_line("st", env)
    latest_status = _row(conn, "select id, commit_sha, status, previous_status, message, "
                               f"checked_at from status st where service_id = ? and {on_line} "
                               "order by seq desc, id desc limit 1", [sid, *line_args])
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
    on_env = None  # another environment rolls back to a change on its own mainline
    if env is not None and timeline:
        shas = [row["commit_sha"] for row in timeline]
        on_env = {r[0] for r in conn.execute(
            "select commit_sha from environment_commits where environment = ? and "
            f"commit_sha in ({','.join('?' * len(shas))})", [env.name, *shas])}
    for row, older in zip(timeline, timeline[1:] + [None], strict=True):
        row["previous_commit"] = older["commit_sha"] if older and older["config_id"] else None
        row["is_current"] = bool(row["config_id"]) and row["config_id"] == service["config_id"]
        row["can_roll_back_to"] = bool(row["config_id"]) and not row["is_current"] \
            and (on_env is None or row["commit_sha"] in on_env)
    if env is None:
        upstream_from = "left join services t on t.id = d.depends_on"
        known = "t.id"
        upstream_args: list[Any] = []
        downstream_from = "services s"
        downstream_where = "s.id = d.service_id"
        downstream_id = "s.id"
        downstream_args: list[Any] = []
    else:
        upstream_from = ("left join environment_services t on t.environment = ? "
                         "and t.service_id = d.depends_on")
        upstream_args = [env.name]
        known = "t.service_id"
        downstream_from = "environment_services s"
        downstream_where = "s.service_id = d.service_id and s.environment = ?"
        downstream_id = "s.service_id"
        downstream_args = [env.name]
    return {
        "service": service,
        "tip": env.tip if env else _meta(conn, "tip"),
        "branch": env.branch if env else _meta(conn, "branch"),
        "environment": env.name if env else None,
        "environments": service_environments(conn, sid),
        "config": config,
        "status": latest_status,
        "problems": problems,
        "timeline": timeline,
        "timeline_total": total,
        "parameter_changes": _rows(conn, """
            select key, change, old_value, new_value, commit_sha, committed_at, author_name
            from parameter_changes where service_id = ?
            order by seq desc, id desc limit ?""", [sid, TIMELINE_LIMIT]),
        "parameter_changes_total": conn.execute(
            "select count(*) from parameter_changes where service_id = ?", [sid]).fetchone()[0],
        "upstream": _rows(conn, f"""
            select d.depends_on as service_id, d.version_constraint, d.required,
                   t.version, t.status, coalesce(t.removed, 1) as missing,
                   {known} is not null as known
            from dependencies d {upstream_from}
            where d.config_id = ? and d.service_id = ? order by d.position""",
                          [*upstream_args, service["config_id"] or "", sid]),
        "downstream": _rows(conn, f"""
            select {downstream_id} as service_id, s.status, s.version, d.version_constraint,
                   d.required
            from {downstream_from}
            cross join dependencies d on d.config_id = s.config_id and {downstream_where}
            where +d.depends_on = ? and s.removed = 0 order by 1""",
                            [*downstream_args, sid]),
        "rollbacks": _rows(conn, "select id, attempted_at, actor_id, target_commit, "
                                 "new_commit, outcome, message from rollbacks "
                                 "where service_id = ? order by id desc limit 20", [sid])
        if _has_table(conn, "rollbacks") else [],
    }


def diff_data(conn: sqlite3.Connection, sid: str, old: str | None,
              new: str | None, repo_path: str | None = None, *,
              from_env: str | None = None, to_env: str | None = None) -> dict[str, Any] | None:
    """Text diff and per-key changes between two versions of a service: each end at a
    commit (``old``/``new``), or the service's version in an environment (``from_env``/
    ``to_env``: its last change on that environment's mainline; nothing when it was never
    there). None: no such service; an unknown commit raises
    :class:`~aureacore_db.revisions.UnknownCommit`, an unknown environment
    :class:`~aureacore_db.environments.EnvError`."""
    from aureacore_db.leafdiff import leaf_changes
    from aureacore_db.revisions import UnknownCommit, resolve_commit, version_at

    if conn.execute("select 1 from history where service_id = ? limit 1",
                    [sid]).fetchone() is None:
        return None
    environments = {"from": from_env, "to": to_env}
    for label, name in environments.items():
        if name is not None:
            environments[label] = environment_named(conn, name)
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
    ends = {}
    for label, ref in (("from", old), ("to", new)):
        if environments[label] is not None:  # that environment's version (if any)
            found = conn.execute("select last_commit from environment_services where "
                                 "environment = ? and service_id = ?",
                                 [environments[label], sid]).fetchone()
            ref = found[0] if found else None
            old, new = (ref, new) if label == "from" else (old, ref)
        if ref is None:
            ends[label] = None
            continue
        at = resolve_commit(conn, ref, repo_path)
        ends[label] = version_at(conn, sid, at)
        if ends[label] is None:
            raise UnknownCommit(f"{sid} did not exist yet at {ref!r} ({at.sha[:10]})")
    before, after = ends["from"], ends["to"]
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
        "environments": environments,
        "diff": text,
        "changes": changes,
        "versions": versions,
    }


def environments_data(conn: sqlite3.Connection, namespace: str = "",
                      drift_only: bool = False, after: str = "",
                      size: int = MATRIX_PAGE) -> dict[str, Any]:
    """The environments page: each environment (promotion order) with its counts, and a
    page of the services x environments matrix (``size`` services after service id
    ``after``; ``next`` is the id to continue after, or None), one row per service with
    a cell per environment. Cells mean what canned query ``environment_matrix`` says
    (state live/removed/absent; ``differs``: another config than the environment
    before); services live in no environment are left out."""
    envs = [dict(e.__dict__, services=0, error=0, drifted=0)
            for e in list_environments(conn)]
    order = {env["name"]: i for i, env in enumerate(envs)}
    prefix = f"{namespace}/" if namespace else ""
    states: dict[str, list[Any]] = {}  # service -> live config per environment (or None)
    live: set[str] = set()
    sql = "select service_id, environment, removed, config_id, status from environment_services"
    if prefix:  # namespace/...: ids from "ns/" up to "ns0" ('0' follows '/')
        sql += " where service_id >= ? and service_id < ?"
    for sid, env, removed, config_id, status in conn.execute(
            sql, [prefix, prefix[:-1] + "0"] if prefix else []):
        i = order.get(env)
        if i is None:
            continue
        states.setdefault(sid, [None] * len(envs))[i] = None if removed else config_id
        if not removed:
            live.add(sid)
            envs[i]["services"] += 1
            envs[i]["error"] += status == "ERROR"
    drifting = set()
    for sid in live:
        configs = states[sid]
        for i in range(1, len(envs)):
            if configs[i] != configs[i - 1]:
                envs[i]["drifted"] += 1
                drifting.add(sid)
    ids = sorted(sid for sid in (drifting if drift_only else live) if sid > after)
    page = ids[:size]
    return {"environments": envs, "namespace": namespace, "drift_only": drift_only,
            "after": after or None, "services": matrix_rows(conn, envs, page),
            "next": page[-1] if len(ids) > size else None,
            "services_total": len(live), "services_drifted": len(drifting)}


def matrix_rows(conn: sqlite3.Connection, envs: list[dict[str, Any]],
                ids: list[str]) -> list[dict[str, Any]]:
    """The matrix rows of services ``ids``: a cell per environment of ``envs``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for cell in _rows(conn, f"""
                select s.service_id, s.environment, s.version, s.status, s.config_id,
                       s.path, s.removed, s.last_commit, m.seq as last_commit_seq,
                       s.last_updated, s.status_message
                from environment_services s left join commits m on m.sha = s.last_commit
                where s.service_id in ({', '.join('?' * len(chunk))})""", chunk):
            found[cell["service_id"], cell["environment"]] = cell
    rows = []
    for sid in ids:
        cells, previous = [], None
        for env in envs:
            cell = found.get((sid, env["name"])) or {"service_id": sid,
                                                     "environment": env["name"]}
            cell["state"] = ("absent" if "removed" not in cell
                             else "removed" if cell["removed"] else "live")
            live_config = cell.get("config_id") if cell["state"] == "live" else None
            cell["differs"] = int(previous is not None
                                  and live_config != previous["live_config"])
            cell["previous_environment"] = previous["environment"] if previous else None
            cell["promote_from"] = (previous["environment"] if cell["differs"]
                                    and previous["state"] == "live" else None)
            # changed here after the previous environment's last change (a hotfix):
            # promoting from there would undo it
            cell["newer_here"] = bool(cell["differs"] and (cell.get("last_commit_seq") or -1)
                                      > (previous.get("last_commit_seq") or -1))
            cell["live_config"] = live_config
            cells.append(cell)
            previous = cell
        rows.append({"service_id": sid, "cells": cells,
                     "drift": any(c["differs"] for c in cells)})
    return rows


def commit_data(conn: sqlite3.Connection, ref: str,
                repo_path: str | None = None) -> dict[str, Any]:
    """What a commit changed and which statuses it moved (an unknown commit raises
    :class:`~aureacore_db.revisions.UnknownCommit`)."""
    from aureacore_db.revisions import resolve_commit

    sha = resolve_commit(conn, ref, repo_path).sha
    commit = _row(conn, "select * from commits where sha = ?", [sha]) or {}
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
def matrix_html(rows: list[dict[str, Any]], service_link: Any, promote_url: str | None
                ) -> Markup:
    """The body rows of the environments matrix (built here: a page of 100 services x
    environments renders in a few ms instead of tens through the async templates). Every
    value is escaped; ``service_link(sid, suffix)`` is the service page URL;
    ``promote_url`` None leaves out the Promote links (no permission)."""
    out = []
    for row in rows:
        sid = row["service_id"]
        page = service_link(sid, "")
        diff = service_link(sid, "/diff")
        drift = ' class="drift"' if row["drift"] else ""
        out.append(f'<tr data-service="{escape(sid)}"{drift}>'
                   f'<td><a href="{escape(page)}">{escape(sid)}</a></td>')
        for c in row["cells"]:
            env, prev = c["environment"], c["previous_environment"]
            classes = f"cell state-{c['state']}" + (" differs" if c["differs"] else "")
            html = [f'<td class="{classes}" data-environment="{escape(env)}">']
            if c["differs"]:
                html.append(f'<span class="drift-mark" title="differs from {escape(prev)}">'
                            '≠</span>')
            if c["state"] == "absent":
                html.append('<span class="absent">—</span>')
            else:
                text = "removed" if c["state"] == "removed" else (c.get("version") or "?")
                href = f"{page}?{urlencode({'env': env})}"
                html.append(f'<a class="cell-link" href="{escape(href)}">{escape(text)}</a>')
            if c["state"] == "live":
                config = c.get("config_id") or ""
                html.append(f' <span class="status status-{escape(c.get("status") or "")}">'
                            f'{escape(c.get("status") or "")}</span> <code class="sha muted" '
                            f'title="config {escape(config)}">{escape(config[:7])}</code>')
            if c["differs"]:
                links = []
                if c["newer_here"]:
                    links.append(f'<span class="newer-here" title="changed in {escape(env)} '
                                 f"after {escape(prev)}'s last change\">newer here</span>")
                href = f"{diff}?{urlencode({'from_env': prev, 'to_env': env})}"
                links.append(f'<a class="diff-link" href="{escape(href)}">diff vs '
                             f'{escape(prev)}</a>')
                if promote_url and c["promote_from"]:
                    href = f"{promote_url}?" + urlencode(
                        {"service": sid, "from": c["promote_from"], "to": env})
                    links.append(f'<a class="promote" href="{escape(href)}">Promote to '
                                 f'{escape(env)}</a>')
                html.append('<br><span class="cell-links">' + " · ".join(links) + "</span>")
            html.append("</td>")
            out.append("".join(html))
        out.append("</tr>\n")
    return Markup("".join(out))


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
                status: int = 200, *, database: str, **extra: Any) -> Response:
    from aureacore_db.web import content_security_policy

    if fmt == "json":
        return Response.json(data, status=status, default=str)
    context = {**data, **extra, "data": data, "service_url": lambda sid, s="": service_url(
        datasette, sid, s, database), "commit_url": lambda sha, s="": commit_url(
        datasette, sha, s, database), "aureacore_url": aureacore_url(datasette, database),
        "database": database, "registries": [
            (name, aureacore_url(datasette, name)) for name in registries(datasette)],
        "json_url": _json_url(request), "subject": subject}
    html = await datasette.render_template(template, context, request=request)
    return Response.html(html, status=status,
                         headers={"Content-Security-Policy": content_security_policy(datasette)})


def _refuse(status: int, message: str, fmt: str | None) -> Response:
    """A 4xx answer that writes nothing."""
    if fmt == "json":
        return Response.json({"ok": False, "error": message}, status=status)
    return Response.text(message, status=status)


async def read_body(request, limit: int) -> bytes | None:
    """The request body, or None when it is (or says it is) larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        return None
    body = bytearray()
    more = True
    while more:
        message = await request.receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > limit:
            return None
    return bytes(body)


async def _read_form(request, limit: int = MAX_FORM_BYTES) -> dict[str, str] | Response:
    """The url-encoded form of a POST, read up to ``limit`` bytes (else 413); a body that
    is not UTF-8 or a field longer than its limit is 400."""
    from urllib.parse import parse_qsl

    body = await read_body(request, limit)
    if body is None:
        return _refuse(413, f"the form is larger than {limit} bytes", None)
    try:
        form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                              errors="strict", max_num_fields=len(MAX_FIELD) + 2))
    except (UnicodeDecodeError, ValueError):
        return _refuse(400, "the form is not UTF-8 url-encoded text", None)
    for key, value in form.items():
        if len(value) > MAX_FIELD.get(key, 0):
            return _refuse(400, f"form field {key[:40]!r} is unknown or too long", None)
    return form


def _json_url(request) -> str:
    path = request.path + ".json"
    return path + (f"?{request.query_string}" if request.query_string else "")


async def _registry_db(datasette, request):
    """The page's registry database (``/<db>/-/aureacore``, else the first), after the
    view permissions of Datasette itself."""
    found = await find_registries(datasette)
    route = request.url_vars.get("database")
    if route is not None:
        name = next((n for n, db in datasette.databases.items()
                     if db.route == tilde_decode(route)), None)
        if name not in found:
            raise NotFound(f"{tilde_decode(route)} is not an aureacore registry database")
    else:
        name = found[0] if found else None
    if name is None:
        raise NotFound("no aureacore registry database is attached")
    await datasette.ensure_permissions(request.actor, [("view-database", name),
                                                       "view-instance"])
    return datasette.get_database(name)


# --------------------------------------------------------------------------- views
async def overview_view(datasette, request):
    db = await _registry_db(datasette, request)
    from . import chart

    wanted = _env_arg(request, "env")

    def load(conn: sqlite3.Connection) -> dict[str, Any] | str:
        env = None
        if wanted is not None:
            try:
                env = get_environment(conn, wanted)
            except EnvError as exc:
                return str(exc)
            if env.position == 0:
                env = None  # the first environment is the ``services`` table
        return overview_data(conn, env)

    data = await db.execute_fn(load)
    if isinstance(data, str):
        raise NotFound(data)
    data["database"] = db.name
    points = data["status_over_time"]
    return await _page(datasette, request, "aureacore_overview.html", data,
                       request.url_vars.get("format"), database=db.name,
                       status_chart=chart.render(points, lambda sha: commit_url(
                           datasette, sha, database=db.name)),
                       status_chart_text=chart.describe(points))


def _env_arg(request, name: str) -> str | None:
    """An environment named in the query string (None when not given or empty); 404 when
    longer than any name."""
    value = (request.args.get(name) or "").strip()
    if len(value) > MAX_ENV:
        raise NotFound(f"{name}: an environment name is at most {MAX_ENV} characters")
    return value or None


async def service_view(datasette, request):
    db = await _registry_db(datasette, request)
    sid = unquote(request.url_vars["sid"])
    wanted = _env_arg(request, "env")

    def load(conn: sqlite3.Connection) -> dict[str, Any] | str | None:
        env = None
        if wanted is not None:
            try:
                env = get_environment(conn, wanted)
            except EnvError as exc:
                return str(exc)
        found = service_data(conn, sid, env)
        if found is None and env is None:  # not in the first environment: where it is
            there = [e["environment"] for e in service_environments(conn, sid)
                     if e["state"] != "absent"]
            return {"redirect": there[0]} if there else None
        if found is None:
            return f"{sid} was never in environment {env.name}"
        return found

    data = await db.execute_fn(load)
    if isinstance(data, str):
        raise NotFound(data)
    if data is None:
        raise NotFound(f"no service {sid}")
    fmt = request.url_vars.get("format")
    if "redirect" in data:
        return Response.redirect(service_url(datasette, sid, ".json" if fmt else "", db.name)
                                 + "?" + urlencode({"env": data["redirect"]}))
    allowed = await datasette.permission_allowed(request.actor, PERMISSION, default=False)
    data["can_rollback"] = bool(allowed)  # on the branch of the environment shown
    config = data["config"] or {}
    return await _page(datasette, request, "aureacore_service.html", data, fmt,
                       highlighted=highlight(config.get("raw"), config.get("format")),
                       config_lines=len((config.get("raw") or "").splitlines()),
                       highlight_css=highlight_css(),
                       deps_url=aureacore_url(datasette, db.name, f"/deps/{quote(sid)}"),
                       rollback_url=service_url(datasette, sid, "/rollback", db.name),
                       database=db.name)


async def diff_view(datasette, request):
    db = await _registry_db(datasette, request)
    sid = unquote(request.url_vars["sid"])
    old, new = request.args.get("from") or None, request.args.get("to") or None
    from_env, to_env = _env_arg(request, "from_env"), _env_arg(request, "to_env")
    repo = _config(datasette, db.name).get("repo")
    try:
        data = await db.execute_fn(lambda conn: diff_data(
            conn, sid, old, new, repo, from_env=from_env, to_env=to_env))
    except (UnknownCommit, EnvError) as exc:
        raise NotFound(str(exc)) from None
    if data is None:
        raise NotFound(f"no service {sid}")
    env_names = await db.execute_fn(lambda conn: [e.name for e in list_environments(conn)])
    return await _page(datasette, request, "aureacore_diff.html", data,
                       request.url_vars.get("format"), database=db.name,
                       environment_names=env_names)


async def environments_view(datasette, request):
    """Services x environments: versions and statuses, drift from the previous
    environment marked, links to each service in each environment, diffs and promotion."""
    db = await _registry_db(datasette, request)
    namespace = (request.args.get("namespace") or "").strip()[:MAX_ENV]
    after = (request.args.get("after") or "")[:MAX_ENV]
    drift_only = _truthy(request.args.get("drift"))
    size = request.args.get("_size") or ""
    size = min(int(size), 1000) if size.isdigit() and int(size) > 0 else MATRIX_PAGE
    data = await db.execute_fn(lambda conn: environments_data(conn, namespace, drift_only,
                                                              after, size))
    if data["next"]:
        data["next_url"] = request.path + "?" + urlencode(
            {k: v for k, v in (("namespace", namespace), ("drift", "1" if drift_only else ""),
                               ("_size", request.args.get("_size") or ""),
                               ("after", data["next"])) if v})
    data["database"] = db.name
    can_promote = await datasette.permission_allowed(request.actor, PROMOTE_PERMISSION,
                                                     default=False)
    data["can_promote"] = bool(can_promote)
    promote_url = aureacore_url(datasette, db.name, "/promote")
    return await _page(datasette, request, "aureacore_environments.html", data,
                       request.url_vars.get("format"), database=db.name,
                       matrix_html=matrix_html(
                           data["services"], lambda sid, suffix: service_url(
                               datasette, sid, suffix, db.name),
                           promote_url if can_promote else None))


async def commit_view(datasette, request):
    db = await _registry_db(datasette, request)
    sha = request.url_vars["sha"]
    repo = _config(datasette, db.name).get("repo")
    try:
        data = await db.execute_fn(lambda conn: commit_data(conn, sha, repo))
    except UnknownCommit as exc:
        raise NotFound(str(exc)) from None
    return await _page(datasette, request, "aureacore_commit.html", data,
                       request.url_vars.get("format"), database=db.name)


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("1", "on", "yes", "true")


async def rollback_view(datasette, request):
    """GET ``?to=<commit>``: the confirm page (:func:`rollback_confirm`). POST: roll the
    service back to the version at form field ``to``, in the environment of form field
    (or query parameter) ``env`` (default: the first). A rollback that would break other
    services answers with the preview and a confirm form (which sends
    ``allow_breaking=1``)."""
    from aureacore_db.rollback import (
        RollbackRefused,
        RollbackResult,
        catch_up,
        normalize_actor,
        rollback,
    )

    sid = unquote(request.url_vars["sid"])
    fmt = request.url_vars.get("format")
    db = await _registry_db(datasette, request)
    if request.method != "POST" and not request.args.get("to"):
        return Response.redirect(service_url(datasette, sid, database=db.name))
    actor = request.actor
    if not await datasette.permission_allowed(actor, PERMISSION, default=False):
        # refused before the body is read or anything computed: writes nothing at all
        message = f"not allowed: {PERMISSION}"
        if fmt == "json":
            return Response.json({"ok": False, "outcome": "forbidden", "error": message,
                                  "service_id": sid}, status=403)
        raise Forbidden(f"You may not roll services back ({PERMISSION})")
    if request.method != "POST":
        return await rollback_confirm(datasette, request, db, sid, fmt)
    form = await _read_form(request)
    if isinstance(form, Response):
        return _refuse(form.status, form.body, fmt) if fmt == "json" else form
    to, expected = form.get("to") or "", form.get("expected_head") or ""
    env = form.get("env") or request.args.get("env") or None
    if not to.strip():
        return _refuse(400, "say which version to roll back to (form field 'to')", fmt)
    if not _HEAD.fullmatch(expected):
        return _refuse(400, "expected_head must be the full 40-hex branch head the page "
                            "showed", fmt)
    missing = await _rollback_subject_missing(db, sid, env)
    if missing:
        return _refuse(404, missing, fmt)
    repo = _config(datasette, db.name).get("repo")
    try:
        result = await asyncio.to_thread(
            rollback, db.path, sid, to, actor=actor, repo_path=repo, expected_head=expected,
            confirm=_truthy(form.get("confirm")),
            allow_breaking=_truthy(form.get("allow_breaking")), via="web", environment=env)
    except RollbackRefused as refused:
        result = refused.result
        if result.outcome == "stale_head":  # so that a reload shows the branch as it is
            await asyncio.to_thread(catch_up, db.path, repo, env)
    except Exception as exc:  # recorded by rollback(); show it instead of a bare 500
        result = RollbackResult(service_id=sid, target_commit=to,
                                actor_id=str(normalize_actor(actor)["id"]), outcome="error",
                                message=f"{type(exc).__name__}: {exc}")
    if fmt == "json":
        return Response.json(result.as_dict(), status=result.http_status, default=str)
    if result.ok:
        datasette.add_message(request, result.message, datasette.INFO)
        return Response.redirect(service_url(datasette, sid, database=db.name), status=303)
    return await _page(datasette, request, "aureacore_rollback.html", {"result":
                       result.as_dict()}, None, status=result.http_status, database=db.name,
                       rollback_url=service_url(datasette, sid, "/rollback", db.name),
                       service_id=sid, form={"to": to, "expected_head": expected or "",
                                             "env": env or ""})


async def _rollback_subject_missing(db, sid: str, env: str | None) -> str | None:
    """Why a rollback of ``sid`` in environment ``env`` (None: the first) cannot even be
    planned: no such environment (listing them) or no such service there; else None."""
    from aureacore_db.environments import EnvError, get_environment

    def check(conn: sqlite3.Connection) -> str | None:
        if env is None:
            found = conn.execute("select 1 from services where id = ?", [sid]).fetchone()
            return None if found else f"no service {sid}"
        try:
            name = get_environment(conn, env).name
        except EnvError as exc:
            return str(exc)
        found = conn.execute("select 1 from environment_services where environment = ? "
                             "and service_id = ?", [name, sid]).fetchone()
        return None if found else f"no service {sid} in environment {name}"

    return await db.execute_fn(check)


def rollback_plan(db_path: str, sid: str, to: str, repo: str | None,
                  env: str | None = None) -> dict[str, Any]:
    """The CLI's plan (:func:`aureacore_db.rollback.describe`, with its status preview)
    for the web's confirm page; the database first catches up when the branch moved
    since the last ingest, so that "now" and the preview are of the same head.

    Raises :class:`LookupError` when the service or the version cannot be found.
    """
    from aureacore_db.rollback import catch_up, describe

    plan = describe(db_path, sid, to, repo_path=repo, environment=env)
    base = (plan["preview"] or {}).get("base")
    if base and base != plan["tip"] and catch_up(db_path, repo, env):
        plan = describe(db_path, sid, to, repo_path=repo, environment=env)
    plan.pop("repo", None)  # a server path: not for the page
    target, current, preview = plan["target"], plan["current"], plan["preview"]
    plan["expected_head"] = (preview or {}).get("base") or plan["tip"]
    plan["refused"] = (
        f"{sid} did not exist at {target['commit_sha'][:7]}" if not target["config_id"]
        else f"{sid} is already at that version (config {target['config_id'][:7]})"
        if target["config_id"] == current["config_id"] else None)
    return plan


async def rollback_confirm(datasette, request, db, sid: str, fmt: str | None) -> Response:
    """GET ``…/rollback?to=<commit>`` (permission already checked): what the rollback
    would do — now and target version, the services whose status it changes (the CLI's
    preview) — and the form that makes it, carrying the head the preview was made at."""
    to, env = request.args.get("to") or "", request.args.get("env") or None
    if len(to) > MAX_FIELD["to"] or len(env or "") > MAX_FIELD["env"]:
        return _refuse(400, "the commit ('to') or environment ('env') is too long", fmt)
    missing = await _rollback_subject_missing(db, sid, env)
    if missing:
        return _refuse(404, missing, fmt)
    repo = _config(datasette, db.name).get("repo")
    try:
        plan = await asyncio.to_thread(rollback_plan, db.path, sid, to, repo, env)
    except LookupError as exc:
        return _refuse(404, str(exc), fmt)
    return await _page(datasette, request, "aureacore_rollback_confirm.html", plan, fmt,
                       database=db.name, service_id=sid,
                       rollback_url=service_url(datasette, sid, "/rollback", db.name))


USED_LOGIN = ("This login link has already been used: a root login link works once. "
              "If you are logged in in another browser or tab, use that one; otherwise stop "
              "the server and start `aureacore-db serve --root` again, which prints a new "
              "link.")


async def login_view(datasette, request):
    """``/-/aureacore/login?token=…``: the root login link ``serve --root`` prints.
    Like Datasette's ``/-/auth-token`` (single-use), but lands on the services overview
    and says what to do when the link was already used."""
    import secrets

    token = request.args.get("token") or ""
    expected = getattr(datasette, "_root_token", None)
    if not expected:
        if (request.actor or {}).get("id") == "root":  # a reload after logging in
            return Response.redirect(await _landing(datasette))
        raise Forbidden(USED_LOGIN)
    if not secrets.compare_digest(token, expected):
        raise Forbidden("This login link is not valid (a mistyped or old token). "
                        + USED_LOGIN.split(": ", 1)[1])
    datasette._root_token = None
    response = Response.redirect(await _landing(datasette))
    response.set_cookie("ds_actor", datasette.sign({"a": {"id": "root"}}, "actor"))
    return response


async def _landing(datasette) -> str:
    found = await find_registries(datasette)
    return aureacore_url(datasette, found[0]) if found else datasette.urls.instance()


# --------------------------------------------------------------------------- hooks
@hookimpl
def register_routes(datasette):
    fmt = r"(\.(?P<format>json))?$"
    two = r"(?P<sid>[^/]+/[^/]+?)"
    pages = [
        (rf"{PREFIX}{fmt}", overview_view),
        (rf"{PREFIX}/environments{fmt}", environments_view),
        (rf"{PREFIX}/services/{two}/diff{fmt}", diff_view),
        (rf"{PREFIX}/services/{two}/rollback{fmt}", rollback_view),
        (rf"{PREFIX}/services/(?P<sid>.+?){fmt}", service_view),
        (rf"{PREFIX}/commits/(?P<sha>[0-9a-fA-F]{{4,40}}){fmt}", commit_view),
    ]
    from . import deps, githooks, promote  # they import from here

    return ([(rf"^{PREFIX}/login$", login_view), *deps.routes(), *githooks.routes(),
             *promote.routes()]
            + [(rf"^/(?P<database>[^/]+){path}", view) for path, view in pages]
            + [(rf"^{path}", view) for path, view in pages])


@hookimpl
def skip_csrf(datasette, scope):
    """The Git push route is verified by its signature (a forge sends no CSRF token)."""
    from . import githooks

    return True if githooks.skip_csrf(scope) else None


@hookimpl
def asgi_wrapper(datasette):
    """Guard the plugin's POSTs (:func:`_guard_posts`) and remember each request's path."""
    return lambda app: _remember_path(_guard_posts(app))


def _guard_posts(app):
    """POSTs to the plugin's routes: the body is read here, before Datasette's CSRF check
    reads it whole, up to MAX_FORM_BYTES (else 413) and must be UTF-8 (else 400)."""
    async def guarded(scope, receive, send):
        if scope.get("type") != "http" or scope.get("method") != "POST" or (
                f"{PREFIX}/" not in scope.get("path", "")) or scope.get(
                "path", "").endswith(f"{PREFIX}/hooks/git"):  # githooks.py bounds its own
            return await app(scope, receive, send)
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                return await Response.text(f"the form is larger than {MAX_FORM_BYTES} "
                                           "bytes", status=413).asgi_send(send)
        try:
            bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            return await Response.text("the form is not UTF-8 text",
                                       status=400).asgi_send(send)
        sent = False

        async def replay():
            nonlocal sent
            if sent:
                return await receive()  # a disconnect, when it comes
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        return await app(scope, replay, send)

    return guarded


MMAP_BYTES = 2**31  # SQLite caps it at its build's limit (2 GB by default)


@hookimpl
def prepare_connection(conn, database, datasette):
    """No Datasette connection can read webhook secrets (table pages, exports, ?sql=).
    SQL function ``aureacore_commit(ref)``: the full sha of the ingested commit ``ref``
    names (empty: the mainline tip; a short sha, ``HEAD~3``, a branch or tag name), or
    an error "unknown commit ..." (shown on the query page, see extra_template_vars).
    Reads go through memory-mapped I/O (:data:`MMAP_BYTES`): a view or facet that seeks
    all over a large database (``current_dependencies``: 24,000 edges looked up among
    900,000) reads its pages from the operating system's cache without a copy each,
    about twice as fast; the mapping is shared by every connection, unlike a page cache."""
    from aureacore_db.webhooks import deny_secret_reads

    conn.execute(f"pragma mmap_size = {MMAP_BYTES}")
    deny_secret_reads(conn)
    register_sql_function(conn, _config(datasette, database).get("repo"))
    register_environment_function(conn)
    from .deps import cached_cycle_members, dependents_json

    conn.create_function("aureacore_cycle_members", 1, cached_cycle_members)
    conn.create_function("aureacore_dependents", 2, dependents_json)


@hookimpl
def extra_template_vars(template, database, view_name, request, datasette):
    """On a canned query that resolves a commit (``aureacore_commit(:param)``) or an
    environment (``aureacore_environment(:param)``), say why an unknown one failed
    (SQLite can only report "user-defined function raised exception")."""
    if template != "query.html" or request is None or not is_registry(datasette, database):
        return None

    async def inner():
        name = tilde_decode(request.path.rstrip("/").rsplit("/", 1)[-1])
        query = await datasette.get_canned_query(database, name, request.actor)
        sql = (query or {}).get("sql") or ""
        if not COMMIT_PARAM.search(sql) and ENV_FUNCTION not in sql:
            return {}
        repo = _config(datasette, database).get("repo")
        args = {k: request.args.get(k) for k in request.args.keys()}
        error = await datasette.get_database(database).execute_fn(
            lambda conn: environment_parameter_error(conn, sql, args)
            or commit_parameter_error(conn, sql, args, repo))
        return {"error": error} if error else {}

    return inner


@hookimpl
def permission_allowed(datasette, actor, action, resource):
    """``aureacore-rollback`` and ``aureacore-promote``: only actors matched by the
    plugin's rollback or promote allow block.
    The webhook secrets table is not shown to anyone, and a registry's file cannot be
    downloaded (it holds them; Datasette offers the download of immutable databases)."""
    if action == "view-table" and isinstance(resource, (tuple, list)) and len(resource) == 2 \
            and resource[1] == SECRETS_TABLE:
        return False
    if action == "view-database-download" and is_registry(datasette, resource):
        return False
    if action == PERMISSION:
        return allowed_by_block(datasette, actor, "rollback")
    from . import promote

    if action == promote.PERMISSION:
        return promote.permission_allowed(datasette, actor)
    return None


def allowed_by_block(datasette, actor, block_name: str) -> bool:
    """Whether ``actor`` matches the allow block ``block_name`` (``rollback``,
    ``promote``) of the plugin's configuration, else of the shipped metadata.yml."""
    block = _config(datasette).get(block_name)
    if block is None:  # not configured: the shipped metadata.yml's allow block
        block = _shipped()["plugin"].get(block_name) or {}
    allow = (block or {}).get("allow")
    if allow is None:
        return False
    return actor_matches_allow(actor, allow)


def _shipped() -> dict[str, Any]:
    """The shipped metadata.yml, split: plugin defaults, registry section, its queries."""
    global _SHIPPED
    if _SHIPPED is None:
        from aureacore_db.resources import METADATA_DATABASE, read_metadata

        metadata = read_metadata()
        section = dict((metadata.get("databases") or {}).get(METADATA_DATABASE) or {})
        queries = section.pop("queries", None) or {}
        _SHIPPED = {"plugin": (metadata.get("plugins") or {}).get(PLUGIN) or {},
                    "section_json": json.dumps(section), "queries": queries}
    return _SHIPPED


_SHIPPED: dict[str, Any] | None = None


@hookimpl
def canned_queries(datasette, database, actor):
    """The shipped metadata.yml's canned queries, on every registry database, and the
    dependency queries on every database with the tables they read."""
    from . import deps

    async def inner():
        found = await deps.canned_queries(datasette, database)()
        if database in await find_registries(datasette):
            found.update(copy.deepcopy(_shipped()["queries"]))
        return found or None

    return inner


@hookimpl
def get_metadata(datasette, key, database, table):
    """Titles, descriptions, facets and sort orders of the shipped metadata.yml for every
    registry database (metadata given to Datasette takes precedence)."""
    names = registries(datasette)
    if not names or key in ("queries", "plugins"):  # those come from elsewhere
        return None
    # a fresh copy each call: Datasette merges local metadata into what it gets
    return {"databases": {name: json.loads(_shipped()["section_json"]) for name in names}}


def _remember_path(app):
    """Remember each request's path, so that render_cell can tell table from row pages."""
    async def remember_path(scope, receive, send):
        token = _REQUEST_PATH.set(scope.get("path", "") if scope.get("type") == "http"
                                  else "")
        try:
            await app(scope, receive, send)
        finally:
            _REQUEST_PATH.reset(token)

    return remember_path


@hookimpl
def startup(datasette):
    async def inner():
        from aureacore_db.rollback import ensure_rollbacks_table

        for name in await find_registries(datasette):
            db = datasette.get_database(name)
            if db.is_mutable and not await db.table_exists("rollbacks"):
                import sqlite_utils

                await db.execute_write_fn(
                    lambda conn: ensure_rollbacks_table(sqlite_utils.Database(conn)))
            if db.is_mutable and db.path and "secret" in await db.table_columns("webhooks"):
                await asyncio.to_thread(_move_webhook_secrets, db.path)

    return inner


def _move_webhook_secrets(path: str) -> None:
    """Move an older database's webhook secrets to their table (its own connection: the
    Datasette ones cannot read them)."""
    from aureacore_db.db import connect
    from aureacore_db.webhooks import ensure_webhook_schema

    db = connect(path)
    try:
        ensure_webhook_schema(db)
    finally:
        db.close()


@hookimpl
def menu_links(datasette, actor, request):
    names = registries(datasette)
    if len(names) == 1:
        return [{"href": aureacore_url(datasette, names[0]), "label": "Services overview"}]
    return [{"href": aureacore_url(datasette, name), "label": f"Services overview: {name}"}
            for name in names] or None


@hookimpl
def database_actions(datasette, actor, database, request):
    if not is_registry(datasette, database):
        return None
    return [{"href": aureacore_url(datasette, database), "label": "Services overview"}]


@hookimpl
def table_actions(datasette, actor, database, table, request):
    if not is_registry(datasette, database):
        return None
    links = [{"href": aureacore_url(datasette, database), "label": "Services overview"}]
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


def _is_row_page(datasette) -> bool:
    """Whether the request is for a row page (/<db>/<table>/<pk>), where cells are full."""
    path = _REQUEST_PATH.get()
    base = datasette.urls.path("/")
    if path.startswith(base):
        path = path[len(base):]
    return path.count("/") >= 2 and "/-/" not in f"/{path}"


def _preview(value: str) -> Markup | None:
    """A long text cell on a table page: its start, and its length."""
    if len(value) <= PREVIEW_CHARS:
        return None
    start = value[:PREVIEW_CHARS].rstrip()
    return Markup(f'<span class="aureacore-preview">{escape(start)}…</span> '
                  f'<small>({len(value):,} chars; full on the row page)</small>')


def _parents(datasette, database: str, value: str) -> Markup | None:
    try:
        parents = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parents, list) or not all(
            isinstance(p, str) and _SHA.fullmatch(p) for p in parents):
        return None
    return Markup(", ".join(
        f'<a href="{escape(commit_url(datasette, p, database=database))}" title="{p}">'
        f'{p[:10]}</a>' for p in parents) or "[] (root)")


@hookimpl
def render_cell(row, value, column, table, database, datasette):
    """Link service ids and commit ids in the registry's tables, rows and queries; link
    commits.parents; shorten long config/JSON text on table pages."""
    if isinstance(value, dict) and column in LINK_COLUMNS:  # an expanded foreign key
        value = value.get("value")
    if not isinstance(value, str) or not value:
        return None  # the common case, kept cheap: this runs for every cell shown
    if column not in LINK_COLUMNS and column not in PREVIEW_COLUMNS and column != "parents":
        return None
    if not is_registry(datasette, database):
        return None
    if column == "parents" and table == "commits":
        return _parents(datasette, database, value)
    if column in PREVIEW_COLUMNS:
        return None if _is_row_page(datasette) else _preview(value)
    base = aureacore_url(datasette, database)
    if column in SERVICE_COLUMNS or (column in ("id", "name") and table in SERVICE_TABLES):
        # the table page links its primary key to the row page, so "name" links here too
        sid = _row_value(row, "id") if column == "name" else value
        href = escape(f"{base}/services/{quote(str(sid or value), safe='/')}")
        return Markup(f'<a href="{href}">{escape(value)}</a>')
    if (column in COMMIT_COLUMNS or (column == "sha" and table == "commits")) \
            and _SHA.fullmatch(value):  # hex: nothing to escape
        return Markup(f'<a href="{base}/commits/{value}" title="{value}">{value[:10]}</a>')
    return None

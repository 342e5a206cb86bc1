"""Datasette plugin: a service's dependency neighbourhood, drawn as inline SVG.

``/<db>/-/aureacore/deps/<namespace>/<name>`` shows the services around one service at
the branch tip (``?at=<commit>``: any mainline commit, as Git names it — ``HEAD~3``, a
short sha, a tag; ``?depth=1..4``, default 2), coloured by status, with its health;
``.json`` gives the same as data. The long lists (what it depends on, what depends on
it, what breaks or is degraded if it goes) come in pages, HTML and JSON alike:
``?limit=`` (empty: 100 of each; -1: all) and ``?offset=``; the cycles through it (each
can hold thousands of services) by ``?cycles_limit=`` (empty: 5) and ``?cycles_offset=``;
``page`` in the data gives the limits, the offsets and each list's whole count.
``/-/aureacore/deps/<ns>/<name>`` is the same for the first registry
(``?database=<db>`` redirects to that database's page). Also adds canned queries
``transitive_dependents``, ``dependency_cycles`` and ``dependencies_at_commit`` to each
registry database (names already taken by ``metadata.yml`` are left to it).

The SVG is built here, server-side (no scripts, no CDN).
"""

from __future__ import annotations

import functools
import html
import json
import sqlite3
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote, unquote, urlencode

from datasette import NotFound, Response

from aureacore_db.depgraph import (
    DepGraph,
    DepGraphError,
    cycle_members_json,
    edges_of,
    resolve_commit,
)

from .peringest import fingerprint

TEMPLATE = "aureacore_deps_service.html"
MAX_NODES = 150

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 210, 46, 90, 18, 24
STATUS_COLOURS = {  # fill, stroke
    "CONFIGURED": ("#dff3e4", "#2e8540"),
    "ERROR": ("#fbe3e4", "#c62828"),
    "PENDING": ("#fff4d6", "#b7791f"),
    None: ("#eceff1", "#78909c"),
}
MISSING_COLOURS = ("#ffffff", "#9e9e9e")
HEALTH_COLOURS = {"passing": "#2e8540", "warning": "#e0a100", "critical": "#c62828"}

QUERIES = {
    "transitive_dependents": {
        "title": "Dependents of a service, transitively",
        "description": "Every current service that depends on :service (namespace/name), "
                       "directly or transitively, with its shortest distance; "
                       "required_chain = 1 when it depends on it along required edges only "
                       "(it breaks if the service goes). "
                       "A page holds limit rows (100 when empty, all when -1) from offset.",
        "sql": """
with found(row) as (
  select value from json_each((
    select aureacore_dependents(:service, json_group_array(
             json_array(d.service_id, d.depends_on, d.required)))
    from services s
    cross join dependencies d on d.config_id = s.config_id and d.service_id = s.id
    where s.removed = 0))
)
select s.id as service_id, json_extract(f.row, '$[1]') as depth,
       json_extract(f.row, '$[2]') as required_chain,
       s.version, s.status
from found f join services s on s.id = json_extract(f.row, '$[0]')
order by depth, s.id
limit case when :limit = '' then 100 else :limit end
offset case when :offset = '' then 0 else :offset end
""".strip(),
    },
    "dependency_cycles": {
        "title": "Services on a dependency cycle",
        "description": "Current services that depend on themselves through other services "
                       "(any edges); required_cycle gives the validation error when every "
                       "edge of a cycle is required (those services are in ERROR). "
                       "A page holds limit rows (100 when empty, all when -1) from offset.",
        "sql": """
with members(id) as (
  select value from json_each((
    select aureacore_cycle_members(json_group_array(json_array(d.service_id, d.depends_on)))
    from services s
    cross join dependencies d on d.config_id = s.config_id and d.service_id = s.id
    where s.removed = 0))
)
select s.id as service_id, s.status,
       (select group_concat(e.message, '; ') from current_errors e
        where e.service_id = s.id and e.kind = 'cycle') as required_cycle
from services s
where s.removed = 0 and s.id in (select id from members)
order by s.id
limit case when :limit = '' then 100 else :limit end
offset case when :offset = '' then 0 else :offset end
""".strip(),
    },
    "dependencies_at_commit": {
        "title": "Dependency edges at a mainline commit",
        "description": "The dependency edges of the services present as of a mainline "
                       "commit: a full or short sha, HEAD~3, a branch or tag name; empty "
                       "means the branch tip. An unknown commit is an error. "
                       "A page holds limit rows (100 when empty, all when -1) from offset.",
        "sql": """
with m as (
  select seq from commits where sha = (select aureacore_commit(:commit))
)
-- per service in id order, its newest mainline history row up to the commit (an index
-- seek each, so a page costs its rows, not the history)
select s.id as service_id, d.depends_on, d.required, d.version_constraint,
       coalesce((select t.change != 'removed' from history t
                 where t.service_id = d.depends_on and +t.mainline = 1
                   and t.seq <= (select seq from m)
                 order by t.seq desc, t.id desc limit 1), 0) as depends_on_present
from services s
join history h on h.id = (
  select h2.id from history h2
  where h2.service_id = s.id and +h2.mainline = 1 and h2.seq <= (select seq from m)
  order by h2.seq desc, h2.id desc limit 1)
join dependencies d on d.config_id = h.config_id
where h.change != 'removed'
order by s.id, d.position
limit case when :limit = '' then 100 else :limit end
offset case when :offset = '' then 0 else :offset end
""".strip(),
    },
}


# -- routes and queries ----------------------------------------------------------------------------
def routes() -> list:
    """The dependency page's routes (registered by the package's ``register_routes``)."""
    path = r"/-/aureacore/deps/(?P<service>[^/]+/[^/]+?)(?P<ext>\.json)?$"
    return [(rf"^/(?P<database>[^/]+){path}", deps_page), (rf"^{path}", deps_page)]


def canned_queries(datasette: Any, database: str) -> Any:
    """The dependency queries, on a database with the tables they read (awaitable)."""
    async def inner() -> dict:
        db = datasette.get_database(database)
        if not (await db.table_exists("dependencies") and await db.table_exists("history")):
            return {}
        taken = datasette.metadata("queries", database=database, fallback=False) or {}
        return {name: dict(query) for name, query in QUERIES.items() if name not in taken}

    return inner


# -- data -----------------------------------------------------------------------------
def _table_exists(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("select 1 from sqlite_master where name = ?", [name]).fetchone() is not None


def _health(conn: sqlite3.Connection, sid: str, ids: list[str]) -> dict[str, Any]:
    """Current health of ``ids``, and the summary and latest checks of ``sid``."""
    out: dict[str, Any] = {"states": {}, "summary": None, "recent": []}
    if not _table_exists(conn, "health_checks") or not _table_exists(conn, "current_health"):
        return out
    saved, conn.row_factory = conn.row_factory, sqlite3.Row
    try:
        marks = ",".join("?" * len(ids))
        for row in conn.execute(f"select * from current_health where service_id in ({marks})",
                                ids):
            out["states"][row["service_id"]] = dict(row)
        found = conn.execute("select * from health_summary where service_id = ?",
                             [sid]).fetchone()
        out["summary"] = dict(found) if found else None
        out["recent"] = [dict(r) for r in conn.execute(
            "select checked_at, state, status_code, latency_ms, error from health_checks "
            "where service_id = ? order by checked_at desc, id desc limit 10", [sid])]
    finally:
        conn.row_factory = saved
    return out


def _column(node: str, sid: str, upstream: dict[str, int], downstream: dict[str, int]) -> int:
    """Where a node is drawn: 0 the service, +k a dependency k edges away, -k a dependent
    (on a cycle, a node is both: the nearer side wins, dependencies on a tie)."""
    if node == sid:
        return 0
    up, down = upstream.get(node), downstream.get(node)
    if down is not None and (up is None or down < up):
        return -down
    return up if up is not None else 1


class _SharedGraph(DepGraph):
    """A graph kept between requests: the whole-graph answers are worked out once."""

    @functools.cached_property
    def required_graph(self) -> Any:  # type: ignore[override]
        return super().required_graph.copy()  # a graph, not a filtering view

    def report(self, sid: str, depth: int | None = None) -> dict[str, Any]:
        """One service's report, worked out once per service (treat it as read-only)."""
        reports = self.__dict__.setdefault("_reports", OrderedDict())
        key = (sid, depth)
        if key not in reports:
            reports[key] = super().report(sid, depth)
            while len(reports) > MAX_REPORTS:
                reports.popitem(last=False)
        return reports[key]

    def cycles(self, *, required_only: bool = False, limit: int = 1000) -> list:
        key = (required_only, limit)
        found = self.__dict__.setdefault("_cycles", {})
        if key not in found:
            found[key] = super().cycles(required_only=required_only, limit=limit)
        return found[key]


# SQL aureacore_cycle_members: the same edges give the same answer (a query of the whole
# graph at 10,000 services spends 0.1 s in it; registered by the plugin's connections)
cached_cycle_members = functools.lru_cache(maxsize=4)(cycle_members_json)

MAX_DEPTH = 25  # transitive_dependents follows edges this far


@functools.lru_cache(maxsize=16)
def dependents_json(service: str, edges_json: str | None) -> str:
    """SQL ``aureacore_dependents(service, json_group_array(json_array(dependent,
    depends_on, required)))``: every service that reaches ``service`` in at most
    MAX_DEPTH edges, as ``[id, shortest distance, 1 if along required edges only]``
    (breadth-first, linear in the edges; a recursive SQL walk grows with the paths)."""
    into: dict[str, list[tuple[str, bool]]] = {}
    for dependent, target, required in json.loads(edges_json or "[]"):
        into.setdefault(str(target), []).append((str(dependent), bool(required)))

    def reach(required_only: bool) -> dict[str, int]:
        seen: dict[str, int] = {}
        level, depth = [service], 0
        while level and depth < MAX_DEPTH:
            depth += 1
            nxt = []
            for node in level:
                for dependent, required in into.get(node, ()):
                    if (required or not required_only) and dependent not in seen:
                        seen[dependent] = depth
                        nxt.append(dependent)
            level = nxt
        return seen

    anyway, required = reach(False), reach(True)
    return json.dumps([[sid, depth, int(sid in required)]
                       for sid, depth in anyway.items() if sid != service])


GRAPHS: OrderedDict[tuple, DepGraph] = OrderedDict()  # the last few graphs loaded
MAX_GRAPHS = 4
MAX_REPORTS = 256  # per graph
_GRAPHS_LOCK = threading.Lock()


def shared_graph(conn: sqlite3.Connection, at: str | None,
                 repo_path: str | None = None) -> DepGraph:
    """The dependency graph at mainline commit ``at``, loaded once per ingest: a
    10,000-service graph takes about a second to load and to search for cycles, a
    page about it a few milliseconds."""
    sha, seq = resolve_commit(conn, at, repo_path)
    key = (fingerprint(conn), sha, seq)
    with _GRAPHS_LOCK:
        graph = GRAPHS.get(key)
        if graph is not None:
            GRAPHS.move_to_end(key)
            return graph
    loaded = DepGraph.load(conn, sha or at, repo_path)
    graph = _SharedGraph(loaded.graph, loaded.commit, loaded.seq)
    with _GRAPHS_LOCK:
        GRAPHS[key] = graph
        while len(GRAPHS) > MAX_GRAPHS:
            GRAPHS.popitem(last=False)
    return graph


PAGE_SIZE = 100  # entries of each list of a report per page, by default
CYCLES_PAGE_SIZE = 5  # cycles per page, by default (one can hold thousands of services)


def page_args(limit: str | None, offset: str | None,
              default: int = PAGE_SIZE) -> tuple[int | None, int]:
    """(limit, offset) of ``?limit=&offset=``: empty or unreadable limit ``default``, -1
    (any negative) all (None); offset 0 unless a number."""
    try:
        size = int(limit) if (limit or "").strip() else default
    except ValueError:
        size = default
    try:
        start = max(0, int(offset or 0))
    except ValueError:
        start = 0
    return (None if size < 0 else size), start


PAGED = (("upstream",), ("downstream",), ("impact", "breaks"), ("impact", "degraded"))


def paged(report: dict[str, Any], limit: int | None, offset: int,
          cycles_limit: int | None = CYCLES_PAGE_SIZE, cycles_offset: int = 0
          ) -> tuple[dict[str, Any], dict[str, Any]]:
    """A copy of ``report`` with each long list cut to one page; and the page (limits,
    offsets, each list's whole count, whether any list goes on)."""
    out = dict(report, impact=dict(report["impact"]))
    counts, more = {}, False
    for keys in PAGED:
        holder = out if len(keys) == 1 else out[keys[0]]
        whole = holder[keys[-1]]
        end = None if limit is None else offset + limit
        holder[keys[-1]] = whole[offset:end]
        counts[keys[-1]] = len(whole)
        more = more or (end is not None and len(whole) > end)
    cycles = report["cycles"]
    end = None if cycles_limit is None else cycles_offset + cycles_limit
    out["cycles"], counts["cycles"] = cycles[cycles_offset:end], len(cycles)
    return out, {"limit": limit, "offset": offset, "counts": counts, "more": more,
                 "cycles_limit": cycles_limit, "cycles_offset": cycles_offset,
                 "cycles_more": end is not None and len(cycles) > end}


def build(conn: sqlite3.Connection, ref: str, at: str | None, depth: int,
          repo_path: str | None = None, limit: int | None = PAGE_SIZE,
          offset: int = 0, cycles: tuple[int | None, int] = (CYCLES_PAGE_SIZE, 0)
          ) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (runs in Datasette's SQL thread);
    the report's long lists are cut to the page from ``offset`` (``limit`` None: all),
    its cycles to the page ``cycles`` (limit, offset)."""
    graph = shared_graph(conn, at, repo_path)
    sid = graph.resolve(ref)
    report, page = paged(graph.report(sid), limit, offset, *cycles)
    hood = graph.neighbourhood(sid, depth)
    while hood.number_of_nodes() > MAX_NODES and depth > 1:
        depth -= 1
        hood = graph.neighbourhood(sid, depth)
    nodes = sorted(hood.nodes)
    upstream = {link.service: link.depth for link in graph.upstream(sid, depth)}
    downstream = {link.service: link.depth for link in graph.downstream(sid, depth)}
    health = _health(conn, sid, nodes)
    return {
        "service": sid, "commit": graph.commit, "seq": graph.seq, "depth": depth,
        "report": report,
        "nodes": [{"service": n, **hood.nodes[n], "column": _column(n, sid, upstream, downstream),
                   "health": (health["states"].get(n) or {}).get("state")}
                  for n in nodes],
        "edges": list(edges_of(hood)),
        "health": health,
        "page": page,
    }


# -- drawing --------------------------------------------------------------------------
def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _clip(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_svg(data: dict[str, Any], link: Any = None) -> str:
    """An SVG of the neighbourhood: dependents left, dependencies right, arrows pointing
    at what is depended on; solid = required, dashed = optional, red = missing target."""
    columns: dict[int, list[dict]] = {}
    for node in data["nodes"]:
        columns.setdefault(node["column"], []).append(node)
    order = sorted(columns)
    tallest = max(len(c) for c in columns.values())
    height = 2 * MARGIN + tallest * NODE_H + (tallest - 1) * ROW_GAP + 40
    width = 2 * MARGIN + len(order) * NODE_W + (len(order) - 1) * COL_GAP
    place: dict[str, tuple[float, float]] = {}
    for i, col in enumerate(order):
        members = sorted(columns[col], key=lambda n: n["service"])
        span = len(members) * NODE_H + (len(members) - 1) * ROW_GAP
        top = MARGIN + 20 + (height - 2 * MARGIN - 40 - span) / 2
        for j, node in enumerate(members):
            place[node["service"]] = (MARGIN + i * (NODE_W + COL_GAP),
                                      top + j * (NODE_H + ROW_GAP))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="aureacore-deps" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="dependencies of {_e(data["service"])}" font-family="sans-serif">',
        "<defs>",
        *(f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
          f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
          f'fill="{colour}"/></marker>'
          for name, colour in (("ok", "#546e7a"), ("missing", "#c62828"))),
        "</defs>",
    ]
    labels = [(i, col) for i, col in enumerate(order)]
    for i, col in labels:
        text = ("this service" if col == 0 else
                f"depends on ({col} away)" if col > 0 else f"depended on by ({-col} away)")
        x = MARGIN + i * (NODE_W + COL_GAP) + NODE_W / 2
        parts.append(f'<text x="{x}" y="{MARGIN}" text-anchor="middle" font-size="12" '
                     f'fill="#607d8b">{_e(text)}</text>')
    present = {n["service"]: n["present"] for n in data["nodes"]}
    for edge in data["edges"]:
        parts.append(_edge_svg(edge, place, present))
    for node in data["nodes"]:
        parts.append(_node_svg(node, place[node["service"]], node["service"] == data["service"],
                               link))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge_svg(edge: dict, place: dict, present: dict) -> str:
    source, target = edge["service"], edge["depends_on"]
    sx, sy = place[source]
    tx, ty = place[target]
    missing = not present.get(target, True)
    colour = "#c62828" if missing else "#546e7a"
    dash = "" if edge["required"] else ' stroke-dasharray="6 4"'
    title = (f"{source} {'requires' if edge['required'] else 'optionally uses'} {target}"
             f"{' ' + edge['version_constraint'] if edge['version_constraint'] else ''}"
             f"{' (missing)' if missing else ''}")
    if source == target:
        x, y = sx + NODE_W * 0.7, sy
        d = f"M{x},{y} C{x - 20},{y - 40} {x + 40},{y - 40} {x + 20},{y}"
    elif tx > sx:
        x1, y1, x2, y2 = sx + NODE_W, sy + NODE_H / 2, tx, ty + NODE_H / 2
        d = f"M{x1},{y1} C{x1 + 45},{y1} {x2 - 45},{y2} {x2},{y2}"
    else:  # same column or backwards (on a cycle): dip under the source, enter from the right
        x1, y1 = sx + NODE_W / 2, sy + NODE_H
        x2, y2 = tx + NODE_W, ty + NODE_H / 2
        d = f"M{x1},{y1} C{x1},{y1 + 40} {x2 + 60},{y2} {x2},{y2}"
    marker = "missing" if missing else "ok"
    return (f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="1.6"{dash} '
            f'marker-end="url(#arrow-{marker})"><title>{_e(title)}</title></path>')


def _node_svg(node: dict, at: tuple[float, float], focus: bool, link: Any) -> str:
    x, y = at
    sid = node["service"]
    if node["present"]:
        fill, stroke = STATUS_COLOURS.get(node["status"], STATUS_COLOURS[None])
        state = node["status"] or "unknown"
    else:
        fill, stroke = MISSING_COLOURS
        state = "MISSING"
    dash = ' stroke-dasharray="4 3"' if not node["present"] else ""
    width = 3 if focus else 1.5
    namespace, _, name = sid.partition("/")
    detail = " · ".join(p for p in (namespace, node.get("version"), state) if p)
    tooltip = f"{sid} — {state}" + (f": {node['message']}" if node.get("message") else "")
    if node.get("health"):
        tooltip += f" — health {node['health']}"
    body = [
        f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="7" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width}"{dash}/>',
        f'<text x="{x + 10}" y="{y + 19}" font-size="13" font-weight="bold" '
        f'fill="#263238">{_e(_clip(name or sid))}</text>',
        f'<text x="{x + 10}" y="{y + 36}" font-size="11" fill="#455a64">'
        f'{_e(_clip(detail, 34))}</text>',
    ]
    if node.get("health"):
        body.append(f'<circle cx="{x + NODE_W - 12}" cy="{y + 12}" r="6" '
                    f'fill="{HEALTH_COLOURS.get(node["health"], "#9e9e9e")}" '
                    f'class="health-{_e(node["health"])}"/>')
    group = (f'<g class="node status-{_e(state.lower())}" data-service="{_e(sid)}">'
             f'<title>{_e(tooltip)}</title>{"".join(body)}</g>')
    if link is not None and node["present"] and not focus:
        return f'<a href="{_e(link(sid))}">{group}</a>'
    return group


# -- the page -------------------------------------------------------------------------
async def deps_page(datasette: Any, request: Any) -> Response:
    from . import _config, _registry_db, aureacore_url, service_url

    old_database = request.args.get("database")
    if request.url_vars.get("database") is None and old_database:  # the first form
        if old_database not in datasette.databases:
            raise NotFound(f"no registry database {old_database}")
        params = {k: request.args.get(k) for k in request.args.keys() if k != "database"}
        return Response.redirect(
            aureacore_url(datasette, old_database, f"/deps/{quote(request.url_vars['service'])}"
                          f"{request.url_vars.get('ext') or ''}")
            + (f"?{urlencode(params)}" if params else ""))
    db = await _registry_db(datasette, request)
    await datasette.ensure_permissions(request.actor, [("view-table", (db.name, "dependencies"))])
    ref = unquote(request.url_vars["service"])  # the page's own links quote it
    at = request.args.get("at") or None
    try:
        depth = min(4, max(1, int(request.args.get("depth") or 2)))
    except ValueError:
        depth = 2
    limit, offset = page_args(request.args.get("limit"), request.args.get("offset"))
    cycles = page_args(request.args.get("cycles_limit"), request.args.get("cycles_offset"),
                       CYCLES_PAGE_SIZE)
    repo = _config(datasette, db.name).get("repo")
    try:
        data = await db.execute_fn(lambda conn: build(conn, ref, at, depth, repo, limit,
                                                      offset, cycles))
    except DepGraphError as exc:
        raise NotFound(str(exc)) from None
    if request.url_vars.get("ext") == ".json":
        return Response.json(data, default=str)

    def link(sid: str, **extra: Any) -> str:
        params = {k: v for k, v in {"at": at, **extra}.items() if v is not None and v != ""}
        path = aureacore_url(datasette, db.name, f"/deps/{quote(sid)}")
        return path + (f"?{urlencode(params)}" if params else "")

    def page_link(new_offset: int, new_limit: int | None = limit, *,
                  cycles_page: tuple[int | None, int] = cycles) -> str:
        """This page with the lists (and the cycles) paged on."""
        def size(value: int | None, default: int) -> int | None:
            return -1 if value is None else (value if value != default else None)

        return link(data["service"], depth=depth if request.args.get("depth") else None,
                    limit=size(new_limit, PAGE_SIZE), offset=new_offset or None,
                    cycles_limit=size(cycles_page[0], CYCLES_PAGE_SIZE),
                    cycles_offset=cycles_page[1] or None)

    known = await db.execute("select 1 from services where id = ?", [data["service"]])
    context = {
        "data": data, "svg": render_svg(data, link), "database": db.name,
        "json_url": aureacore_url(datasette, db.name, f"/deps/{quote(data['service'])}.json")
        + (f"?{urlencode({k: v for k, v in {'at': at, 'depth': depth}.items() if v})}"),
        "link": link, "page_link": page_link, "depths": [1, 2, 3, 4],
        "db_url": datasette.urls.database(db.name),
        "overview_url": aureacore_url(datasette, db.name),
        "service_page_url": service_url(datasette, data["service"], database=db.name)
        if known.first() else None,
        "health_colours": HEALTH_COLOURS,
    }
    body = await datasette.render_template(TEMPLATE, context, request=request)
    from aureacore_db.web import content_security_policy

    return Response.html(body, headers={
        "Content-Security-Policy": content_security_policy(datasette)})

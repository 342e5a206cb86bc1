"""The dependency graph of the services present at a mainline commit, built from the DB.

An edge ``a -> b`` means service ``a`` declares a dependency on ``b``; it carries
``required`` and ``version_constraint``. The services present as of mainline commit M
are those whose latest mainline ``history`` row with ``seq <= M.seq`` is not a removal
(DESIGN §3); their configs' ``dependencies`` rows give the edges. A dependency on a
service that is not present is kept as a node with ``present = False``.

Of one environment (DESIGN §6): its current services are its ``environment_services``
rows; as of a commit M of its mainline, the latest rows of commits on its mainline
(``environment_commits``) with ``seq <= M.seq``. Without one, the first environment's
(the ``mainline`` columns).

The graph algorithms (reachability, shortest paths, cycles, condensation, topological
generations) are networkx's.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import networkx as nx

from . import envstate, revisions
from .environments import Environment
from .tree import service_ref


class DepGraphError(Exception):
    """An unknown commit or service was asked for."""


@dataclass(frozen=True)
class Link:
    """A service reachable from another one along dependency edges."""

    service: str
    depth: int  # shortest distance in edges
    required: bool  # reachable along required edges only
    path: list[str]  # a shortest path, each service depending on the next
    present: bool = True
    status: str | None = None
    version: str | None = None
    version_constraint: str | None = None  # of the direct edge (depth 1)


@dataclass
class Impact:
    """What breaks if a service goes away."""

    service: str
    breaks: list[Link] = field(default_factory=list)  # depend on it along required edges
    degraded: list[Link] = field(default_factory=list)  # only along some optional edge
    direct_required: list[str] = field(default_factory=list)  # would turn ERROR at once
    direct_optional: list[str] = field(default_factory=list)  # would get a warning


@dataclass(frozen=True)
class Cycle:
    """A dependency cycle, rotated to start at its smallest service id."""

    services: list[str]
    required: bool  # every edge required: these services are in ERROR

    def text(self) -> str:
        return " -> ".join([*self.services, self.services[0]])


@dataclass
class Order:
    """Start-up order: dependencies before the services that need them."""

    generations: list[list[str]]  # each generation needs only earlier ones
    order: list[str]  # the generations flattened
    cyclic: list[list[str]]  # groups of services that depend on each other (kept together)
    missing: list[str]  # referenced but not present (left out of the order)


def _conn(db: Any) -> sqlite3.Connection:
    """A sqlite3 connection from a connection or a ``sqlite_utils.Database``."""
    return getattr(db, "conn", db)


def resolve_commit(db: Any, at: str | None = None, repo_path: str | None = None
                   ) -> tuple[str | None, int | None]:
    """(sha, seq) of mainline commit ``at`` (any reference :mod:`.revisions` accepts;
    None or empty: the tip; (None, None) in an empty database)."""
    conn = _conn(db)
    if not (at or "").strip() and revisions.tip(conn) is None:
        return None, None
    try:
        found = revisions.resolve_commit(conn, at, repo_path)
    except revisions.UnknownCommit as exc:
        raise DepGraphError(str(exc)) from None
    if not found.mainline:
        raise DepGraphError(f"commit {found.sha[:12]} is not on the mainline "
                            "(first-parent chain)")
    return found.sha, found.seq


_PRESENT_SQL = """
    with latest as (
        -- per service, its last mainline rows up to the commit: index seeks on
        -- (service_id, seq), so the cost follows the number of services, not of rows
        select s.id as service_id,
               (select h.id from history h
                where h.service_id = s.id and +h.mainline = 1 and h.seq <= :seq
                order by h.seq desc, h.id desc limit 1) as history_id,
               (select st.id from status st
                where st.service_id = s.id and +st.mainline = 1 and st.seq <= :seq
                order by st.seq desc, st.id desc limit 1) as status_id
        from services s
    )
    select l.service_id, h.config_id, c.version, st.status, st.message
    from latest l
    join history h on h.id = l.history_id
    left join configs c on c.id = h.config_id
    left join status st on st.id = l.status_id
    where h.change != 'removed'
    order by l.service_id
"""

_ON_ENV = ("exists (select 1 from environment_commits e where e.environment = :env "
           "and e.commit_sha = {}.commit_sha)")

_ENV_PRESENT_SQL = f"""
    with latest as (
        select es.service_id,
               (select h.id from history h
                where h.service_id = es.service_id and h.seq <= :seq and {_ON_ENV.format('h')}
                order by h.seq desc, h.id desc limit 1) as history_id,
               (select st.id from status st
                where st.service_id = es.service_id and st.seq <= :seq
                  and {_ON_ENV.format('st')}
                order by st.seq desc, st.id desc limit 1) as status_id
        from environment_services es where es.environment = :env
    )
    select l.service_id, h.config_id, c.version, st.status, st.message
    from latest l
    join history h on h.id = l.history_id
    left join configs c on c.id = h.config_id
    left join status st on st.id = l.status_id
    where h.change != 'removed'
    order by l.service_id
"""

_ENV_CURRENT_SQL = """
    select service_id, config_id, version, status, status_message
    from environment_services
    where environment = :env and removed = 0
    order by service_id
"""

_EDGES_SQL = """
    select d.config_id, d.position, d.service_id, d.depends_on, d.version_constraint,
           d.required, c.dependencies
    from dependencies d join configs c on c.id = d.config_id
    where d.config_id in (select value from json_each(:ids))
    order by d.config_id, d.position
"""


def _target(sid: str, row: tuple) -> str:
    """The dependency's service id as seen from ``sid``.

    ``dependencies`` rows belong to a config blob; when two services share one blob
    (identical files in two namespaces) a namespace-less reference must resolve against
    the namespace of the service asking, not of the one that stored the rows.
    """
    _config, position, owner, depends_on, _constraint, _required, raw = row
    if owner == sid or not raw:
        return depends_on
    try:
        ref = json.loads(raw)[position]["service"]
    except (ValueError, LookupError, TypeError):
        return depends_on
    return service_ref(ref, sid.partition("/")[0]) if isinstance(ref, str) else depends_on


@dataclass
class DepGraph:
    """Services present at one mainline commit and their declared dependencies."""

    graph: nx.DiGraph
    commit: str | None
    seq: int | None

    # -- building -----------------------------------------------------------
    @classmethod
    def load(cls, db: Any, at: str | None = None, repo_path: str | None = None,
             environment: Environment | None = None) -> DepGraph:
        """The graph as of mainline commit ``at`` (default: the latest mainline commit),
        of ``environment``'s mainline when given (default: the first environment's)."""
        conn = _conn(db)
        if environment is not None:
            sha, seq, services = _env_services(conn, environment, at, repo_path)
        else:
            sha, seq = resolve_commit(conn, at, repo_path)
            services = [] if seq is None else conn.execute(_PRESENT_SQL,
                                                           {"seq": seq}).fetchall()
        graph = nx.DiGraph()
        if seq is None:
            return cls(graph, None, None)
        by_config: dict[str, list[str]] = {}
        for sid, config_id, version, status, message in services:
            graph.add_node(sid, present=True, version=version, status=status,
                           message=message, config_id=config_id)
            if config_id:
                by_config.setdefault(config_id, []).append(sid)
        rows = conn.execute(_EDGES_SQL, {"ids": json.dumps(sorted(by_config))}).fetchall()
        for row in rows:
            for sid in by_config.get(row[0], ()):
                target = _target(sid, row)
                if target not in graph:
                    graph.add_node(target, present=False, version=None, status=None,
                                   message=None, config_id=None)
                required = bool(row[5])
                if graph.has_edge(sid, target):  # listed twice: required wins
                    required = required or graph.edges[sid, target]["required"]
                graph.add_edge(sid, target, required=required, version_constraint=row[4])
        return cls(graph, sha, seq)

    # -- basics -------------------------------------------------------------
    @property
    def required_graph(self) -> nx.DiGraph:
        """The subgraph of required edges only."""
        return self.graph.edge_subgraph(
            (u, v) for u, v, required in self.graph.edges(data="required") if required
        )

    def services(self) -> list[str]:
        """Service ids present at the commit."""
        return sorted(n for n, present in self.graph.nodes(data="present") if present)

    def missing(self) -> list[str]:
        """Service ids that are depended on but not present."""
        return sorted(n for n, present in self.graph.nodes(data="present") if not present)

    def node(self, sid: str) -> dict[str, Any]:
        self._require(sid)
        return {"service": sid, **self.graph.nodes[sid]}

    def resolve(self, ref: str) -> str:
        """A service id from ``namespace/name``, or a bare name when only one matches."""
        if ref in self.graph or "/" in ref:
            return ref
        matches = sorted(n for n in self.graph if n.partition("/")[2] == ref)
        if len(matches) > 1:
            raise DepGraphError(f"{ref} is ambiguous: {', '.join(matches)}")
        return matches[0] if matches else ref

    def _require(self, sid: str) -> None:
        if sid not in self.graph:
            where = f" at {self.commit[:12]}" if self.commit else ""
            raise DepGraphError(f"no service {sid}{where}")

    # -- neighbourhoods -----------------------------------------------------
    def _links(self, sid: str, graph: nx.DiGraph, depth: int | None,
               forward: bool) -> list[Link]:
        required = self.required_graph
        if not forward:
            graph, required = graph.reverse(copy=False), required.reverse(copy=False)
        paths = nx.single_source_shortest_path(graph, sid, cutoff=depth)
        reach = (set(nx.single_source_shortest_path_length(required, sid))
                 if sid in required else set())
        links = []
        for other, path in paths.items():
            if other == sid:
                continue
            data = self.graph.nodes[other]
            constraint = None
            if len(path) == 2:
                edge = (sid, other) if forward else (other, sid)
                constraint = self.graph.edges[edge]["version_constraint"]
            if not forward:
                path = path[::-1]
            links.append(Link(other, len(path) - 1, other in reach, path,
                              bool(data["present"]), data["status"], data["version"],
                              constraint))
        return sorted(links, key=lambda link: (link.depth, link.service))

    def upstream(self, sid: str, depth: int | None = None) -> list[Link]:
        """What ``sid`` depends on, directly and transitively (``depth`` limits it)."""
        self._require(sid)
        return self._links(sid, self.graph, depth, forward=True)

    def downstream(self, sid: str, depth: int | None = None) -> list[Link]:
        """What depends on ``sid``, directly and transitively."""
        self._require(sid)
        return self._links(sid, self.graph, depth, forward=False)

    def impact(self, sid: str) -> Impact:
        """What breaks if ``sid`` goes.

        ``breaks``: services that reach it along required edges only (each needs the
        next); ``degraded``: the other services that reach it, through at least one
        optional edge. ``direct_required`` / ``direct_optional``: services whose own
        validation would change (ERROR / warning).
        """
        self._require(sid)
        impact = Impact(sid)
        for link in self.downstream(sid):
            (impact.breaks if link.required else impact.degraded).append(link)
        for dependent, _target, required in self.graph.in_edges(sid, data="required"):
            if dependent == sid:
                continue
            (impact.direct_required if required else impact.direct_optional).append(dependent)
        impact.direct_required.sort()
        impact.direct_optional.sort()
        return impact

    def neighbourhood(self, sid: str, depth: int = 2) -> nx.DiGraph:
        """The subgraph within ``depth`` edges of ``sid``, both directions."""
        self._require(sid)
        nodes = {sid}
        nodes |= set(nx.single_source_shortest_path_length(self.graph, sid, cutoff=depth))
        nodes |= set(nx.single_source_shortest_path_length(self.graph.reverse(copy=False), sid,
                                                            cutoff=depth))
        return self.graph.subgraph(nodes)

    # -- whole graph --------------------------------------------------------
    def cycles(self, *, required_only: bool = False, limit: int = 1000) -> list[Cycle]:
        """Dependency cycles (at most ``limit``), required ones first."""
        graph = self.required_graph if required_only else self.graph
        found = []
        for loop in itertools.islice(nx.simple_cycles(graph), limit):
            start = loop.index(min(loop))
            loop = loop[start:] + loop[:start]
            edges = zip(loop, loop[1:] + loop[:1], strict=True)
            found.append(Cycle(loop, all(self.graph.edges[e]["required"] for e in edges)))
        return sorted(found, key=lambda c: (not c.required, len(c.services), c.services))

    def order(self) -> Order:
        """Topological generations of the present services, dependencies first.

        Services on a cycle cannot be ordered among themselves; each such group is
        kept together (networkx's condensation) and listed in ``cyclic``.
        """
        present = self.graph.subgraph(self.services())
        condensed = nx.condensation(present)
        members = condensed.graph["mapping"]
        groups: dict[int, list[str]] = {}
        for sid, group in members.items():
            groups.setdefault(group, []).append(sid)
        generations: list[list[str]] = []
        for generation in nx.topological_generations(condensed.reverse(copy=False)):
            ids = sorted(sid for group in generation for sid in sorted(groups[group]))
            generations.append(ids)
        cyclic = sorted(sorted(ids) for ids in groups.values()
                        if len(ids) > 1 or present.has_edge(ids[0], ids[0]))
        return Order(generations, [sid for gen in generations for sid in gen], cyclic,
                     self.missing())

    # -- output -------------------------------------------------------------
    def report(self, sid: str, depth: int | None = None) -> dict[str, Any]:
        """Everything about one service, as JSON-ready data."""
        impact = self.impact(sid)
        return {
            "commit": self.commit, "seq": self.seq, **self.node(sid),
            "upstream": [asdict(link) for link in self.upstream(sid, depth)],
            "downstream": [asdict(link) for link in self.downstream(sid, depth)],
            "impact": {
                "breaks": [asdict(link) for link in impact.breaks],
                "degraded": [asdict(link) for link in impact.degraded],
                "direct_required": impact.direct_required,
                "direct_optional": impact.direct_optional,
            },
            "cycles": [asdict(c) for c in self.cycles() if sid in c.services],
        }


def cycle_members_json(edges_json: str | None) -> str:
    """SQL ``aureacore_cycle_members(json_group_array(json_array(service, depends_on)))``:
    the services on a cycle of those edges (a strongly connected component of two or
    more, or a self-loop), as a sorted JSON array. Linear in the edges, where a recursive
    SQL closure grows with services times their reach."""
    graph = nx.DiGraph()
    graph.add_edges_from((str(u), str(v)) for u, v in json.loads(edges_json or "[]"))
    members: set[str] = set()
    for component in nx.strongly_connected_components(graph):
        if len(component) > 1:
            members |= component
        else:
            (node,) = component
            if graph.has_edge(node, node):
                members.add(node)
    return json.dumps(sorted(members))


def _env_services(conn: sqlite3.Connection, env: Environment, at: str | None,
                  repo_path: str | None) -> tuple[str | None, int | None, list[tuple]]:
    """(sha, seq, present service rows) of ``env`` as of commit ``at`` of its mainline
    (empty: its current services)."""
    if not (at or "").strip() and envstate.env_tip(conn, env) is None:
        return None, None, []
    try:
        found = envstate.resolve_in(conn, env, at, repo_path)
    except revisions.UnknownCommit as exc:
        raise DepGraphError(str(exc)) from None
    if not found.mainline:
        raise DepGraphError(f"commit {found.sha[:12]} is not on the mainline of "
                            f"environment {env.name} (branch {env.branch})")
    params = {"env": env.name, "seq": found.seq}
    sql = _ENV_CURRENT_SQL if not (at or "").strip() else _ENV_PRESENT_SQL
    return found.sha, found.seq, conn.execute(sql, params).fetchall()


def load_graph(db: Any, at: str | None = None,
               environment: Environment | None = None) -> DepGraph:
    """Shorthand for :meth:`DepGraph.load`."""
    return DepGraph.load(db, at, environment=environment)


def edges_of(graph: nx.DiGraph) -> Iterable[dict[str, Any]]:
    """Edges as JSON-ready rows."""
    for source, target, data in sorted(graph.edges(data=True)):
        yield {"service": source, "depends_on": target, "required": data["required"],
               "version_constraint": data["version_constraint"]}

"""Verdicts (DESIGN §2): a service's status and problems from its file, the layout, its
parameter schema, its dependencies and the required-dependency cycles it is part of."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .names import CONFIGURED, ERROR
from .validation import Dependency, Problem
from .versions import satisfies, service_ref, version_spec

if TYPE_CHECKING:
    from .tree import TreeState

Edges = dict[str, frozenset[str]]  # service id -> the services it requires
CYCLE_TEXT = "required dependency cycle: "  # how a cycle member's problem begins


@dataclass(frozen=True)
class Verdict:
    """A service's status and the problems behind it."""

    status: str
    message: str
    problems: tuple[Problem, ...]
    # how many of ``problems`` come first and follow from the service's own file, its
    # paths, its parameter schema and the layout, not from other services (not compared)
    own: int = field(default=0, compare=False, repr=False)


CLEAN = Verdict(CONFIGURED, "", ())  # the verdict of every service without problems


def verdict(state: TreeState, sid: str, same_own: Verdict | None = None) -> Verdict:
    """Service ``sid``'s status and problems in ``state`` (DESIGN §2).

    ``same_own``: an earlier verdict of the service when its file, paths, parameter
    schema and the layout are the same since (only its dependencies' targets or the
    cycles may differ): its own problems are taken from it, and it is returned itself
    when nothing differs."""
    paths = state.by_id[sid]
    entry = state.entries[paths[0]]
    check = entry.check
    namespace = sid.partition("/")[0]
    if same_own is not None:
        problems = list(same_own.problems[:same_own.own])
    else:
        problems = list(state.layout.problems) + list(check.problems)
        problems += state.layout.identity_problems(sid, entry)
        if len(paths) > 1:
            problems.append(Problem(
                "error", "duplicate",
                f"service {sid} is declared by {len(paths)} files: {', '.join(paths)}",
                "$.name"))
        schema_oid = state.param_schemas.get(sid)
        if schema_oid is not None and entry.kind == "blob":
            schema_path = f"{state.layout.schema_dir}/{sid}.json"
            problems += state.reader.parameter_problems(check, schema_oid, schema_path)
    own = len(problems)
    for dep in check.dependencies:
        problems += dependency_problems(state, sid, namespace, dep)
    if sid in state.cycles:
        problems.append(Problem(
            "error", "cycle", f"{CYCLE_TEXT}{state.cycles[sid]}",
            "$.dependencies"))
    if same_own is not None and len(problems) == len(same_own.problems) \
            and tuple(problems) == same_own.problems:
        return same_own
    if not problems:
        return CLEAN
    errors = [describe(p) for p in problems if p.severity == "error"]
    warnings = [describe(p) for p in problems if p.severity == "warning"]
    status = ERROR if errors else CONFIGURED
    message = "; ".join(errors + [f"warning: {w}" for w in warnings])
    if len(message) > 1000:
        message = message[:999] + "…"
    return Verdict(status, message, tuple(problems), own)


def dependency_problems(state: TreeState, sid: str, namespace: str,
                        dep: Dependency) -> list[Problem]:
    """Problems of one declared dependency: missing target, bad or unmet constraint."""
    target = service_ref(dep.service, namespace)
    if target == sid:
        if dep.required:
            return []  # reported as a cycle
        return [Problem("warning", "dependency", "depends on itself",
                        f"$.dependencies[{dep.index}].service")]
    target_entry = state.primary(target)
    constraint = dep.version_constraint
    if target_entry is not None:  # the common case first: it exists, and is as asked
        if not constraint:
            return []
        version = target_entry.check.version
        if version and satisfies(constraint, version) is True:
            return []
    severity = "error" if dep.required else "warning"
    what = "required" if dep.required else "optional"
    base = f"$.dependencies[{dep.index}]"
    if target_entry is None:
        return [Problem(severity, "dependency",
                        f"{what} dependency {target} does not exist", f"{base}.service")]
    if version_spec(constraint) is None:
        return [Problem(severity, "dependency",
                        f"invalid version constraint {constraint!r} for {target}",
                        f"{base}.version_constraint")]
    ok = satisfies(constraint, version) if version else None
    if ok is None:
        return [Problem("warning", "dependency",
                        f"cannot check {target} against {constraint}: its "
                        "version is unknown", f"{base}.version_constraint")]
    return [Problem(severity, "dependency",
                    f"{what} dependency {target} is at {version}, which does not "
                    f"satisfy {constraint}", f"{base}.version_constraint")]


def describe(problem: Problem) -> str:
    """A problem as one readable phrase; schema errors say where."""
    if problem.kind == "schema" and problem.json_path != "$":
        return f"{problem.json_path}: {problem.message}"
    return problem.message


def cycles_may_change(req_edges: Edges, cycles: dict[str, str], added: list[tuple[str, str]],
                      removed: list[tuple[str, str]]) -> bool:
    """Cheap test before recomputing cycles: a removed edge inside a known cycle, or
    an added edge u -> v where u is reachable from v (it closes a cycle)."""
    if any(u in cycles and v in cycles for u, v in removed):
        return True
    for u, v in added:
        if u == v or v in cycles:
            return True
        seen, stack = {v}, [v]
        while stack:
            for nxt in req_edges.get(stack.pop(), ()):
                if nxt == u:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
    return False


def find_cycles(req_edges: Edges, cycles: dict[str, str], changed: set[str]) -> dict[str, str]:
    """Cycle message per member of a required-dependency cycle.

    Only cycles through ``changed`` nodes (sources of added or removed edges) or
    known cycles can differ, and each lies within the nodes reachable from them, so
    strongly connected components are computed on that forward-closed part.
    """
    import networkx as nx  # imported here: only commits that change edges need it

    seeds = changed | set(cycles)  # old cycles may break: recheck their members
    reach, stack = set(seeds), list(seeds)
    while stack:
        for nxt in req_edges.get(stack.pop(), ()):
            if nxt not in reach:
                reach.add(nxt)
                stack.append(nxt)
    graph = nx.DiGraph()
    for sid in sorted(reach):  # sorted, so cycle messages are deterministic
        graph.add_edges_from((sid, t) for t in sorted(req_edges.get(sid, ())))
    members: dict[str, str] = {}
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (node,) = component
            if not graph.has_edge(node, node):
                continue
        start = min(component)
        cycle = [u for u, _v in nx.find_cycle(graph.subgraph(component), source=start)]
        for node in component:
            if node in cycle:
                i = cycle.index(node)
                loop = cycle[i:] + cycle[:i]
            else:
                loop = cycle
            members[node] = " -> ".join(loop + [loop[0]])
    return members

"""The Git push webhook route: ``POST /-/aureacore/hooks/git`` (the first registry) and
``POST /<db>/-/aureacore/hooks/git`` (a given one).

Its own ``datasette`` entry point (``aureacore_githooks``). A forge (GitHub, GitLab,
Gitea, Forgejo) posts here on every push; the delivery is verified against the secret in
the server's ``AUREACORE_GIT_HOOK_SECRET`` (no secret: everything is refused), logged in
``git_hook_deliveries``, answered at once (202 when a sync is queued) and synced in the
background (:mod:`aureacore_db.githooks`). No actor is needed; forges cannot send a CSRF
token, so the route is exempt from Datasette's CSRF check; the body is bounded (413).
"""

from __future__ import annotations

import asyncio
import os

from datasette.utils import tilde_decode
from datasette.utils.asgi import Response

from . import read_body

HOOK_PATH = "/-/aureacore/hooks/git"
MARKER_TABLE = "aureacore_meta"


def _is_hook_path(path: str) -> bool:
    return path.endswith(HOOK_PATH)


async def _database(datasette, request):
    """The registry the hook is for: ``/<db>/...``, else the first registry attached."""
    route = request.url_vars.get("database")
    for name, db in datasette.databases.items():
        if name in ("_internal", "_memory"):
            continue
        if route is not None and db.route != tilde_decode(route):
            continue
        if await db.table_exists(MARKER_TABLE):
            return db
        if route is not None:
            return None
    return None


async def git_hook_view(datasette, request):
    """Verify, log and (for a push to the followed branch) queue a sync; answer at once."""
    from aureacore_db.githooks import MAX_BODY, SECRET_ENV, log_refusal, receive, syncer_for

    if request.method != "POST":
        return Response.json({"outcome": "refused", "reason": "POST a push webhook here"},
                             status=405, headers={"Allow": "POST"})
    db = await _database(datasette, request)
    if db is None:
        return Response.json({"outcome": "refused",
                              "reason": "no such aureacore registry database"}, status=404)
    if not db.is_mutable or not db.path:
        return Response.json({"outcome": "refused", "reason": f"{db.name} is read-only "
                              "here; it cannot be synced"}, status=409)
    body = await read_body(request, MAX_BODY)
    if body is None:
        reason = f"the body is larger than {MAX_BODY} bytes"
        row = await asyncio.to_thread(log_refusal, db.path, reason, request.headers)
        return Response.json({"outcome": "refused", "reason": reason, "delivery": row},
                             status=413)
    secret = os.environ.get(SECRET_ENV) or None
    verdict, row = await asyncio.to_thread(receive, db.path, request.headers, body, secret)
    if verdict.outcome == "accepted":
        repo = (datasette.plugin_config("aureacore", database=db.name) or {}).get("repo")
        syncer_for(db.path, str(repo) if repo else None).submit(row)
    return Response.json({**verdict.answer(row), "database": db.name},
                         status=verdict.status)


def routes() -> list:
    """The Git push route (registered by the package's ``register_routes``)."""
    return [
        (rf"^/(?P<database>[^/]+){HOOK_PATH}$", git_hook_view),
        (rf"^{HOOK_PATH}$", git_hook_view),
    ]


def skip_csrf(scope: dict) -> bool:
    """Forges cannot send a CSRF token: the hook route is verified by its signature."""
    return scope.get("type") == "http" and _is_hook_path(scope.get("path", ""))

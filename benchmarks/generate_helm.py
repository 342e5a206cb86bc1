"""Generate a Helm-values-shaped Git history of service configs (DESIGN §1, convention layout).

Dev tool, deterministic for a given seed; shares the fast-import writer, names and
version bumps with ``generate_repo.py``.

    python benchmarks/generate_helm.py --services 300 --commits 5000 OUT_DIR

Each ``services/<namespace>/<name>.yaml`` holds the service's own keys and, as its
``parameters``, a Helm values file as teams write them (150-400 lines): image, replicas,
resources, env lists, ingress hosts and TLS, annotations, node selectors, tolerations,
affinity, probes, autoscaling, security contexts, sometimes an embedded config file as a
block scalar; helm-docs comments, quoted and plain strings, each service in its own
style. The history is a GitOps repository's: most commits are a deploy bot bumping one
service's image tag, then people scaling or tuning one service (often through a pull
request merged with a merge commit), release trains bumping several tags, rollouts of a
shared setting to many services at once, services added and removed, and a few invalid
files fixed a couple of commits later.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from generate_repo import (
    FIRST,
    LAST,
    NAMESPACES,
    START_TS,
    TIMEZONES,
    WORDS_A,
    Files,
    _bump_version,
    _size,
    commit_edits,
    fast_import,
    non_string,
    run_git,
    unique_name,
)

SIDE_REF = "refs/heads/_generator_pr"
BOT = ("deploy-bot", "deploy-bot@example.com", "+0000")
REGISTRY = "registry.example.com"
INSTANCE_TYPES = ["m5.large", "m5.xlarge", "m6i.large", "m6i.xlarge", "c6i.2xlarge"]
LOG_LEVELS = ["debug", "info", "warn", "error"]
CPU = ["50m", "100m", "250m", "500m", "1", "2"]
MEMORY = ["64Mi", "128Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi"]

# helm-docs style comments for keys of a values file (a service writes some of them)
HELP = {
    "replicaCount": "Number of pods to run (ignored while autoscaling is enabled)",
    "image": "Container image",
    "image.repository": "Image repository",
    "image.pullPolicy": "Image pull policy",
    "image.tag": "Overrides the image tag whose default is the chart appVersion.",
    "imagePullSecrets": "Secrets for pulling from a private registry",
    "serviceAccount": "Service account of the pods",
    "serviceAccount.create": "Whether a service account should be created",
    "podAnnotations": "Annotations added to every pod",
    "podSecurityContext": "Security context of the pod",
    "securityContext": "Security context of the container",
    "service": "Kubernetes Service",
    "ingress": "Ingress for the service",
    "ingress.hosts": "Host names and paths routed to the service",
    "resources": "CPU and memory requests and limits",
    "livenessProbe": "Restart the container when this fails",
    "readinessProbe": "Take the pod out of the Service while this fails",
    "autoscaling": "Horizontal pod autoscaler",
    "env": "Environment variables of the container",
    "nodeSelector": "Node labels for pod assignment",
    "tolerations": "Tolerations for pod assignment",
    "affinity": "Affinity rules for pod assignment",
    "metrics": "Prometheus metrics",
    "podDisruptionBudget": "Pod disruption budget",
    "config": "Files mounted into the container at /etc/app",
}

Svc = dict[str, Any]


# --------------------------------------------------------------------------- YAML rendering


@dataclass(frozen=True)
class Style:
    """How one team writes its values file."""

    quote: str  # "always" (every string double-quoted), "needed", "single"
    indent_lists: bool  # "  - x" under a key instead of "- x" at the key's indent
    flow_short: bool  # short lists of strings as ["a", "b"]
    comments: frozenset[str]  # dotted keys of ``parameters`` that get a "# --" comment


_SAFE_PLAIN = re.compile(r"[A-Za-z0-9/][A-Za-z0-9_./:@=+*-]*")


@functools.lru_cache(maxsize=65536)
def _plain_ok(s: str) -> bool:
    """True when ``s`` reads back as the same string unquoted (YAML 1.1, PyYAML)."""
    if not _SAFE_PLAIN.fullmatch(s) or ": " in s or s.endswith(":"):
        return False
    try:
        return yaml.load(f"k: {s}\n", Loader=yaml.CSafeLoader)["k"] == s
    except yaml.YAMLError:
        return False


def _scalar(v: Any, style: Style) -> str:
    text = non_string(v)
    if text is not None:
        return text
    s = str(v)
    if style.quote == "needed" and s and _plain_ok(s):
        return s
    if style.quote == "single" and "'" not in s and s and _plain_ok(s):
        return f"'{s}'" if not s[0].isalpha() else s
    return json.dumps(s)


def _lines(obj: Any, ind: int, style: Style, path: str, out: list[str]) -> None:
    pad = "  " * ind
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{path}.{k}" if path else k
            if key in style.comments and key in HELP:
                out.append(f"{pad}# -- {HELP[key]}")
            if isinstance(v, str) and "\n" in v:
                out.append(f"{pad}{k}: |")
                out.extend(f"{pad}  {line}" if line else "" for line in v.rstrip("\n").split("\n"))
            elif isinstance(v, list) and v and style.flow_short and len(v) <= 4 and all(
                    isinstance(x, str) for x in v):
                out.append(f"{pad}{k}: [{', '.join(json.dumps(x) for x in v)}]")
            elif isinstance(v, dict | list) and v:
                out.append(f"{pad}{k}:")
                inner = ind + 1 if isinstance(v, dict) or style.indent_lists else ind
                _lines(v, inner, style, key, out)
            else:
                out.append(f"{pad}{k}: {_scalar(v, style)}")
    else:
        for item in obj:
            if isinstance(item, dict) and item:
                sub: list[str] = []
                _lines(item, ind + 1, style, path, sub)
                out.append(f"{pad}- {sub[0].lstrip()}")
                out.extend(sub[1:])
            else:
                out.append(f"{pad}- {_scalar(item, style)}")


def render(data: Svc, style: Style) -> str:
    """A service file: the service's keys, then its Helm values under ``parameters``."""
    out = [f"# {data['namespace']}/{data['name']}: deployed by Argo CD from this file",
           "# Helm values are under parameters (chart: "
           f"{data['metadata']['chart']} {data['metadata']['chart_version']})", ""]
    own = {k: v for k, v in data.items() if k != "parameters"}
    _lines(own, 0, Style("needed", style.indent_lists, False, frozenset()), "", out)
    out += ["", "parameters:"]
    _lines(data["parameters"], 1, style, "", out)
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- the model


@dataclass
class Service:
    rank: int  # creation order; required dependencies only point to lower ranks (acyclic)
    sid: str
    path: str
    data: Svc
    style: Style
    tag_format: str  # "{v}", "v{v}" or "{v}-{sha}"
    deps: list[str] = field(default_factory=list)


def _env(rng: random.Random, name: str, ns: str, n: int) -> list[Svc]:
    up = name.upper().replace("-", "_")
    env: list[Svc] = [
        {"name": "LOG_LEVEL", "value": rng.choice(LOG_LEVELS)},
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": "PORT", "value": "8080"},
        {"name": "OTEL_SERVICE_NAME", "value": name},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"},
        {"name": "DB_HOST", "value": f"{name}-db.{ns}.svc.cluster.local"},
        {"name": "DB_PORT", "value": "5432"},
        {"name": "DB_NAME", "value": name.replace("-", "_")},
        {"name": "DB_PASSWORD",
         "valueFrom": {"secretKeyRef": {"name": f"{name}-db", "key": "password"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "JAVA_OPTS", "value": f"-Xms{rng.choice([256, 512])}m -XX:MaxRAMPercentage=75"},
        {"name": "CACHE_TTL_SECONDS", "value": str(rng.choice([30, 60, 300, 900]))},
        {"name": "HTTP_TIMEOUT", "value": f"{rng.choice([2, 5, 10, 30])}s"},
        {"name": "KAFKA_BROKERS", "value": "kafka-0.kafka:9092,kafka-1.kafka:9092"},
        {"name": "REDIS_URL", "value": f"redis://redis-master.{ns}:6379/{rng.randint(0, 15)}"},
        {"name": "SENTRY_DSN",
         "valueFrom": {"secretKeyRef": {"name": "sentry", "key": "dsn"}}},
    ]
    for i in range(max(0, n - len(env))):
        env.append({"name": f"{up}_FEATURE_{i}", "value": rng.choice(["true", "false"])})
    return env[:n]


def _config_file(rng: random.Random, name: str) -> str:
    lines = ["server:", "  port: 8080", f"  shutdown-timeout: {rng.choice([10, 30])}s",
             "logging:", "  level:", f"    root: {rng.choice(['INFO', 'WARN'])}",
             f"    com.example.{name.replace('-', '')}: DEBUG", "features:"]
    lines += [f"  flag-{i}: {rng.choice(['on', 'off'])}" for i in range(rng.randint(3, 12))]
    return "\n".join(lines) + "\n"


def _probe(rng: random.Random, path: str) -> Svc:
    return {"httpGet": {"path": path, "port": "http"},
            "initialDelaySeconds": rng.choice([0, 5, 10, 30]),
            "periodSeconds": rng.choice([5, 10, 15]), "timeoutSeconds": rng.choice([1, 2, 5]),
            "failureThreshold": rng.choice([3, 5, 6])}


def helm_values(rng: random.Random, name: str, ns: str, tag: str) -> Svc:
    """A values file in the shape of ``helm create``'s, filled in as teams do."""
    host = f"{name}.{ns}.example.com"
    v: Svc = {
        "replicaCount": rng.choice([1, 2, 2, 3, 3, 4, 6]),
        "image": {"repository": f"{REGISTRY}/{ns}/{name}", "pullPolicy": "IfNotPresent",
                  "tag": tag},
        "imagePullSecrets": [{"name": "regcred"}] if rng.random() < 0.6 else [],
        "nameOverride": "",
        "fullnameOverride": "",
        "serviceAccount": {
            "create": True,
            "automount": rng.random() < 0.3,
            "annotations": {"eks.amazonaws.com/role-arn":
                            f"arn:aws:iam::123456789012:role/{ns}-{name}"},
            "name": "",
        },
        "podAnnotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090",
                           "prometheus.io/path": "/metrics"},
        "podLabels": {"team": f"{ns}-{rng.randint(1, 3)}", "tier": rng.choice(["1", "2", "3"])},
        "podSecurityContext": {"fsGroup": 2000, "runAsNonRoot": True,
                               "seccompProfile": {"type": "RuntimeDefault"}},
        "securityContext": {"capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True, "runAsNonRoot": True,
                            "runAsUser": 1000, "allowPrivilegeEscalation": False},
        "service": {"type": "ClusterIP", "port": 80, "targetPort": "http",
                    "annotations": {}},
        "ingress": {
            "enabled": rng.random() < 0.7,
            "className": "nginx",
            "annotations": {
                "cert-manager.io/cluster-issuer": "letsencrypt-prod",
                "nginx.ingress.kubernetes.io/proxy-body-size": f"{rng.choice([1, 8, 16])}m",
                "nginx.ingress.kubernetes.io/ssl-redirect": "true",
            },
            "hosts": [{"host": host, "paths": [
                {"path": p, "pathType": "ImplementationSpecific"}
                for p in ["/", "/api"][: rng.randint(1, 2)]]}],
            "tls": [{"secretName": f"{name}-tls", "hosts": [host]}],
        },
        "resources": {
            "limits": {"cpu": rng.choice(CPU[2:]), "memory": rng.choice(MEMORY[2:])},
            "requests": {"cpu": rng.choice(CPU[:3]), "memory": rng.choice(MEMORY[:4])},
        },
        "livenessProbe": _probe(rng, "/healthz"),
        "readinessProbe": _probe(rng, "/readyz"),
        "autoscaling": {"enabled": rng.random() < 0.4, "minReplicas": 2,
                        "maxReplicas": rng.choice([4, 6, 10, 20]),
                        "targetCPUUtilizationPercentage": rng.choice([60, 70, 80])},
        "args": ["--port=8080", "--metrics-port=9090"][: rng.randint(1, 2)],
        "env": _env(rng, name, ns, rng.randint(8, 64)),
        "envFrom": [{"configMapRef": {"name": f"{name}-config"}}],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "nodeSelector": {"kubernetes.io/os": "linux",
                         "node.kubernetes.io/instance-type": rng.choice(INSTANCE_TYPES)},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": ns,
                         "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "topologyKey": "kubernetes.io/hostname"}}]}},
        "metrics": {"enabled": True, "serviceMonitor": {
            "enabled": rng.random() < 0.5, "interval": "30s", "scrapeTimeout": "10s"}},
        "podDisruptionBudget": {"enabled": rng.random() < 0.5, "minAvailable": 1},
    }
    if rng.random() < 0.25:
        v["config"] = {"application.yaml": _config_file(rng, name)}
    if rng.random() < 0.3:
        v["startupProbe"] = _probe(rng, "/healthz")
    return v


class Model:
    """The live services and the seeded choices that change them."""

    def __init__(self, seed: int, invalid_share: float) -> None:
        self.rng = random.Random(seed)
        self.invalid_share = invalid_share
        self.live: dict[str, Service] = {}
        self.ids: list[str] = []
        self.next_rank = 0
        self.ts = START_TS
        self.fixes: list[tuple[int, str]] = []  # (due commit number, service id)
        self.people = [(f"{f.title()} {la.title()}", f"{f}.{la}@example.com",
                        self.rng.choice(TIMEZONES)) for f in FIRST for la in LAST[:2]]

    def author(self, bot: bool = False) -> tuple[str, str]:
        self.ts += self.rng.randint(60, 2 * 3600)
        name, email, tz = BOT if bot else self.rng.choice(self.people)
        return f"{name} <{email}>", f"{self.ts} {tz}"

    def tag(self, svc: Service) -> str:
        v = svc.data["version"]
        sha = f"{self.rng.getrandbits(28):07x}"
        return svc.tag_format.format(v=v, sha=sha)

    def new_service(self) -> Service:
        rng = self.rng
        ns, base, name = unique_name(rng, self.live, "-{n}")
        style = Style(quote=rng.choice(["always", "needed", "needed", "single"]),
                      indent_lists=rng.random() < 0.5, flow_short=rng.random() < 0.3,
                      comments=frozenset(k for k in HELP if rng.random() < rng.random()))
        data: Svc = {
            "schema_version": "1.0.0",
            "name": name,
            "namespace": ns,
            "version": f"{rng.randint(1, 3)}.{rng.randint(0, 30)}.{rng.randint(0, 20)}",
            "description": f"{base.replace('-', ' ').capitalize()} for the {ns} domain",
            "owner": f"team-{ns}-{rng.randint(1, 3)}",
            "documentation_url": f"https://docs.example.com/{ns}/{name}",
            "service_type": {"type": rng.choice(["rest", "rest", "grpc", "eventdriven"])},
            "endpoints": [{"name": "http", "path": "/", "method": "GET"}],
            "dependencies": [],
            "parameters": {},
            "health_check": {"url": f"http://{name}.{ns}.svc.cluster.local/healthz",
                             "interval_s": 30},
            "metadata": {"chart": rng.choice(["app", "web-service", "worker"]),
                         "chart_version": f"0.{rng.randint(1, 9)}.{rng.randint(0, 9)}",
                         "slack": f"#{ns}-deploys"},
        }
        svc = Service(self.next_rank, f"{ns}/{name}", f"services/{ns}/{name}.yaml", data,
                      style, rng.choice(["{v}", "{v}", "v{v}", "{v}-{sha}"]))
        data["parameters"] = helm_values(rng, name, ns, self.tag(svc))
        self.next_rank += 1
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            target = self.live.get(rng.choice(self.ids)) if self.ids else None
            if target is None or target.sid in svc.deps:
                continue
            svc.deps.append(target.sid)
            data["dependencies"].append({"service": target.sid, "version_constraint": ">=1.0.0",
                                         "required": rng.random() < 0.5})
        self.live[svc.sid] = svc
        self.ids.append(svc.sid)
        return svc

    def content(self, svc: Service) -> str:
        return render(svc.data, svc.style)

    # ---- the kinds of change

    def bump_tag(self, svc: Service) -> str:
        svc.data["version"] = _bump_version(self.rng, svc.data["version"])
        svc.data["parameters"]["image"]["tag"] = self.tag(svc)
        return svc.data["version"]

    def tune(self, svc: Service) -> str:
        """One hand edit of one service's values; returns the commit message."""
        rng, p, short = self.rng, svc.data["parameters"], svc.data["name"]
        r = rng.random()
        if r < 0.35:
            p["replicaCount"] = max(1, p["replicaCount"] + rng.choice([-2, -1, 1, 1, 2]))
            return f"ops({short}): scale to {p['replicaCount']} replicas"
        if r < 0.45:
            a = p["autoscaling"]
            a["maxReplicas"] = max(a["minReplicas"] + 1, a["maxReplicas"] + rng.choice([-2, 2, 4]))
            a["enabled"] = a["enabled"] or rng.random() < 0.3
            return f"ops({short}): autoscale up to {a['maxReplicas']}"
        if r < 0.6:
            kind = rng.choice(["limits", "requests"])
            res, what = p["resources"][kind], rng.choice(["cpu", "memory"])
            sizes = CPU if what == "cpu" else MEMORY
            res[what] = rng.choice([x for x in sizes if x != res[what]])
            return f"ops({short}): {what} {kind} {res[what]}"
        if r < 0.8:
            env = p["env"]
            e = rng.choice(env)
            v = e.get("value", "")
            if (v in LOG_LEVELS or v.isdigit() or v in ("true", "false")) and rng.random() < 0.7:
                e["value"] = (rng.choice([x for x in LOG_LEVELS if x != v]) if v in LOG_LEVELS
                              else str(rng.randint(1, 900)) if v.isdigit()
                              else "false" if v == "true" else "true")
                return f"fix({short}): set {e['name']}={e['value']}"
            if rng.random() < 0.5 and len(env) > 4:
                env.remove(e)
                return f"chore({short}): drop {e['name']}"
            env.append({"name": f"FEATURE_{rng.choice(WORDS_A).upper()}_{len(env)}",
                        "value": "true"})
            return f"feat({short}): add {env[-1]['name']}"
        if r < 0.9:
            probe = p[rng.choice(["livenessProbe", "readinessProbe"])]
            probe["initialDelaySeconds"] = rng.choice([0, 5, 10, 20, 30, 60])
            return f"fix({short}): probe delay {probe['initialDelaySeconds']}s"
        ing = p["ingress"]
        if rng.random() < 0.5:
            ing["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"] = str(
                rng.choice([30, 60, 120, 300]))
            return f"ops({short}): ingress read timeout"
        ing["enabled"] = not ing["enabled"]
        return f"ops({short}): ingress {'on' if ing['enabled'] else 'off'}"

    def rollout(self, targets: list[Service]) -> str:
        """A shared setting changed in every service of ``targets``."""
        rng = self.rng
        r = rng.random()
        if r < 0.25:
            url = f"http://otel-collector-{rng.randint(2, 9)}.observability:4317"
            for s in targets:
                for e in s.data["parameters"]["env"]:
                    if e["name"] == "OTEL_EXPORTER_OTLP_ENDPOINT":
                        e["value"] = url
                        break
                else:
                    s.data["parameters"]["env"].append(
                        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": url})
            return f"move the OTLP endpoint to {url}"
        if r < 0.45:
            kind = rng.choice(INSTANCE_TYPES)
            for s in targets:
                s.data["parameters"]["nodeSelector"]["node.kubernetes.io/instance-type"] = kind
            return f"schedule on {kind} nodes"
        if r < 0.65:
            key, value = rng.choice([("sidecar.istio.io/inject", rng.choice(["true", "false"])),
                                     ("linkerd.io/inject", "enabled"),
                                     ("cluster-autoscaler.kubernetes.io/safe-to-evict",
                                      rng.choice(["true", "false"]))])
            for s in targets:
                s.data["parameters"]["podAnnotations"][key] = value
            return f"set pod annotation {key}={value}"
        if r < 0.8:
            size = f"{rng.choice([4, 8, 16, 32, 64])}m"
            for s in targets:
                s.data["parameters"]["ingress"]["annotations"][
                    "nginx.ingress.kubernetes.io/proxy-body-size"] = size
            return f"ingress body size {size}"
        if r < 0.9:
            secret = rng.choice(["regcred", "ecr-pull", "harbor-robot"])
            for s in targets:
                s.data["parameters"]["imagePullSecrets"] = [{"name": secret}]
            return f"pull images with {secret}"
        toleration = {"key": "spot", "operator": "Exists", "effect": rng.choice(
            ["NoSchedule", "PreferNoSchedule"])}
        for s in targets:
            tol = s.data["parameters"]["tolerations"]
            tol[:] = [t for t in tol if t["key"] != "spot"] + [toleration]
        return f"tolerate spot nodes ({toleration['effect']})"

    def invalid(self, svc: Service) -> str:
        """An invalid file for ``svc``: values at the top level, bad YAML or a bad version."""
        kind = self.rng.choice(["values-at-top", "bad-yaml", "bad-version"])
        text = self.content(svc)
        if kind == "values-at-top":  # a values block pasted without the parameters key
            return text + "replicaCount: 2\n"
        if kind == "bad-yaml":
            return text.replace("\nparameters:\n", "\nparameters:\n  args: [--port=8080\n", 1)
        return re.sub(r"(?m)^version: .*$", "version: latest", text, count=1)

    # ---- one commit

    def change_set(self, n: int, exclude: set[str],
                   human: bool) -> tuple[Files, str, set[str], bool]:
        """Mutate the model for commit number ``n``, never touching ``exclude``.

        Returns the file changes, the message, the touched ids and whether the bot wrote it.
        """
        rng = self.rng
        files: Files = {}
        touched: set[str] = set()
        free = [s for s in self.ids if s not in exclude]
        due = sorted(sid for d, sid in self.fixes if d <= n and sid in self.live
                     and sid not in exclude)
        if due:
            self.fixes = [(d, s) for d, s in self.fixes if s not in due and s in self.live]
            for sid in due:
                files[self.live[sid].path] = self.content(self.live[sid])
            return files, f"fix({', '.join(due)}): repair values", set(due), False
        r = rng.random()
        bot = False
        if not free:  # everything is locked by a pull request: a new service touches nothing
            r = 0.99
        if not human and r < 0.8:  # the deploy bot: one tag, or a release train
            bot = True
            k = 1 if rng.random() < 0.9 else rng.randint(2, 8)
            picked = rng.sample(free, min(k, len(free)))
            for sid in picked:
                version = self.bump_tag(self.live[sid])
            msg = (f"chore(deploy): {picked[0]} {version}" if len(picked) == 1
                   else f"chore(deploy): release train, {len(picked)} services")
        elif r < 0.975:
            picked = [rng.choice(free)]
            msg = self.tune(self.live[picked[0]])
        elif r < 0.98:  # a shared setting, rolled out to namespaces or everyone
            scope = (NAMESPACES if rng.random() < 0.4
                     else rng.sample(NAMESPACES, rng.randint(1, 3)))
            picked = [s for s in free if self.live[s].data["namespace"] in scope]
            msg = f"chore: {self.rollout([self.live[s] for s in picked])} " \
                  f"({'all namespaces' if scope is NAMESPACES else ', '.join(scope)})"
            if not picked:
                picked = [rng.choice(free)]
                msg = self.tune(self.live[picked[0]])
        elif r < 0.993 or len(self.ids) < 6 or not free:
            svc = self.new_service()
            picked = [svc.sid]
            msg = f"feat: onboard {svc.sid}"
        else:
            used = {d for s in self.live.values() for d in s.deps}
            gone = [s for s in free if s not in used]
            if not gone:
                return self.change_set(n, exclude, human)
            sid = rng.choice(gone)
            files[self.live.pop(sid).path] = None
            self.ids.remove(sid)
            return files, f"chore: decommission {sid}", {sid}, False
        for sid in picked:
            svc = self.live[sid]
            files[svc.path] = self.content(svc)
            touched.add(sid)
        if not bot and len(picked) == 1 and rng.random() < self.invalid_share:
            files[svc.path] = self.invalid(svc)
            self.fixes.append((n + rng.randint(1, 3), svc.sid))
        return files, msg, touched, bot


def generate(out_dir: str | Path, services: int = 300, commits: int = 5000,
             invalid_share: float = 0.01, pr_share: float = 0.5, seed: int = 1) -> Path:
    """Create a repo at ``out_dir`` whose ``main`` holds exactly ``commits`` commits.

    About ``pr_share`` of the people's changes go through a pull request: a branch of 1-3
    commits, merged with a merge commit after 0-2 bot commits landed on ``main``.
    """
    if services < 1 or commits < 1:
        raise ValueError("need at least one service and one commit")
    model = Model(seed, invalid_share)
    rng = model.rng
    main = "refs/heads/main"
    prs = 0
    with fast_import(out_dir, SIDE_REF) as fi:
        initial = [model.new_service() for _ in range(services)]
        files: Files = {s.path: model.content(s) for s in initial}
        tip = fi.commit(main, model.author(), f"Import {services} services", [], files)
        count = 1
        while count < commits:
            left = commits - count
            if left >= 3 and rng.random() < 0.25 * pr_share:
                prs += 1
                n_side = min(rng.randint(1, 3), left - 1)
                n_main = min(rng.randint(0, 2), left - 1 - n_side)
                side, side_files, locked = tip, {}, set()
                for _ in range(n_side):
                    count += 1
                    files, msg, touched, _ = model.change_set(count, locked, human=True)
                    side = fi.commit(SIDE_REF, model.author(), msg, [side], files)
                    side_files.update(files)
                    locked |= touched
                for _ in range(n_main):
                    count += 1
                    files, msg, _, bot = model.change_set(count, locked, human=False)
                    tip = fi.commit(main, model.author(bot), msg, [tip], files)
                count += 1
                msg = f"Merge pull request #{prs} from {rng.choice(NAMESPACES)}/change-{prs}"
                tip = fi.commit(main, model.author(), msg, [tip, side], side_files)
            else:
                count += 1
                files, msg, _, bot = model.change_set(count, set(), human=False)
                tip = fi.commit(main, model.author(bot), msg, [tip], files)
    return Path(out_dir)


def append_commit(repo_dir: str | Path, n_files: int = 1) -> str:
    """One more commit on ``main`` (checked out): the deploy bot bumps the image tag and
    version of ``n_files`` services, editing the lines in place. Deterministic given the
    tip; returns the new commit sha."""
    def deploy(repo: Path, path: str, rng: random.Random) -> str | None:
        text = (repo / path).read_text(encoding="utf-8")
        m = re.search(r"(?m)^version: \"?(\d+\.\d+\.\d+)\"?$", text)
        if m is None or not re.search(r"(?m)^    tag: ", text):
            return None
        new = _bump_version(rng, m.group(1))
        text = text[:m.start()] + f'version: "{new}"' + text[m.end():]
        text = re.sub(r"(?m)^    tag: .*$", f'    tag: "{new}"', text, count=1)
        (repo / path).write_text(text, encoding="utf-8")
        return f"chore(deploy): {path} {new}"

    return commit_edits(repo_dir, n_files, deploy, who=BOT)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--services", type=int, default=300)
    ap.add_argument("--commits", type=int, default=5000)
    ap.add_argument("--invalid-share", type=float, default=0.01,
                    help="share of people's one-service changes that write an invalid file")
    ap.add_argument("--pr-share", type=float, default=0.5,
                    help="share of people's changes made through a merged pull request")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("out_dir", type=Path)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    out = generate(a.out_dir, a.services, a.commits, a.invalid_share, a.pr_share, a.seed)
    secs = time.perf_counter() - t0
    git_mb, tree_mb = _size(out / ".git") / 1e6, (_size(out) - _size(out / ".git")) / 1e6
    n = run_git(out, "rev-list", "--count", "main")
    print(f"{out}: {n} commits in {secs:.1f}s; .git {git_mb:.1f} MB, worktree {tree_mb:.1f} MB",
          file=sys.stderr)


if __name__ == "__main__":
    main()

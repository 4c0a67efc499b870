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


@cache
def processes() -> frozenset[str]:
    """Every long-running process a deployment must run: each service, the relay, the gateway."""
    services = _assigned(ROOT / "services/kit/runner.py", "SERVICES")
    return frozenset({*services, "relay", "gateway"})


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


def classify(command: list[str] | None) -> str | None:
    """Which Kepu process a container command runs, or None if it runs none."""
    if not command or command[:2] != ["python", "-m"] or len(command) < 3:
        return None
    module, rest = command[2], command[3:]
    if module == "services.kit.runner" and len(rest) == 1:
        return rest[0]
    if module == "services.kit.relay" and not rest:
        return "relay"
    if module == "gunicorn" and rest[-1:] == ["services.gateway.wsgi:application"]:
        conf = rest[rest.index("-c") + 1] if "-c" in rest else None
        return "gateway" if conf and (ROOT / conf).is_file() else "gateway:missing-config"
    return None


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


def _container_env(where: str, container: dict[str, Any], config_maps: dict[str, dict],
                   secrets: dict[str, set[str]]) -> tuple[dict[str, str | None], Problems]:
    """The settings a container gets (value where known), and what is wrong with them."""
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
    helpers = set()
    for var in container.get("env", []):
        value = var.get("value")
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", value or ""):
            helpers.add(ref)
            if ref not in env:
                problems.append(f"{where}: env {var['name']} uses $({ref}) before it is set")
        key_ref = var.get("valueFrom", {}).get("secretKeyRef")
        if key_ref and key_ref["key"] not in secrets.get(key_ref["name"], ()):
            problems.append(f"{where}: env {var['name']}: no Secret {key_ref['name']!r} "
                            f"with key {key_ref['key']!r} is created")
        key_ref = var.get("valueFrom", {}).get("configMapKeyRef")
        if key_ref and key_ref["key"] not in config_maps.get(key_ref["name"], {}):
            problems.append(f"{where}: env {var['name']}: no ConfigMap {key_ref['name']!r} "
                            f"with key {key_ref['key']!r}")
        env[var["name"]] = value
    for name in env:
        if name not in known_settings() and name not in helpers:
            problems.append(f"{where}: {name} is no setting the code reads")
    return env, problems


def _settings_problems(where: str, env: dict[str, str | None]) -> Problems:
    problems = []
    for name, wanted in REQUIRED_SETTINGS.items():
        if name not in env:
            problems.append(f"{where}: {name} is not set")
        elif wanted is not None and str(env[name]) != wanted:
            problems.append(f"{where}: {name} is {env[name]!r}, production needs {wanted!r}")
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


def check_kubernetes(docs: list[tuple[str, dict[str, Any]]]) -> Problems:
    """Cross-object checks of the manifests (`docs`: (file, object) pairs, examples included)."""
    problems: Problems = []
    objects = [doc for _, doc in docs]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in objects:
        by_kind.setdefault(doc.get("kind", ""), []).append(doc)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in by_kind.get("ConfigMap", [])}
    operators = by_kind.get("RabbitmqCluster", []) + by_kind.get("MongoDBCommunity", [])
    secrets = {d["metadata"]["name"]: {*d.get("stringData", {}), *d.get("data", {})}
               for d in by_kind.get("Secret", [])}
    secrets.update(_operator_secrets(operators))
    scaled = {h["spec"]["scaleTargetRef"]["name"]: h
              for h in by_kind.get("HorizontalPodAutoscaler", [])}
    pod_labels = {name: d["spec"]["template"]["metadata"].get("labels", {})
                  for name, d in deployments.items()}
    ran = []

    for name, d in deployments.items():
        where = _name(d)
        spec, pod = d["spec"], d["spec"]["template"]["spec"]
        if not _matches(spec["selector"].get("matchLabels", {}), pod_labels[name]):
            problems.append(f"{where}: selector does not match the pod template's labels")
        if name in scaled and "replicas" in spec:
            problems.append(f"{where}: sets replicas although an HPA scales it (apply resets it)")
        if name not in scaled and spec.get("replicas", 1) < 2:
            problems.append(f"{where}: fewer than 2 replicas and no HPA")
        if not any(_matches(p["spec"]["selector"].get("matchLabels", {}), pod_labels[name])
                   for p in by_kind.get("PodDisruptionBudget", [])):
            problems.append(f"{where}: no PodDisruptionBudget covers its pods")
        problems += _pod_problems(where, pod)
        for c in pod["containers"]:
            if c["image"] != IMAGE:
                problems.append(f"{where}: image {c['image']!r}; Kepu containers use {IMAGE!r} "
                                "(the kustomization sets registry and tag)")
            process = classify(c.get("command"))
            if process is None:
                problems.append(f"{where}: command {c.get('command')} runs no Kepu process")
                continue
            ran.append(process)
            env, env_problems = _container_env(f"{where} container {c['name']}", c,
                                               config_maps, secrets)
            problems += env_problems + _settings_problems(where, env)
    problems += _coverage("deploy/k8s", ran)

    for hpa in scaled.values():
        target = hpa["spec"]["scaleTargetRef"]
        if target.get("kind") != "Deployment" or target["name"] not in deployments:
            problems.append(f"{_name(hpa)}: scales {target.get('kind')}/{target['name']}, "
                            "which is not in the manifests")
            continue
        if hpa["spec"].get("minReplicas", 1) < 2:
            problems.append(f"{_name(hpa)}: minReplicas below 2")
        pod = deployments[target["name"]]["spec"]["template"]["spec"]
        if any("cpu" not in c.get("resources", {}).get("requests", {}) for c in pod["containers"]):
            problems.append(f"{_name(hpa)}: CPU utilisation needs CPU requests on every container")

    covered = [*pod_labels.values(), *_operator_pod_labels(operators)]
    for pdb in by_kind.get("PodDisruptionBudget", []):
        if not any(_matches(pdb["spec"]["selector"].get("matchLabels", {}), labels)
                   for labels in covered):
            problems.append(f"{_name(pdb)}: its selector matches no pods")

    services = {s["metadata"]["name"]: s for s in by_kind.get("Service", [])}
    for svc in services.values():
        selector = svc["spec"].get("selector", {})
        targets = [n for n, labels in pod_labels.items() if _matches(selector, labels)]
        if not targets:
            problems.append(f"{_name(svc)}: its selector matches no Deployment's pods")
            continue
        port_names = {p.get("name") for n in targets
                      for c in deployments[n]["spec"]["template"]["spec"]["containers"]
                      for p in c.get("ports", [])}
        port_names |= {p["containerPort"] for n in targets
                       for c in deployments[n]["spec"]["template"]["spec"]["containers"]
                       for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            if port.get("targetPort", port["port"]) not in port_names:
                problems.append(f"{_name(svc)}: targetPort {port.get('targetPort')!r} is no "
                                "container port")

    for ingress in by_kind.get("Ingress", []):
        for rule in ingress["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                backend = path["backend"]["service"]
                svc = services.get(backend["name"])
                ports = {p.get("name") for p in svc["spec"]["ports"]} | \
                    {p["port"] for p in svc["spec"]["ports"]} if svc else set()
                wanted = backend["port"].get("name", backend["port"].get("number"))
                if svc is None or wanted not in ports:
                    problems.append(f"{_name(ingress)}: backend {backend['name']}:{wanted} "
                                    "is no Service port")
    hosts = {rule.get("host") for ingress in by_kind.get("Ingress", [])
             for rule in ingress["spec"].get("rules", [])}
    for name, data in config_maps.items():
        url = data.get("KEPU_PUBLIC_URL")
        if url and hosts and urlparse(url).hostname not in hosts:
            problems.append(f"ConfigMap/{name}: KEPU_PUBLIC_URL {url} is no Ingress host; "
                            "parents' consent links would not reach the gateway")
    return problems


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
            process = classify(svc.get("command"))
            if process is None:
                problems.append(f"{at}: command {svc.get('command')} runs no Kepu process")
                continue
            ran.append(process)
            env = svc.get("environment", {})
            if not isinstance(env, dict):
                problems.append(f"{at}: write environment as a mapping")
                continue
            problems += [f"{at}: {k} is no setting the code reads" for k in env
                         if k not in known_settings()]
            problems += _settings_problems(at, env)
            if "replicaSet=" not in str(env.get("MONGO_URL", "")):
                problems.append(f"{at}: MONGO_URL names no replicaSet")
        elif not _PINNED.search(image):
            problems.append(f"{at}: image {image!r} is not pinned to an exact version")
    return problems + _coverage(where, ran)


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


def check_image(dockerfile: str | None = None, dockerignore: str | None = None) -> Problems:
    dockerfile = DOCKERFILE.read_text() if dockerfile is None else dockerfile
    dockerignore = DOCKERIGNORE.read_text() if dockerignore is None else dockerignore
    where = "Dockerfile"
    steps = dockerfile_instructions(dockerfile)
    patterns = [line.strip() for line in dockerignore.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    problems: Problems = []
    args = {}
    for word, rest in steps:
        if word == "FROM":
            break
        if word == "ARG" and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
    stages: list[str] = []
    user = None
    for word, rest in steps:
        if word == "FROM":
            tokens = rest.split()
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), tokens[0])
            if image not in stages and not _PINNED.search(image):
                problems.append(f"{where}: base image {image!r} is not pinned to an exact "
                                "version or digest")
            stages.append(tokens[2] if len(tokens) > 2 and tokens[1].upper() == "AS" else image)
            user = None
        elif word == "USER":
            user = rest.split(":")[0]
        elif word == "COPY" and "--from=" not in rest:
            for source in rest.split()[:-1]:
                if source.startswith("--"):
                    continue
                found = [p for p in ROOT.glob(source.rstrip("/")) if p.exists()]
                files = [f for p in found for f in ([p] if p.is_file() else p.rglob("*"))]
                if not any(context_includes(str(f.relative_to(ROOT)), patterns) for f in files):
                    problems.append(f"{where}: COPY {source}: nothing in the build context")
    if len(stages) < 2:
        problems.append(f"{where}: expected a multi-stage build")
    if user in (None, "root", "0"):
        problems.append(f"{where}: the final stage runs as root (add USER)")
    for needed in ("services/kit/runner.py", "services/kit/relay.py", "services/kit/cli.py",
                   "services/gateway/wsgi.py", "deploy/gunicorn.conf.py", "requirements.txt"):
        if not context_includes(needed, patterns):
            problems.append(f".dockerignore: excludes {needed}, which the image needs")
    for unwanted in ("tests/support.py", "services/kit/tests/conftest.py", ".venv/bin/python",
                     "var/jwt.secret", ".git/HEAD", "deploy/.env"):
        if context_includes(unwanted, patterns):
            problems.append(f".dockerignore: lets {unwanted} into the build context")
    return problems + _dev_only_problems(dockerfile)


def _dev_only_problems(dockerfile: str) -> Problems:
    """The packages the image leaves out must exist, and no runtime module may import them."""
    match = re.search(r"grep -viE '\^\(([^)]*)\)==' ", dockerfile)
    if not match:
        return ["Dockerfile: expected the test tools to be filtered out of requirements.txt"]
    left_out = match.group(1).split("|")
    pinned = {line.split("==")[0].lower() for line in (ROOT / "requirements.txt").read_text()
              .splitlines() if "==" in line}
    problems = [f"Dockerfile: leaves out {name}, which requirements.txt does not pin"
                for name in left_out if name.lower() not in pinned]
    modules = {name.replace("-", "_") for name in left_out}
    for path in _runtime_sources():
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

"""`make deploy-check` passes on deploy/ as it is, and catches each kind of mistake it claims to."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from deploy import check

COMPOSE = yaml.safe_load(check.COMPOSE.read_text())


def k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    return [(str(path), doc) for path in check.manifests() if path.name != "kustomization.yaml"
            for doc in check.load_documents(path)]


def find(docs: list[tuple[str, dict[str, Any]]], kind: str, name: str) -> dict[str, Any]:
    return next(d for _, d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def has(problems: list[str], *words: str) -> bool:
    return any(all(w in p for w in words) for p in problems)


def test_deploy_directory_passes_every_check():
    assert check.check() == []


def test_every_process_is_deployed_and_known():
    assert check.processes() >= {"venues", "booking", "notifications", "funding", "relay",
                                 "gateway"}
    assert check.classify(["python", "-m", "services.kit.runner", "booking"]) == "booking"
    assert check.classify(["python", "-m", "services.kit.relay"]) == "relay"
    assert check.classify(["python", "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                           "services.gateway.wsgi:application"]) == "gateway"
    assert check.classify(["python", "-m", "gunicorn", "-c", "deploy/nope.py",
                           "services.gateway.wsgi:application"]) == "gateway:missing-config"
    assert check.classify(["sleep", "1"]) is None
    assert "console" in check.processes()
    assert check.classify(["python", "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                           "services.console.wsgi:application"]) == "console"
    assert check.runs(["python", "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
                       "services.console.one_origin:application"]) == ("gateway", "console")


def test_kubernetes_schema_catches_a_misspelt_field():
    deployment = copy.deepcopy(find(k8s_docs(), "Deployment", "kepu-venues"))
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    assert has(check.validate_kubernetes("d", deployment), "replica")
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["periodSeconds"] = "ten"
    assert check.validate_kubernetes("d", deployment)


def test_operator_resources_are_checked_against_their_crds():
    docs = k8s_docs()
    rabbit = copy.deepcopy(find(docs, "RabbitmqCluster", "kepu-rabbitmq"))
    assert check.validate_kubernetes("r", rabbit) == []
    rabbit["spec"]["replica"] = 3
    assert has(check.validate_kubernetes("r", rabbit), "replica")
    rabbit = copy.deepcopy(find(docs, "RabbitmqCluster", "kepu-rabbitmq"))
    rabbit["spec"]["rabbitmq"]["additionalPlugins"] = ["rabbitmq shovel"]
    assert check.validate_kubernetes("r", rabbit)
    rabbit["spec"]["rabbitmq"]["additionalPlugins"] = []
    rabbit["spec"]["resources"]["request"] = {"cpu": "1"}  # a core Kubernetes type, via $ref
    assert has(check.validate_kubernetes("r", rabbit), "request")
    mongo = copy.deepcopy(find(docs, "MongoDBCommunity", "kepu-mongo"))
    assert check.validate_kubernetes("m", mongo) == []
    mongo["spec"]["type"] = "Sharded"
    assert has(check.validate_kubernetes("m", mongo), "type")
    del mongo["spec"]["users"][0]["scramCredentialsSecretName"]
    mongo["spec"]["type"] = "ReplicaSet"
    assert has(check.validate_kubernetes("m", mongo), "scramCredentialsSecretName")


def test_an_unknown_kind_is_a_problem_not_a_pass():
    assert has(check.validate_kubernetes("x", {"apiVersion": "example.org/v1", "kind": "Thing"}),
               "no schema")


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["spec"]["selector"]["matchLabels"].update(tier="x"), ("kepu-venues", "selector")),
    (lambda d: d["spec"].update(replicas=1), ("kepu-venues", "fewer than 2")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].pop("livenessProbe"),
     ("kepu-venues", "livenessProbe")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"].pop("limits"),
     ("kepu-venues", "limits.memory")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "KEPU_WRITE_CONCERNS", "value": "majority"}),
     ("KEPU_WRITE_CONCERNS", "no setting")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "KEPU_QUORUM_QUEUES", "value": "0"}), ("KEPU_QUORUM_QUEUES", "'1'")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"][3]["valueFrom"]
     ["secretKeyRef"].update(name="mongo-url"), ("MONGO_URL", "mongo-url")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
        command=["python", "-m", "services.kit.runner", "venue"]), ("unknown process", "venue")),
    (lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="kepu:latest"),
     ("image",)),
])
def test_cross_object_mistakes_in_a_deployment_are_found(mutate, words):
    docs = copy.deepcopy(k8s_docs())
    mutate(find(docs, "Deployment", "kepu-venues"))
    assert has(check.check_kubernetes(docs), *words), check.check_kubernetes(docs)


def test_cross_object_mistakes_between_objects_are_found():
    docs = copy.deepcopy(k8s_docs())
    assert check.check_kubernetes(docs) == []
    find(docs, "Service", "kepu-gateway")["spec"]["ports"][0]["targetPort"] = "web"
    find(docs, "HorizontalPodAutoscaler", "kepu-booking")["spec"]["scaleTargetRef"]["name"] = "b"
    find(docs, "PodDisruptionBudget", "kepu-mongo")["spec"]["selector"]["matchLabels"] = {"a": "b"}
    find(docs, "ConfigMap", "kepu-config")["data"]["KEPU_PUBLIC_URL"] = "https://elsewhere.org"
    docs = [(f, d) for f, d in docs if d.get("metadata", {}).get("name") != "kepu-funding"
            or d["kind"] != "Deployment"]
    problems = check.check_kubernetes(docs)
    assert has(problems, "Service/kepu-gateway", "targetPort")
    assert has(problems, "HorizontalPodAutoscaler/kepu-booking", "not in the manifests")
    assert has(problems, "PodDisruptionBudget/kepu-mongo", "matches no pods")
    assert has(problems, "PodDisruptionBudget/kepu-funding", "matches no pods")
    assert has(problems, "no container runs 'funding'")
    assert has(problems, "KEPU_PUBLIC_URL")


def test_compose_schema_and_settings():
    assert check.validate_compose(COMPOSE) == [] and check.check_compose(COMPOSE) == []
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["venues"]["healthchek"] = broken["services"]["venues"].pop("healthcheck")
    assert has(check.validate_compose(broken), "healthchek")
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["booking"]["environment"] = {
        **broken["services"]["booking"]["environment"], "KEPU_WRITE_CONCERN": "1",
        "MONGO_URL": "mongodb://mongo:27017"}
    del broken["services"]["relay"]
    broken["services"]["mongo"]["image"] = "mongo:7"
    problems = check.check_compose(broken)
    assert has(problems, "booking", "KEPU_WRITE_CONCERN")
    assert has(problems, "booking", "replicaSet")
    assert has(problems, "no container runs 'relay'")
    assert has(problems, "mongo", "not pinned")


def test_image_checks():
    dockerfile = check.DOCKERFILE.read_text()
    ignore = check.DOCKERIGNORE.read_text()
    assert check.check_image(dockerfile, ignore) == []
    unpinned = dockerfile.replace("python:3.11.11-slim-bookworm", "python:3.11-slim")
    assert has(check.check_image(unpinned, ignore), "not pinned")
    as_root = dockerfile.replace("USER 10001:10001", "")
    assert has(check.check_image(as_root, ignore), "root")
    assert has(check.check_image(dockerfile, ignore.replace("services/**/tests", "")),
               "services/kit/tests/conftest.py")
    assert has(check.check_image(dockerfile, ignore + "deploy/gunicorn.conf.py\n"),
               "gunicorn.conf.py")
    assert has(check.check_image(dockerfile.replace("|ruff|", "|ruff|pymongo|"), ignore),
               "imports pymongo")


def test_dockerignore_matches_as_docker_does():
    rules = ["*", "!services", "services/**/tests", "**/__pycache__"]
    assert check.context_includes("services/kit/runner.py", rules)
    assert not check.context_includes("services/kit/tests/test_x.py", rules)
    assert not check.context_includes("services/kit/__pycache__/x.pyc", rules)
    assert not check.context_includes("tests/support.py", rules)
    assert not check.context_includes(".venv/bin/python", rules)


def test_every_setting_the_code_reads_must_be_documented():
    assert check.check_readme() == []
    assert {"AMQP_URL", "MONGO_URL", "KEPU_QUORUM_QUEUES", "KEPU_WRITE_CONCERN"} <= \
        check.known_settings()
    assert has(check.check_readme("nothing here"), "KEPU_QUORUM_QUEUES")


def test_kustomization_lists_every_manifest():
    assert check.check_kustomization() == []


def test_a_registered_service_without_its_deployment_pieces_is_reported(monkeypatch):
    # The one registration line, and nothing else yet: the check names each missing piece.
    from services.kit import services as registry

    monkeypatch.setitem(registry.SERVICES, "reviews", "services.reviews.service:ReviewsService")
    docs, compose = k8s_docs(), COMPOSE
    problems = check.check_kubernetes(docs) + check.check_registration(docs, compose)
    assert has(problems, "no container runs 'reviews'")
    assert has(problems, "service reviews", "no Kubernetes Deployment")
    assert has(problems, "service reviews", "no Compose service")
    assert has(problems, "deploy/k8s/services.yaml", "out of date", "make manifests")
    assert has(problems, "deploy/k8s/network.yaml", "out of date")
    assert has(problems, "deploy/docker-compose.yml", "out of date")
    assert not has(problems, "service reviews", "development stack")  # the stack reads the list


def test_generated_manifests_give_a_new_service_every_piece(monkeypatch):
    from deploy import manifests
    from services.kit import services as registry

    monkeypatch.setitem(registry.SERVICES, "reviews", "services.reviews.service:ReviewsService")
    files = manifests.rendered()
    docs = [(str(path), doc) for path in check.manifests()
            if path.name not in ("kustomization.yaml", "services.yaml", "network.yaml")
            for doc in check.load_documents(path)]
    for path in (manifests.K8S / "services.yaml", manifests.K8S / "network.yaml"):
        docs += [(str(path), d) for d in yaml.safe_load_all(files[path]) if d]
    compose = yaml.safe_load(files[manifests.COMPOSE])
    problems = check.check_kubernetes(docs) + check.check_registration(docs, compose)
    assert not has(problems, "reviews"), problems
    assert find(docs, "NetworkPolicy", "kepu-reviews")
    assert check.check_compose(compose) == []


def test_a_service_the_stack_or_health_check_leaves_out_is_reported(monkeypatch, tmp_path):
    from deploy import stack

    monkeypatch.setattr(stack, "stack_processes_for", lambda env: ["relay", "gateway"])
    health = tmp_path / "health.py"
    health.write_text('SERVICES = ("venues", "booking", "notifications")\n')
    monkeypatch.setattr(check, "GATEWAY_HEALTH", health)
    problems = check.check_registration(k8s_docs(), COMPOSE)
    assert has(problems, "service funding", "development stack")
    assert has(problems, "service funding", "health check")


def test_no_password_has_a_default_and_mongodb_authenticates():
    text = check.COMPOSE.read_text()
    assert check.check_compose_secrets(text) == []
    defaulted = text.replace("${RABBITMQ_PASSWORD:?set it in deploy/.env}",
                             "${RABBITMQ_PASSWORD:-kepu-dev}")
    assert has(check.check_compose_secrets(defaulted), "RABBITMQ_PASSWORD", "default")
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["mongo"]["environment"].pop("MONGO_INITDB_ROOT_PASSWORD")
    broken["services"]["booking"]["environment"] = {
        **broken["services"]["booking"]["environment"],
        "MONGO_URL": "mongodb://mongo:27017/?replicaSet=rs0"}
    broken["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"] = "kepu-dev"
    problems = check.check_compose_secrets(text, broken)
    assert has(problems, "MongoDB runs without authentication")
    assert has(problems, "booking", "MONGO_URL has no credentials")
    assert has(problems, "rabbitmq", "RABBITMQ_DEFAULT_PASS", "literal")


def test_every_pod_is_covered_by_a_network_policy_under_a_default_deny():
    docs = copy.deepcopy(k8s_docs())
    assert find(docs, "NetworkPolicy", "default-deny")
    gateway = find(docs, "NetworkPolicy", "kepu-gateway")
    assert gateway["spec"]["ingress"][0]["from"][0]["namespaceSelector"]
    venues = find(docs, "NetworkPolicy", "kepu-venues")
    assert venues["spec"]["ingress"] == []
    without = [(f, d) for f, d in docs if not (d["kind"] == "NetworkPolicy" and d["metadata"][
        "name"] in ("kepu-funding", "default-deny", "kepu-mongo"))]
    problems = check.check_kubernetes(without)
    assert has(problems, "Deployment/kepu-funding", "no NetworkPolicy")
    assert has(problems, "MongoDBCommunity/kepu-mongo", "no NetworkPolicy")
    assert has(problems, "no default-deny NetworkPolicy")


def test_gateway_probes_split_liveness_from_readiness():
    container = find(k8s_docs(), "Deployment", "kepu-gateway")["spec"]["template"]["spec"][
        "containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


# -- the console --------------------------------------------------------------------------
def without(docs: list[tuple[str, dict[str, Any]]], kind: str, name: str
            ) -> list[tuple[str, dict[str, Any]]]:
    return [(f, d) for f, d in docs if not (d["kind"] == kind and d["metadata"]["name"] == name)]


def console_container(docs: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return find(docs, "Deployment", "kepu-console")["spec"]["template"]["spec"]["containers"][0]


def test_the_console_runs_alone_in_kubernetes_and_with_the_gateway_in_compose():
    docs = k8s_docs()
    assert check.runs(console_container(docs)["command"]) == ("console",)
    assert console_container(docs)["livenessProbe"]["httpGet"]["path"] == "/console/livez"
    assert check.runs(COMPOSE["services"]["gateway"]["command"]) == ("gateway", "console")
    assert not has(check.check_kubernetes(docs) + check.check_compose(COMPOSE), "console")


def test_a_console_without_its_policy_probe_or_budget_is_reported():
    docs = copy.deepcopy(k8s_docs())
    del console_container(docs)["readinessProbe"]
    docs = without(without(docs, "NetworkPolicy", "kepu-console"),
                   "PodDisruptionBudget", "kepu-console")
    problems = check.check_kubernetes(docs)
    assert has(problems, "Deployment/kepu-console", "no NetworkPolicy")
    assert has(problems, "Deployment/kepu-console", "no readinessProbe")
    assert has(problems, "Deployment/kepu-console", "no PodDisruptionBudget")
    problems = check.check_kubernetes(without(k8s_docs(), "Deployment", "kepu-console"))
    assert has(problems, "no container runs 'console'")
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["gateway"]["command"][-1] = "services.gateway.wsgi:application"
    assert has(check.check_compose(compose), "no container runs 'console'")


def test_the_console_gets_the_api_and_its_cookie_key_but_no_store_or_jwt_credentials():
    docs = copy.deepcopy(k8s_docs())
    container = console_container(docs)
    container["env"] = [v for v in container["env"] if v["name"] != "KEPU_CONSOLE_SECURE_COOKIES"]
    container["envFrom"].append({"secretRef": {"name": "kepu-secrets"}})  # KEPU_JWT_SECRET
    container["env"].append({"name": "MONGO_URL", "valueFrom": {"secretKeyRef": {
        "name": "kepu-mongo-admin-kepu", "key": "connectionString.standard"}}})
    problems = check.check_kubernetes(docs)
    assert has(problems, "kepu-console", "KEPU_CONSOLE_SECURE_COOKIES is not set")
    assert has(problems, "kepu-console", "is given KEPU_JWT_SECRET")
    assert has(problems, "kepu-console", "is given MONGO_URL")
    assert not has(problems, "kepu-console", "AMQP_URL is not set")  # it needs no broker
    policy = find(k8s_docs(), "NetworkPolicy", "kepu-console")["spec"]
    egress = [rule["to"][0].get("podSelector", {}).get("matchLabels") for rule in policy["egress"]]
    assert egress == [{"app.kubernetes.io/name": "kepu", "app.kubernetes.io/component": "gateway"},
                      {"k8s-app": "kube-dns"}]
    gateway = find(k8s_docs(), "NetworkPolicy", "kepu-gateway")["spec"]["ingress"]
    assert gateway[1]["from"][0]["podSelector"]["matchLabels"][
        "app.kubernetes.io/component"] == "console"


def test_the_ingress_is_one_origin_api_to_the_gateway_the_rest_to_the_console():
    docs = copy.deepcopy(k8s_docs())
    env = {v["name"]: v.get("value") for v in console_container(docs)["env"]}
    assert env["KEPU_API_URL"] == "http://kepu-gateway"
    main = find(docs, "Ingress", "kepu-gateway")["spec"]["rules"][0]["http"]["paths"]
    for path in main:
        if path["path"] in ("/", "/readyz"):  # swap them: the pages to the gateway and back
            service = path["backend"]["service"]
            service["name"] = "kepu-gateway" if path["path"] == "/" else "kepu-console"
    canary = find(docs, "Ingress", "kepu-parent-pages")["spec"]["rules"][0]["http"]["paths"]
    canary[0]["path"] = "/v1/consent"
    problems = check.check_kubernetes(docs)
    assert has(problems, "kepu.example.org/ goes to Service/kepu-gateway", "console")
    assert has(problems, "kepu.example.org/readyz goes to Service/kepu-console", "gateway")
    assert has(problems, "Ingress/kepu-parent-pages", "/v1/consent", "ignores it")
    docs = without(docs, "Ingress", "kepu-parent-pages")
    main[:] = [p for p in main if p["path"] != "/v1"]
    assert has(check.check_kubernetes(docs), "kepu.example.org/v1 is not routed")


def test_the_image_leaves_out_exactly_what_only_the_tests_and_tools_need():
    dockerfile = check.DOCKERFILE.read_text()
    ignore = check.DOCKERIGNORE.read_text()
    assert "\nschemathesis|" in dockerfile
    assert has(check.check_image(dockerfile.replace("\nschemathesis|", "\n"), ignore),
               "puts schemathesis", "in the image")
    assert has(check.check_image(dockerfile.replace("|playwright|", "|"), ignore),
               "puts playwright", "in the image")
    assert has(check.check_image(dockerfile.replace("|ruff|", "|ruff|Flask|"), ignore),
               "leaves out flask, which the runtime requires")
    indented = dockerfile.replace("\\\nhypothesis-graphql", "\\\n    hypothesis-graphql")
    assert indented != dockerfile
    assert has(check.check_image(indented, ignore), "'    hypothesis-graphql'", "column")

"""What an SRE expects of the installed workloads: locked down, probed, schedulable, scaled."""

from __future__ import annotations

from typing import Any

import pytest
from chart_harness import (
    PREFIX,
    VALUE_SETS,
    container_env,
    find,
    merged,
    of_kind,
    pod_specs,
    render,
    render_raw,
)

GRPC_SERVICES = {"extender": 50051, "notifier": 50053, "differ": 50052}
# The CronJob mode, everything else at its default.
CRONJOB = merged(VALUE_SETS["defaults"], {"differ": {"mode": "cronjob"}})


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_pod_is_locked_down(value_set: str) -> None:
    for label, spec in pod_specs(render(VALUE_SETS[value_set])):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, label
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, label
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes["tmp"], label
        for container in spec["containers"]:
            where = f"{label} {container['name']}"
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], where
            assert container["resources"]["requests"]["memory"], where
            assert container["resources"]["limits"]["memory"], where
            image = container["image"]
            assert "@sha256:" in image or not image.endswith((":latest", ":")), where


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_only_the_differ_server_gets_a_kubernetes_token(value_set: str) -> None:
    values = VALUE_SETS[value_set]
    manifests = render(values)
    # Only to make Jobs from the CronJob; sweepers and in-process syncs need no token.
    makes_jobs = values.get("differ", {}).get("mode") == "cronjob"
    for label, spec in pod_specs(manifests):
        wants = makes_jobs and label == f"Deployment/{PREFIX}-differ"
        assert spec["automountServiceAccountToken"] is wants, label
    for account in of_kind(manifests, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_grpc_services_are_probed_through_their_health_service() -> None:
    manifests = render(VALUE_SETS["defaults"])
    for name, port in GRPC_SERVICES.items():
        container = find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]["template"]["spec"][
            "containers"
        ][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"] == {"port": port}, (name, probe)
        env = container_env(find(manifests, "Deployment", f"{PREFIX}-{name}"))
        assert env["GRPC_HOST"] == "0.0.0.0"  # noqa: S104
        assert env["GRPC_PORT"] == str(port)
        assert env["METRICS_PORT"] == "9464"


def test_metrics_are_announced_to_prometheus() -> None:
    manifests = render(VALUE_SETS["defaults"])
    for name in (*GRPC_SERVICES, "gateway"):
        template = find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/port"] == "9464", name
        service = find(manifests, "Service", f"{PREFIX}-{name}")
        assert {"name": "metrics", "port": 9464} in [
            {"name": p["name"], "port": p["port"]} for p in service["spec"]["ports"]
        ]


def test_service_monitor_scrapes_every_metrics_port_of_the_release() -> None:
    manifests = render(VALUE_SETS["everything-on"])
    monitor = of_kind(manifests, "ServiceMonitor")[0]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        s["metadata"]["name"]
        for s in of_kind(manifests, "Service")
        if selector.items() <= s["metadata"]["labels"].items()
        and any(p["name"] == "metrics" for p in s["spec"]["ports"])
    ]
    assert sorted(scraped) == sorted(f"{PREFIX}-{n}" for n in (*GRPC_SERVICES, "gateway"))


def test_metrics_off_removes_the_endpoint_everywhere() -> None:
    manifests = render(VALUE_SETS["differ-server-off"])
    env = container_env(find(manifests, "Deployment", f"{PREFIX}-extender"))
    assert env["METRICS_PORT"] == "-1"
    for service in of_kind(manifests, "Service"):
        assert all(p["name"] != "metrics" for p in service["spec"]["ports"])


def test_sync_cronjob_never_overlaps_and_cleans_up() -> None:
    manifests = render(CRONJOB)
    assert not [m for m in manifests if "sweeper" in m["metadata"]["name"]]
    cronjob = find(manifests, "CronJob", f"{PREFIX}-differ")
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["schedule"] == "*/15 * * * *"
    job = spec["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] == 3600
    assert job["ttlSecondsAfterFinished"] == 86400
    assert "completionMode" not in job
    rules = job["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "FailJob"
    assert rules[0]["onExitCodes"]["values"] == [2, 3, 4, 5]
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["python", "-m", "services.snapshot_differ", "run"]


def test_sweepers_read_each_shard_once_per_interval_one_deployment_a_shard() -> None:
    manifests = render(VALUE_SETS["sweeper-shards"])
    assert not of_kind(manifests, "CronJob")
    deployments = of_kind(manifests, "Deployment")
    sweepers = [m for m in deployments if "-differ-sweeper-" in m["metadata"]["name"]]
    assert [m["metadata"]["name"] for m in sweepers] == [
        f"{PREFIX}-differ-sweeper-{shard}" for shard in range(3)
    ]
    selectors = set()
    for shard, sweeper in enumerate(sweepers):
        spec = sweeper["spec"]
        assert spec["replicas"] == 1
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= spec["template"]["metadata"]["labels"].items()
        selectors.add(tuple(sorted(selector.items())))
        pod = spec["template"]["spec"]
        assert pod["containers"][0]["command"] == [
            "python", "-m", "services.snapshot_differ", "sweep"
        ]  # fmt: skip
        env = container_env(sweeper)
        assert env["SHARD_INDEX"] == str(shard)
        assert env["SHARD_COUNT"] == "3"
        assert env["SYNC_INTERVAL_SECONDS"] == "300"
        assert pod["serviceAccountName"] == f"{PREFIX}-differ"  # the snapshot bucket's role
    # Each Deployment owns only its own shard's pod.
    assert len(selectors) == 3
    # The server still answers the API and exports the runs' outcomes.
    find(manifests, "Deployment", f"{PREFIX}-differ")


def test_suspend_stops_the_sweepers() -> None:
    values = merged(VALUE_SETS["sweeper-shards"], {"differ": {"suspend": True}})
    sweepers = [m for m in render(values) if "-differ-sweeper-" in m["metadata"]["name"]]
    assert sweepers and all(m["spec"]["replicas"] == 0 for m in sweepers)


def test_shards_run_as_an_indexed_job() -> None:
    manifests = render(VALUE_SETS["shards"])
    job = find(manifests, "CronJob", f"{PREFIX}-differ")["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == 8
    assert job["parallelism"] == 4
    env = container_env(find(manifests, "CronJob", f"{PREFIX}-differ"))
    assert env["SHARD_COUNT"] == "8"
    # Each pod's shard is the JOB_COMPLETION_INDEX Kubernetes gives it.
    assert "SHARD_INDEX" not in env
    assert env["S3_SSE"] == "aws:kms"
    assert env["S3_SSE_KMS_KEY_ID"] == "alias/profile-sync"


def test_snapshot_bucket_access_comes_from_the_irsa_role() -> None:
    manifests = render(VALUE_SETS["defaults"])
    account = find(manifests, "ServiceAccount", f"{PREFIX}-differ")
    role = "arn:aws:iam::123456789012:role/profile-sync-snapshots"
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    for name in ("extender", "notifier", "gateway"):
        other = find(manifests, "ServiceAccount", f"{PREFIX}-{name}")
        assert "annotations" not in other["metadata"]
    for workload in ("CronJob", f"{PREFIX}-differ"), ("Deployment", f"{PREFIX}-differ-sweeper-0"):
        env = container_env(find(render(CRONJOB) + manifests, *workload))
        assert env["SNAPSHOT_STORE"] == "s3://contoso-profile-sync/snapshots", workload
        assert env["S3_REGION"] == "eu-west-1", workload


def test_on_demand_sync_may_only_read_the_cronjob_and_create_jobs() -> None:
    manifests = render(CRONJOB)
    role = find(manifests, "Role", f"{PREFIX}-differ")
    assert role["rules"] == [
        {
            "apiGroups": ["batch"],
            "resources": ["cronjobs"],
            "resourceNames": [f"{PREFIX}-differ"],
            "verbs": ["get"],
        },
        {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create"]},
    ]
    binding = find(manifests, "RoleBinding", f"{PREFIX}-differ")
    assert binding["subjects"][0]["name"] == f"{PREFIX}-differ"
    env = container_env(find(manifests, "Deployment", f"{PREFIX}-differ"))
    assert env["SYNC_MODE"] == "kubernetes"
    assert env["CRONJOB_NAME"] == f"{PREFIX}-differ"
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


@pytest.mark.parametrize(
    "values",
    [
        merged(CRONJOB, {"differ": {"server": {"syncMode": "in-process"}}}),
        # With the sweepers there is no CronJob to make a Job from: always in the server.
        merged(VALUE_SETS["defaults"], {"differ": {"server": {"syncMode": "kubernetes"}}}),
    ],
    ids=["cronjob-in-process", "sweeper"],
)
def test_in_process_syncs_need_no_role_and_no_token(values: dict[str, Any]) -> None:
    manifests = render(values)
    assert not of_kind(manifests, "Role")
    server = find(manifests, "Deployment", f"{PREFIX}-differ")
    assert server["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    env = container_env(server)
    assert env["SYNC_MODE"] == "in-process"
    assert "CRONJOB_NAME" not in env


def test_secrets_come_from_existing_secrets() -> None:
    manifests = render(VALUE_SETS["existing-secrets"])
    for name in ("extender", "differ"):
        env = container_env(find(manifests, "Deployment", f"{PREFIX}-{name}"))
        assert env["AZURE_CLIENT_SECRET"] == {
            "secretKeyRef": {"name": "profile-sync-entra", "key": "client-secret"}
        }
        assert env["REDIS_URL"] == {"secretKeyRef": {"name": "elasticache", "key": "url"}}
    notifier = find(manifests, "Deployment", f"{PREFIX}-notifier")
    env = container_env(notifier)
    # The notifier checks callers' tokens but never asks for one of its own.
    assert "AZURE_CLIENT_SECRET" not in env
    assert env["NOTIFIER_SUBSCRIBERS_FILE"] == "/etc/profile-sync/subscribers/subscribers.json"
    volumes = notifier["spec"]["template"]["spec"]["volumes"]
    assert {"name": "subscribers", "secret": {
        "secretName": "webhooks",
        "items": [{"key": "subscribers.json", "path": "subscribers.json"}],
    }} in volumes  # fmt: skip
    assert not of_kind(manifests, "Secret")  # nothing secret is rendered into the release
    image = notifier["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/profile-sync@sha256:" + "a" * 64


def test_subscribers_from_values_become_a_secret_and_roll_the_notifier() -> None:
    import base64
    import json

    def notifier_checksum(values: dict[str, Any]) -> str:
        template = find(render(values), "Deployment", f"{PREFIX}-notifier")["spec"]["template"]
        return str(template["metadata"]["annotations"]["checksum/config"])

    values = VALUE_SETS["everything-on"]
    secret = find(render(values), "Secret", f"{PREFIX}-subscribers")
    subscribers = json.loads(base64.b64decode(secret["data"]["subscribers.json"]))
    assert subscribers == values["notifier"]["subscribers"]
    changed = merged(
        values, {"notifier": {"subscribers": [dict(subscribers[0], url="https://x/")]}}
    )
    assert notifier_checksum(values) != notifier_checksum(changed)


@pytest.mark.parametrize("name", ["extender", "notifier", "gateway"])
def test_autoscaling_owns_the_replica_count(name: str) -> None:
    manifests = render(VALUE_SETS["everything-on"])
    assert "replicas" not in find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]
    hpa = find(manifests, "HorizontalPodAutoscaler", f"{PREFIX}-{name}")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{PREFIX}-{name}"
    budget = find(manifests, "PodDisruptionBudget", f"{PREFIX}-{name}")
    assert budget["spec"]["maxUnavailable"] == 1


def test_gateway_reaches_every_pod_through_headless_services() -> None:
    manifests = render(VALUE_SETS["defaults"])
    for name in GRPC_SERVICES:
        headless = find(manifests, "Service", f"{PREFIX}-{name}-headless")
        assert headless["spec"]["clusterIP"] == "None"


def test_network_policy_lets_only_callers_in() -> None:
    manifests = render(VALUE_SETS["emulator"])
    extender = find(manifests, "NetworkPolicy", f"{PREFIX}-extender")["spec"]
    grpc_rule = extender["ingress"][0]
    assert grpc_rule["ports"] == [{"port": 50051, "protocol": "TCP"}]
    callers = grpc_rule["from"][0]["podSelector"]["matchExpressions"][1]["values"]
    assert sorted(callers) == ["differ", "differ-sweeper", "differ-sync", "gateway", "test"]
    sync = find(manifests, "NetworkPolicy", f"{PREFIX}-differ-sweeper")["spec"]
    assert sync["ingress"] == []
    # allowExternalEgress is off in this value set: no rule lets everything out.
    assert {} not in sync["egress"]
    gateway = find(manifests, "NetworkPolicy", f"{PREFIX}-gateway")["spec"]
    assert "from" in gateway["ingress"][0]  # allowExternal is off too


def test_notes_say_how_to_reach_the_gateway_and_start_a_sync() -> None:
    notes = render_raw(VALUE_SETS["defaults"])["profile-sync/templates/NOTES.txt"]
    assert f"port-forward service/{PREFIX}-gateway 8080:80" in notes
    assert "every user is read once every 900 s" in notes
    assert "app.kubernetes.io/component=differ-sweeper" in notes
    assert "cronjob" not in notes.lower()
    assert "POST" in notes and "/v1/syncs" in notes
    cronjob_notes = render_raw(CRONJOB)["profile-sync/templates/NOTES.txt"]
    assert f"create job --from=cronjob/{PREFIX}-differ" in cronjob_notes
    assert "POST" in cronjob_notes and "/v1/syncs" in cronjob_notes
    assert "helm test rel" in notes
    emulator_notes = render_raw(VALUE_SETS["emulator"])["profile-sync/templates/NOTES.txt"]
    assert "/_emulator/token" in emulator_notes
    assert "staging only" in emulator_notes


def test_helm_test_pod_checks_every_service_health() -> None:
    manifests = render(VALUE_SETS["defaults"])
    pod = find(manifests, "Pod", f"{PREFIX}-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    command = pod["spec"]["containers"][0]["command"]
    assert "HealthStub" in command[2]
    assert command[-3:] == [
        f"{PREFIX}-extender:50051",
        f"{PREFIX}-notifier:50053",
        f"{PREFIX}-differ:50052",
    ]
    assert command[4] == f"{PREFIX}-gateway:80"


def test_helm_test_script_passes_on_healthy_services_and_fails_otherwise() -> None:
    import http.server
    import subprocess
    import sys
    import threading
    from concurrent import futures

    import grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    command = find(render(VALUE_SETS["defaults"]), "Pod", f"{PREFIX}-test")["spec"]["containers"][
        0
    ]["command"]

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    http_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    try:

        def run_checks() -> subprocess.CompletedProcess[str]:
            args = [sys.executable, *command[1:3], "10", f"127.0.0.1:{http_server.server_port}"]
            return subprocess.run(
                [*args, f"127.0.0.1:{grpc_port}"], capture_output=True, text=True, timeout=60
            )

        servicer.set("", health_pb2.HealthCheckResponse.SERVING)
        healthy = run_checks()
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert f"127.0.0.1:{grpc_port}: SERVING" in healthy.stdout

        servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        draining = run_checks()
        assert draining.returncode == 1
        assert "NOT_SERVING" in draining.stdout
    finally:
        http_server.shutdown()
        http_server.server_close()
        server.stop(None)


def test_a_long_release_name_still_gives_valid_distinct_names() -> None:
    release = "profile-sync-production-eu-west-1-identity-platform"  # Helm's limit is 53
    manifests = render(VALUE_SETS["everything-on"], release=release)
    names = [(m["kind"], m["metadata"]["name"]) for m in manifests]
    assert len(names) == len(set(names))
    suffixes = (
        "-extender",
        "-notifier",
        "-gateway",
        "-differ",
        "-headless",
        "-subscribers",
        "-test",
        "-sync",
        "-sweeper",
        "-sweeper-0",
        "-dashboard",
        "-alerts",
    )
    for kind, name in names:
        assert len(name) <= 63 and not name.endswith("-"), (kind, name)
        # The component survives the cut: it is what tells the resources apart.
        assert kind == "ServiceMonitor" or name.endswith(suffixes), (kind, name)
    for manifest in manifests:
        for value in manifest["metadata"]["labels"].values():
            assert len(value) <= 63

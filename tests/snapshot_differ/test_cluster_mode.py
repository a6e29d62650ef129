"""Cluster mode: StartSync creates a Job from the differ's CronJob through
the Kubernetes API — here a fake API server on loopback, reached by the
kubernetes client through an ordinary kubeconfig — and the Job's pod (the
real `run` command, with the Job's environment) performs that very run."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from differ_process import differ_env, run_differ
from harness import DifferHarness, make_profile

from profilesync.v1 import differ_pb2
from services.common.errors import AlreadyRunning, FailedPrecondition
from services.snapshot_differ.cluster import KubernetesJobLauncher, job_name_for
from services.snapshot_differ.run import SyncRunner

NAMESPACE = "profilesync"
CRONJOB = "profilesync-differ"
TOKEN = "service-account-token"


def cronjob_json() -> dict[str, Any]:
    """A CronJob as the API returns it: an Indexed Job over 4 shards."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": CRONJOB,
            "namespace": NAMESPACE,
            "uid": "0b7c2a52-55f5-4c1e-8f11-2d7f9c0e3a10",
            "labels": {"app.kubernetes.io/name": "profilesync"},
        },
        "spec": {
            "schedule": "*/15 * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {"labels": {"app.kubernetes.io/component": "differ"}},
                "spec": {
                    "completionMode": "Indexed",
                    "completions": 4,
                    "parallelism": 4,
                    "backoffLimit": 2,
                    "template": {
                        "metadata": {"labels": {"app.kubernetes.io/component": "differ"}},
                        "spec": {
                            "restartPolicy": "Never",
                            "serviceAccountName": "profilesync-differ",
                            "containers": [
                                {
                                    "name": "differ",
                                    "image": "profilesync:1.0.0",
                                    "args": ["python", "-m", "services.snapshot_differ", "run"],
                                    "env": [
                                        {"name": "SHARD_COUNT", "value": "4"},
                                        {"name": "REDIS_URL", "value": "redis://redis:6379/0"},
                                    ],
                                }
                            ],
                        },
                    },
                },
            },
        },
    }


class FakeKubernetes:
    """Just enough of the batch/v1 API: read a CronJob, create Jobs."""

    def __init__(self) -> None:
        self.cronjobs = {CRONJOB: cronjob_json()}
        self.jobs: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self, what: str) -> None:
                status = {"kind": "Status", "apiVersion": "v1", "status": "Failure"}
                self._reply(404, {**status, "message": f"{what} not found", "code": 404})

            def do_GET(self) -> None:
                fake.authorizations.append(self.headers.get("Authorization", ""))
                match = re.fullmatch(
                    r"/apis/batch/v1/namespaces/([^/]+)/cronjobs/([^/?]+)", self.path
                )
                if match and match[1] == NAMESPACE and match[2] in fake.cronjobs:
                    self._reply(200, fake.cronjobs[match[2]])
                else:
                    self._not_found(self.path)

            def do_POST(self) -> None:
                fake.authorizations.append(self.headers.get("Authorization", ""))
                if self.path != f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs":
                    self._not_found(self.path)
                    return
                job = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.jobs.append(job)
                job["metadata"]["uid"] = f"job-{len(fake.jobs)}"
                self._reply(201, job)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKubernetes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@pytest.fixture
def kubernetes(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubernetes]:
    with FakeKubernetes() as fake:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
                    "users": [{"name": "differ", "user": {"token": TOKEN}}],
                    "contexts": [
                        {"name": "fake", "context": {"cluster": "fake", "user": "differ"}}
                    ],
                    "current-context": "fake",
                }
            )
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        yield fake


def cluster_runner(harness: DifferHarness, cronjob: str = CRONJOB) -> SyncRunner:
    return SyncRunner(
        harness.settings,
        harness.redis,
        harness.runner.store,
        harness.runner.extender,
        harness.runner.notifier,
        launcher=KubernetesJobLauncher(NAMESPACE, cronjob),
    )


def container_env(job: dict[str, Any]) -> dict[str, str]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return {item["name"]: item["value"] for item in container["env"]}


async def test_start_sync_creates_a_job_whose_pod_performs_the_run(
    harness: DifferHarness, kubernetes: FakeKubernetes, authority: dict[str, Any]
) -> None:
    harness.set_profiles([make_profile(i) for i in range(40)])
    runner = cluster_runner(harness)
    started = await runner.start(2, 4)
    assert started.state == differ_pb2.RUNNING

    [job] = kubernetes.jobs
    assert kubernetes.authorizations == [f"Bearer {TOKEN}"] * 2
    assert job["metadata"]["name"] == job_name_for(CRONJOB, started.run_id)
    assert len(job["metadata"]["name"]) <= 63 and job["metadata"]["name"].islower()
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "CronJob",
        CRONJOB,
        cronjob_json()["metadata"]["uid"],
    )
    spec = job["spec"]
    assert "completionMode" not in spec and spec["completions"] == spec["parallelism"] == 1
    assert spec["backoffLimit"] == 2
    env = container_env(job)
    assert env["SYNC_RUN_ID"] == started.run_id
    assert (env["SHARD_INDEX"], env["SHARD_COUNT"], env["SYNC_DRY_RUN"]) == ("2", "4", "false")
    assert env["REDIS_URL"] == "redis://redis:6379/0"  # the rest of the template is kept

    # The shard is reserved for the Job until its pod starts.
    with pytest.raises(AlreadyRunning, match=started.run_id):
        await runner.start(2, 4)
    reserved = await runner.records.get(started.run_id)
    assert reserved.state == differ_pb2.RUNNING

    # The pod: the CronJob's command with the Job's environment.
    pod_env = {k: v for k, v in env.items() if k.startswith(("SYNC_", "SHARD_"))}
    pod = await run_differ(differ_env(harness, authority, **pod_env), "run")
    assert pod.returncode == 0, pod.stderr + pod.stdout
    assert pod.run["runId"] == started.run_id
    done = await runner.records.get(started.run_id)
    assert done.state == differ_pb2.SUCCEEDED
    assert (done.shard_index, done.shard_count) == (2, 4)
    assert done.counts.created == len(await harness.new_events()) > 0
    assert done.start_time == started.start_time


async def test_a_job_that_cannot_be_created_fails_the_run_and_frees_the_shard(
    harness: DifferHarness, kubernetes: FakeKubernetes
) -> None:
    runner = cluster_runner(harness, cronjob="no-such-cronjob")
    with pytest.raises(FailedPrecondition, match="no CronJob 'no-such-cronjob'"):
        await runner.start(0, 1)
    [run] = await runner.records.newest(1)
    assert run.state == differ_pb2.FAILED and "could not start the run's Job" in run.error
    assert await harness.redis.get("profilesync:lock:s0of1") is None


async def test_a_dry_run_job_says_so(harness: DifferHarness, kubernetes: FakeKubernetes) -> None:
    started = await cluster_runner(harness).start(0, 1, dry_run=True)
    assert started.dry_run
    assert container_env(kubernetes.jobs[0])["SYNC_DRY_RUN"] == "true"

"""Cluster mode: `StartSync` runs the sync as a Kubernetes Job made from the
differ's CronJob, the way `kubectl create job --from=cronjob/<name>` does.

    launcher = KubernetesJobLauncher(namespace="profilesync", cronjob="profilesync-differ")
    job_name = await launcher.launch(run)

The Job is the CronJob's job template with: the run's id, shard and dry-run
flag in every container's environment (SYNC_RUN_ID, SHARD_INDEX,
SHARD_COUNT, SYNC_DRY_RUN), one completion (even when the CronJob is an
Indexed Job over every shard: this Job syncs the one shard asked for), the
annotation `cronjob.kubernetes.io/instantiate: manual`, and the CronJob as
owner, so deleting the CronJob deletes it too.

The Kubernetes API is reached with the pod's service account in a cluster
(KUBERNETES_SERVICE_HOST set), or through KUBECONFIG elsewhere. The service
account needs `get` on cronjobs and `create` on jobs in its namespace.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import os
import pathlib
from typing import Any, Protocol

from profilesync.v1 import differ_pb2
from services.common.errors import FailedPrecondition, PermissionDenied, Unavailable

__all__ = ["JobLauncher", "KubernetesJobLauncher", "job_name_for", "service_account_namespace"]

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
MAX_NAME = 63


class JobLauncher(Protocol):
    async def launch(self, run: differ_pb2.SyncRun) -> str:
        """Starts a process that performs `run`; returns a name for it."""
        ...


def service_account_namespace() -> str | None:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
    except OSError:
        return None


def job_name_for(cronjob: str, run_id: str) -> str:
    """A DNS-1123 name of at most 63 characters, unique per run."""
    suffix = run_id.lower()
    return f"{cronjob[: MAX_NAME - len(suffix) - 1].rstrip('-')}-{suffix}"


def _set_env(container: dict[str, Any], values: dict[str, str]) -> None:
    env = [item for item in container.get("env") or [] if item.get("name") not in values]
    env.extend({"name": name, "value": value} for name, value in values.items())
    container["env"] = env


class KubernetesJobLauncher:
    def __init__(self, namespace: str, cronjob: str, api_client: Any | None = None) -> None:
        self.namespace = namespace
        self.cronjob = cronjob
        self._api_client = api_client

    def _api(self) -> Any:
        if self._api_client is None:
            from kubernetes import client, config

            configuration = client.Configuration()
            if os.environ.get("KUBERNETES_SERVICE_HOST"):
                config.load_incluster_config(client_configuration=configuration)
            else:
                # KUBECONFIG read now: the client reads it once, at import.
                config.load_kube_config(
                    config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
                )
            self._api_client = client.ApiClient(configuration)
        return self._api_client

    async def launch(self, run: differ_pb2.SyncRun) -> str:
        return await asyncio.to_thread(self._create, run)

    def job_manifest(self, cronjob: dict[str, Any], run: differ_pb2.SyncRun) -> dict[str, Any]:
        """The Job for `run`, from the CronJob as the API returned it (JSON)."""
        template = copy.deepcopy(cronjob["spec"]["jobTemplate"])
        metadata = template.get("metadata") or {}
        spec = template["spec"]
        # One shard, one pod, whatever the CronJob does on its schedule.
        spec.pop("completionMode", None)
        spec["completions"] = 1
        spec["parallelism"] = 1
        values = {
            "SYNC_RUN_ID": run.run_id,
            "SHARD_INDEX": str(run.shard_index),
            "SHARD_COUNT": str(run.shard_count),
            "SYNC_DRY_RUN": "true" if run.dry_run else "false",
        }
        for container in spec["template"]["spec"]["containers"]:
            _set_env(container, values)
        labels = dict(metadata.get("labels") or {})
        labels["profilesync.io/run-id"] = run.run_id
        pod_labels = spec["template"].setdefault("metadata", {}).setdefault("labels", {})
        pod_labels["profilesync.io/run-id"] = run.run_id
        annotations = dict(metadata.get("annotations") or {})
        annotations["cronjob.kubernetes.io/instantiate"] = "manual"
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": job_name_for(self.cronjob, run.run_id),
                "namespace": self.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "CronJob",
                        "name": cronjob["metadata"]["name"],
                        "uid": cronjob["metadata"]["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec,
        }

    def _create(self, run: differ_pb2.SyncRun) -> str:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        api_client = self._api()
        batch = client.BatchV1Api(api_client)
        try:
            # The raw JSON, not the client's models: the template goes back
            # exactly as it came, fields this client version does not know included.
            response = batch.read_namespaced_cron_job(
                self.cronjob, self.namespace, _preload_content=False
            )
            cronjob = json.loads(response.data)
            job = self.job_manifest(cronjob, run)
            batch.create_namespaced_job(self.namespace, job, _preload_content=False)
        except ApiException as error:
            where = f"CronJob {self.cronjob!r} in namespace {self.namespace!r}"
            if error.status == 404:
                raise FailedPrecondition(f"cluster mode: no {where}") from None
            if error.status in (401, 403):
                raise PermissionDenied(
                    f"cluster mode: the differ may not read {where} or create Jobs "
                    f"(HTTP {error.status}): check its service account's Role"
                ) from None
            raise Unavailable(
                f"cluster mode: the Kubernetes API answered HTTP {error.status}: {error.reason}"
            ) from None
        except (HTTPError, OSError) as error:
            raise Unavailable(f"cluster mode: cannot reach the Kubernetes API: {error}") from None
        name = str(job["metadata"]["name"])
        log.info("created Job %s for run %s", name, run.run_id, extra={"namespace": self.namespace})
        return name

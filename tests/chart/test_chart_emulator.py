"""Staging installs: the Graph emulator (charts/graph-emulator) serves TLS for the names the
services call it by, with the certificate its chart made, and profile-sync's services trust it
and use its tenant; the production chart holds no emulator."""

from __future__ import annotations

import base64
import os
import pathlib
import socket
import ssl
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from chart_harness import (
    EMULATOR_CHART_DIR,
    EMULATOR_RELEASE,
    EMULATOR_VALUES,
    NAMESPACE,
    PREFIX,
    ROOT,
    VALUE_SETS,
    container_env,
    find,
    pod_specs,
    render,
    render_emulator,
)
from cryptography import x509

from devtools.graph_emulator.tls import ensure_tls_files
from devtools.processes import ManagedProcess, python_module

EMULATOR = EMULATOR_RELEASE
SERVICE_HOST = f"{EMULATOR}.{NAMESPACE}.svc"


def emulator_manifests() -> list[dict[str, Any]]:
    """A staging namespace: the emulator's release beside profile-sync's."""
    return render_emulator() + render(VALUE_SETS["emulator"])


def test_the_production_chart_holds_no_emulator() -> None:
    templates = (ROOT / "charts" / "profile-sync" / "templates").rglob("*")
    assert not [p.name for p in templates if "emulator" in p.name and p.suffix == ".yaml"]
    for manifest in render(VALUE_SETS["emulator"]):
        assert manifest["metadata"]["name"] != EMULATOR, manifest["kind"]
        for _, spec in pod_specs([manifest]):
            for container in spec["containers"]:
                assert "devtools.graph_emulator" not in container.get("command", [])


@pytest.mark.parametrize("kube_version", ["1.29.0", kubernetes_validate.latest_version()])
def test_the_emulator_chart_makes_valid_kubernetes_objects(kube_version: str) -> None:
    manifests = render_emulator(kube_version=kube_version)
    assert {m["kind"] for m in manifests} == {
        "ServiceAccount", "Secret", "Deployment", "Service", "NetworkPolicy",
    }  # fmt: skip
    for manifest in manifests:
        kubernetes_validate.validate(manifest, kube_version, strict=True)
    report = helm.lint(EMULATOR_CHART_DIR, EMULATOR_VALUES, strict=True, namespace=NAMESPACE)
    assert [m for m in report["messages"] if m["severity"] >= 2] + report["errors"] == []


def test_the_emulator_chart_refuses_a_misspelled_value() -> None:
    with pytest.raises(Exception, match="usres"):
        render_emulator({"usres": 5})


def test_the_emulator_pod_runs_the_emulator_image_with_its_values() -> None:
    deployment = find(render_emulator(), "Deployment", EMULATOR)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "profile-sync-graph-emulator:0.1.0"
    command = container["command"]
    assert command[:3] == ["python", "-m", "devtools.graph_emulator"]
    assert command[command.index("--users") + 1] == "500"
    assert command[-2:] == ["--quota", "2000"]


def write_secret_files(secret: dict[str, Any], directory: pathlib.Path) -> None:
    """The Secret's TLS files as the pod mounts them: read-only."""
    directory.mkdir(parents=True, exist_ok=True)
    for key in ("ca.pem", "ca.key", "server.pem", "server.key"):
        path = directory / key
        path.write_bytes(base64.b64decode(secret["data"][key]))
        path.chmod(0o440)


def test_certificate_names_the_service_and_loopback() -> None:
    secret = find(emulator_manifests(), "Secret", EMULATOR)
    pem = base64.b64decode(secret["data"]["server.pem"])
    names = x509.load_pem_x509_certificate(pem).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    dns = set(names.value.get_values_for_type(x509.DNSName))
    assert {EMULATOR, f"{EMULATOR}.{NAMESPACE}", SERVICE_HOST, "localhost"} <= dns
    assert f"{SERVICE_HOST}.cluster.local" in dns


def test_emulator_keeps_the_chart_certificate(tmp_path: pathlib.Path) -> None:
    write_secret_files(find(emulator_manifests(), "Secret", EMULATOR), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # The files are read-only in the pod: the emulator must accept them as they are.
    ensure_tls_files(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_services_reach_the_emulator_over_verified_tls(tmp_path: pathlib.Path) -> None:
    manifests = emulator_manifests()
    secret = find(manifests, "Secret", EMULATOR)
    state = tmp_path / "state"
    write_secret_files(secret, state)
    ready = tmp_path / "ready.json"
    emulator = ManagedProcess(
        "graph-emulator",
        python_module(
            "devtools.graph_emulator",
            "--users", "3",
            "--port", "0",
            "--state-dir", str(state),
            "--ready-file", str(ready),
            "--client-secret", base64.b64decode(secret["data"]["client-secret"]).decode(),
        ),
        log_dir=tmp_path / "logs",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        ready_file=ready,
        cwd=ROOT,
    )  # fmt: skip
    emulator.start()
    try:
        port = int(emulator.wait_ready(timeout=120)["url"].rsplit(":", 1)[1])
        # What the extender does with AZURE_CA_BUNDLE: trust the chart's CA, check the name.
        context = ssl.create_default_context(cafile=str(state / "ca.pem"))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname=SERVICE_HOST) as tls,
        ):
            tls.sendall(
                f"GET /_emulator/health HTTP/1.1\r\nHost: {SERVICE_HOST}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
    finally:
        emulator.stop()


def test_services_use_the_emulator_tenant_and_trust_its_ca() -> None:
    manifests = emulator_manifests()
    emulator = find(manifests, "Deployment", EMULATOR)
    args = emulator["spec"]["template"]["spec"]["containers"][0]["command"]
    secret = find(manifests, "Secret", EMULATOR)["data"]
    tenant = args[args.index("--tenant-id") + 1]
    client = args[args.index("--client-id") + 1]
    # The emulator's Secret is the one source of its tenant and app for the services.
    assert base64.b64decode(secret["tenant-id"]).decode() == tenant
    assert base64.b64decode(secret["client-id"]).decode() == client
    url = f"https://{SERVICE_HOST}:8443"
    for name in ("extender", "notifier", "differ"):
        env = container_env(find(manifests, "Deployment", f"{PREFIX}-{name}"))
        assert env["AZURE_TENANT_ID"] == {"secretKeyRef": {"name": EMULATOR, "key": "tenant-id"}}
        assert env["AZURE_CLIENT_ID"] == {"secretKeyRef": {"name": EMULATOR, "key": "client-id"}}
        assert env["AZURE_AUTHORITY_HOST"] == url
        assert env["AZURE_CA_BUNDLE"] == "/etc/profile-sync/graph-emulator/ca.pem"
    extender = container_env(find(manifests, "Deployment", f"{PREFIX}-extender"))
    assert extender["GRAPH_URL"] == f"{url}/v1.0"
    assert extender["AZURE_CLIENT_SECRET"] == {
        "secretKeyRef": {"name": EMULATOR, "key": "client-secret"}
    }


def test_only_the_ca_certificate_reaches_the_services() -> None:
    manifests = emulator_manifests()
    extender = find(manifests, "Deployment", f"{PREFIX}-extender")["spec"]["template"]["spec"]
    volume = next(v for v in extender["volumes"] if v["name"] == "graph-emulator-ca")
    assert volume["secret"]["items"] == [{"key": "ca.pem", "path": "ca.pem"}]


def test_a_staging_install_keeps_snapshots_in_a_scratch_directory() -> None:
    env = container_env(find(emulator_manifests(), "Deployment", f"{PREFIX}-differ-sweeper-0"))
    assert env["SNAPSHOT_STORE"] == "/tmp/snapshots"
    assert not {"S3_REGION", "S3_SSE"} & set(env)

"""Staging installs: the Graph emulator serves TLS for the names the services call it by, with
the certificate the chart made, and the services trust it and use its tenant."""

from __future__ import annotations

import base64
import os
import pathlib
import socket
import ssl
from typing import Any

from chart_harness import NAMESPACE, PREFIX, ROOT, VALUE_SETS, container_env, find, render
from cryptography import x509

from services.common.processes import ManagedProcess, python_module
from services.graph_emulator.tls import ensure_tls_files

EMULATOR = f"{PREFIX}-graph-emulator"
SERVICE_HOST = f"{EMULATOR}.{NAMESPACE}.svc"


def emulator_manifests() -> list[dict[str, Any]]:
    return render(VALUE_SETS["emulator"])


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
            "services.graph_emulator",
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
    tenant = args[args.index("--tenant-id") + 1]
    url = f"https://{SERVICE_HOST}:8443"
    for name in ("extender", "notifier", "differ"):
        env = container_env(find(manifests, "Deployment", f"{PREFIX}-{name}"))
        assert env["AZURE_TENANT_ID"] == tenant
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

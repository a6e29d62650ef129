"""A load check, run by hand: can the emulator hold about 1,000 slow profile reads at once?

    PYTHONPATH=$PWD .venv/bin/python tests/graph_emulator/latency_load_check.py [LATENCY_MS]

It starts the emulator (1,000 users, no effective quota) with a fixed profile latency
(median = p99 = LATENCY_MS, 10,000 by default) and sends 1,000 profile reads at once, in
waves: 50 batches of 20 over 10 HTTP/2 connections; 1,000 single GETs over 10 connections
(Hypercorn allows 100 streams per connection); 50 batches of 20 over one connection, from
httpx and (when curl is installed) from curl. It prints one JSON line per wave: how many
reads the emulator held waiting at once at the peak (``peakOperationsWaiting`` of its
stats), how long the reads took (p50, p99: about LATENCY_MS when the emulator holds them all
side by side), the wall time, and the emulator's CPU seconds and resident memory.

The latency is long so that a Python client, which needs a few milliseconds per request,
has every request sent before the first answers. Over a single connection, httpx gets only
about 40 batches with a body in flight at once (the rest wait for answers); curl gets all 50
through the same emulator, so that limit is the client's. It is not a test (timings depend
on the machine); the latency behaviour itself is tested in test_emulator_latency.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from emulator_process import EmulatorProcess, start_emulator

PROFILE_SELECT = "$select=id,displayName,aboutMe,skills,pastProjects"
ITEMS = 1_000
BATCH_SIZE = 20
CONNECTIONS = 10


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _client(running: EmulatorProcess) -> httpx.AsyncClient:
    context = ssl.create_default_context(cafile=running.ready["caFile"])
    return httpx.AsyncClient(
        base_url=running.ready["url"], verify=context, http2=True, trust_env=False, timeout=120
    )


Timed = tuple[float, float, int]  # (sent, answered, status), seconds from the wave's start


def _peak_in_flight(timed: list[Timed]) -> int:
    events = sorted([(sent, 1) for sent, _, _ in timed] + [(done, -1) for _, done, _ in timed])
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


async def _wave(
    name: str, running: EmulatorProcess, http: httpx.AsyncClient, send: Any
) -> dict[str, Any]:
    pid = running.process.pid
    await http.delete("/_emulator/stats")
    cpu, started = _cpu_seconds(pid), time.perf_counter()
    timed: list[Timed] = await send(started)
    wall = time.perf_counter() - started
    stats = (await http.get("/_emulator/stats")).json()
    durations = sorted(done - sent for sent, done, _ in timed)
    return {
        "wave": name,
        "reads": len(timed),
        "ok": sum(1 for *_, status in timed if status == 200),
        # Reads whose answers the emulator held at once (its own count), and reads the client
        # had sent and not yet seen answered at once.
        "emulatorPeakWaiting": stats["peakOperationsWaiting"],
        "clientPeakInFlight": _peak_in_flight(timed),
        "p50Seconds": round(durations[len(durations) // 2], 2),
        "p99Seconds": round(durations[int(len(durations) * 0.99) - 1], 2),
        "wallSeconds": round(wall, 2),
        "emulatorCpuSeconds": round(_cpu_seconds(pid) - cpu, 2),
        "emulatorRssMiB": round(_rss_mib(pid), 1),
    }


async def main(latency_ms: int) -> None:
    print(json.dumps({"profileLatencyMs": latency_ms}))
    with tempfile.TemporaryDirectory() as workdir:
        running = start_emulator(
            Path(workdir),
            "--users",
            str(ITEMS),
            "--quota",
            "10000000",
            "--profile-latency-median-ms",
            str(latency_ms),
            "--profile-latency-p99-ms",
            str(latency_ms),
        )
        try:
            async with _client(running) as http:
                token = (
                    await http.post(
                        "/_emulator/token",
                        json={
                            "roles": ["User.Read.All"],
                            "audience": "https://graph.microsoft.com",
                        },
                    )
                ).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                page = await http.get("/v1.0/users?$select=id&$top=999", headers=headers)
                ids = [u["id"] for u in page.json()["value"]]
                ids = (ids * 2)[:ITEMS]

            clients = [_client(running) for _ in range(CONNECTIONS)]
            # Open the connections first, so the waves time the reads, not TLS handshakes.
            await asyncio.gather(*(c.get("/_emulator/health") for c in clients))

            def batches(pool: list[httpx.AsyncClient]) -> Any:
                async def send(origin: float) -> list[Timed]:
                    async def one(start: int) -> list[Timed]:
                        items = [
                            {"id": str(n), "method": "GET", "url": f"/users/{i}?{PROFILE_SELECT}"}
                            for n, i in enumerate(ids[start : start + BATCH_SIZE])
                        ]
                        sent = time.perf_counter() - origin
                        response = await pool[start // BATCH_SIZE % len(pool)].post(
                            "/v1.0/$batch", json={"requests": items}, headers=headers
                        )
                        done = time.perf_counter() - origin
                        return [(sent, done, r["status"]) for r in response.json()["responses"]]

                    waves = await asyncio.gather(
                        *(one(start) for start in range(0, ITEMS, BATCH_SIZE))
                    )
                    return [item for wave in waves for item in wave]

                return send

            async def singles(origin: float) -> list[Timed]:
                async def one(n: int) -> Timed:
                    url = f"/v1.0/users/{ids[n]}?{PROFILE_SELECT}"
                    sent = time.perf_counter() - origin
                    response = await clients[n % CONNECTIONS].get(url, headers=headers)
                    return (sent, time.perf_counter() - origin, response.status_code)

                return list(await asyncio.gather(*(one(n) for n in range(ITEMS))))

            def curl_batches(origin: float) -> list[Timed]:
                # One HTTP/2 connection carrying all 50 batches (curl multiplexes them).
                items = [
                    {"id": str(n), "method": "GET", "url": f"/users/{i}?{PROFILE_SELECT}"}
                    for n, i in enumerate(ids[:BATCH_SIZE])
                ]
                body = Path(workdir) / "batch.json"
                body.write_text(json.dumps({"requests": items}))
                per_transfer = [
                    *("--http2", "--cacert", running.ready["caFile"], "-s", "-o", "/dev/null"),
                    *("-w", "%{http_code} %{time_total} %{num_connects}\\n"),
                    *("-H", f"Authorization: Bearer {token}"),
                    *("-H", "Content-Type: application/json", "--data-binary", f"@{body}"),
                    f"{running.ready['url']}/v1.0/$batch",
                ]
                command = ["curl", "-Z", "--parallel-max", str(ITEMS // BATCH_SIZE)]
                for n in range(ITEMS // BATCH_SIZE):
                    command += [*(["--next"] if n else []), *per_transfer]
                out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
                answers = [line.split() for line in out.splitlines() if line]
                assert sum(int(a[2]) for a in answers) == 1, "curl opened more than one connection"
                return [(0.0, float(a[1]), int(a[0])) for a in answers for _ in range(BATCH_SIZE)]

            async def over_one_connection(origin: float) -> list[Timed]:
                return await asyncio.to_thread(curl_batches, origin)

            waves = [
                (f"50 batches of 20, {CONNECTIONS} connections (httpx)", batches(clients)),
                (f"1,000 single GETs, {CONNECTIONS} connections (httpx)", singles),
                ("50 batches of 20, one connection (httpx)", batches(clients[:1])),
            ]
            if shutil.which("curl"):
                waves.append(("50 batches of 20, one connection (curl)", over_one_connection))
            for name, send in waves:
                print(json.dumps(await _wave(name, running, clients[0], send)))
            for client in clients:
                await client.aclose()
        finally:
            running.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))

"""A separate client process for the shared-budget test: sends batches of single-user GETs
to the emulator as fast as it can for SECONDS, and on until it has been throttled (at most a
minute), and prints what it got, as JSON.

    python emulator_load_client.py URL CA_FILE TOKEN SECONDS ID [ID ...]

It prints "ready" once connected and starts when a line arrives on stdin, so several of
them can be started together.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections import Counter

import httpx


def main(argv: list[str]) -> int:
    url, ca_file, token, seconds, *ids = argv
    context = ssl.create_default_context(cafile=ca_file)
    statuses: Counter[int] = Counter()
    with httpx.Client(
        base_url=url, verify=context, http2=True, trust_env=False, timeout=60
    ) as http:
        http.get("/_emulator/health").raise_for_status()
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.monotonic()
        deadline = started + float(seconds)
        while time.monotonic() < deadline or (
            not statuses[429] and time.monotonic() < started + 60
        ):
            items = [
                {"id": str(i), "method": "GET", "url": f"/users/{user_id}?$select=id"}
                for i, user_id in enumerate(ids[:20])
            ]
            response = http.post(
                "/v1.0/$batch",
                json={"requests": items},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            statuses.update(item["status"] for item in response.json()["responses"])
    print(json.dumps({str(k): v for k, v in statuses.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

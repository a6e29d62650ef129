"""`python -m services.gateway`: the REST gateway (Envoy) in front of the gRPC services."""

from __future__ import annotations

import sys

from services.gateway.launcher import main

if __name__ == "__main__":
    sys.exit(main())

"""Generates the Python gRPC code and the gateway's descriptor set from protos/.

Output: the `profilesync` package at the repository root (mirroring
`protos/profilesync/v1`) and `build/profilesync.pb`, the descriptor set
(imports included) that Envoy's gRPC-JSON transcoder loads.
"""

from __future__ import annotations

import pathlib
import sys

import google.api
import grpc_tools
from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
DESCRIPTOR_SET = ROOT / "build" / "profilesync.pb"


def main() -> int:
    # googleapis-common-protos ships google/api/*.proto beside its modules;
    # grpc_tools ships google/protobuf/*.proto.
    googleapis_root = pathlib.Path(google.api.__path__[0]).parent.parent
    well_known_root = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    DESCRIPTOR_SET.parent.mkdir(exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{googleapis_root}",
        f"-I{well_known_root}",
        f"--python_out={ROOT}",
        f"--pyi_out={ROOT}",
        f"--grpc_python_out={ROOT}",
        f"--descriptor_set_out={DESCRIPTOR_SET}",
        "--include_imports",
        "--include_source_info",
        *sources,
    ]
    status = protoc.main(args)
    if status != 0:
        print("protoc failed", file=sys.stderr)
        return int(status)
    for package_dir in {(ROOT / s).parent for s in sources} | {ROOT / "profilesync"}:
        (package_dir / "__init__.py").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())

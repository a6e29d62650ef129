"""The messages, enums, services and comments of a descriptor set, by full name.

    catalog = ProtoCatalog.load(pathlib.Path("build/profilesync.pb"))
    profile = catalog.message("profilesync.v1.Profile")
    catalog.comment("profilesync.v1.Profile.about_me")  # the field's proto comment

Works on the raw descriptor protos rather than a descriptor pool, so custom
options (`google.api.http`, `profilesync.v1.limits`) read exactly as they were
written in the .proto files. Comments come from the source info that
`scripts/gen_protos.py` keeps in the set (`--include_source_info`).
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from google.protobuf import descriptor_pb2

__all__ = ["ProtoCatalog", "ServiceEntry", "lower_camel"]

# Field numbers in descriptor.proto that make up SourceCodeInfo paths.
_FILE_MESSAGE = 4
_FILE_ENUM = 5
_FILE_SERVICE = 6
_MESSAGE_FIELD = 2
_MESSAGE_NESTED = 3
_MESSAGE_ENUM = 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def lower_camel(name: str) -> str:
    """protoc's JSON name of a field, for descriptors that lack `json_name`."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _clean(text: str) -> str:
    # protoc keeps the space after `//` on every line; blank lines separate paragraphs.
    lines = [line[1:] if line.startswith(" ") else line for line in text.strip("\n").split("\n")]
    return "\n".join(lines).strip()


@dataclass(frozen=True)
class ServiceEntry:
    full_name: str
    descriptor: descriptor_pb2.ServiceDescriptorProto


@dataclass
class ProtoCatalog:
    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: list[ServiceEntry] = field(default_factory=list)
    comments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, descriptor_set: pathlib.Path) -> ProtoCatalog:
        files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
        return cls.from_files(files.file)

    @classmethod
    def from_files(cls, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> ProtoCatalog:
        catalog = cls()
        for file in files:
            catalog._add_file(file)
        return catalog

    # -- lookups ------------------------------------------------------------
    def message(self, full_name: str) -> descriptor_pb2.DescriptorProto:
        try:
            return self.messages[full_name.lstrip(".")]
        except KeyError:
            raise KeyError(f"the descriptor set has no message {full_name}") from None

    def enum(self, full_name: str) -> descriptor_pb2.EnumDescriptorProto:
        try:
            return self.enums[full_name.lstrip(".")]
        except KeyError:
            raise KeyError(f"the descriptor set has no enum {full_name}") from None

    def comment(self, full_name: str) -> str:
        return self.comments.get(full_name.lstrip("."), "")

    def iter_services(self, package_prefix: str = "") -> Iterator[ServiceEntry]:
        return (s for s in self.services if s.full_name.startswith(package_prefix))

    # -- building -----------------------------------------------------------
    def _add_file(self, file: descriptor_pb2.FileDescriptorProto) -> None:
        prefix = f"{file.package}." if file.package else ""
        names: dict[tuple[int, ...], str] = {}
        for index, message in enumerate(file.message_type):
            self._add_message(prefix + message.name, message, (_FILE_MESSAGE, index), names)
        for index, enum in enumerate(file.enum_type):
            self._add_enum(prefix + enum.name, enum, (_FILE_ENUM, index), names)
        for index, service in enumerate(file.service):
            full_name = prefix + service.name
            self.services.append(ServiceEntry(full_name, service))
            names[(_FILE_SERVICE, index)] = full_name
            for method_index, method in enumerate(service.method):
                names[(_FILE_SERVICE, index, _SERVICE_METHOD, method_index)] = (
                    f"{full_name}.{method.name}"
                )
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = _clean(location.leading_comments) or _clean(location.trailing_comments)
            if name and text:
                self.comments[name] = text

    def _add_message(
        self,
        full_name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        names: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[full_name] = message
        names[path] = full_name
        for index, item in enumerate(message.field):
            names[(*path, _MESSAGE_FIELD, index)] = f"{full_name}.{item.name}"
        for index, nested in enumerate(message.nested_type):
            self._add_message(
                f"{full_name}.{nested.name}", nested, (*path, _MESSAGE_NESTED, index), names
            )
        for index, enum in enumerate(message.enum_type):
            self._add_enum(f"{full_name}.{enum.name}", enum, (*path, _MESSAGE_ENUM, index), names)

    def _add_enum(
        self,
        full_name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        names: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[full_name] = enum
        names[path] = full_name
        # Keyed under the enum (not beside it, as protobuf scopes them) so a
        # value's comment is found from its enum.
        for index, value in enumerate(enum.value):
            names[(*path, _ENUM_VALUE, index)] = f"{full_name}.{value.name}"

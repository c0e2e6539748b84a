"""Writes protobuf_types.yaml, the table `protobuf.py` decodes Kubernetes protobuf bodies with, from
the Go types of k8s.io/api and k8s.io/apimachinery (their struct tags give each field's protobuf
number, its JSON name, omitempty, and whether it is a pointer, which decides what JSON the API
server would have seen). A development tool, run by hand against a checkout of the 1.32 sources:

    python -m tandem.localcluster.protobuf_gen API_DIR APIMACHINERY_DIR > localcluster/protobuf_types.yaml
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# The served built-ins a client may send in protobuf (resources.BUILTINS but the CRDs, which only
# JSON clients write), and DeleteOptions; keyed by the kind the protobuf envelope names.
ROOTS = {"Pod": "core.Pod", "Service": "core.Service", "Node": "core.Node", "Event": "core.Event",
         "ConfigMap": "core.ConfigMap", "Namespace": "core.Namespace", "ResourceQuota": "core.ResourceQuota",
         "PersistentVolumeClaim": "core.PersistentVolumeClaim", "Lease": "coordination.Lease",
         "DeleteOptions": "meta.DeleteOptions"}
SOURCES = {"core": ("API", "core/v1/types.go"), "coordination": ("API", "coordination/v1/types.go"),
           "meta": ("APIMACHINERY", "pkg/apis/meta/v1/types.go")}
# Types whose protobuf form is not their JSON form (protobuf.py converts them).
SPECIAL = {"meta.Time": "Time", "meta.MicroTime": "MicroTime", "meta.Duration": "Duration",
           "meta.FieldsV1": "FieldsV1", "resource.Quantity": "Quantity", "intstr.IntOrString": "IntOrString",
           "runtime.RawExtension": "RawExtension", "types.UID": "string"}
SCALARS = {"string": "string", "bool": "bool", "int32": "int", "int64": "int", "int": "int", "uint32": "int",
           "uint64": "int", "float64": "float", "[]byte": "bytes"}
PACKAGES = {"metav1": "meta", "v1": "core"}
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.S | re.M)
_ALIAS = re.compile(r"^type (\w+) ((?:\[\]|map\[)?[\w.\[\]*]+)$", re.M)
_FIELD = re.compile(r"^[ \t]*([^`/\n]+?)[ \t]*`([^`\n]*)`", re.M)


def _tag(tags: str, name: str) -> str | None:
    found = re.search(rf'{name}:"([^"]*)"', tags)
    return found.group(1) if found else None


def parse(package: str, text: str) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """(struct name -> [(Go type, tags)], alias name -> Go type) of one types.go."""
    structs = {}
    for name, body in _STRUCT.findall(text):
        fields = []
        for before, tags in _FIELD.findall(body):
            parts = before.split()
            fields.append((parts[-1], tags))
        structs[f"{package}.{name}"] = fields
    aliases = {f"{package}.{name}": go for name, go in _ALIAS.findall(text)}
    return structs, aliases


class Generator:
    def __init__(self, structs: dict[str, list[tuple[str, str]]], aliases: dict[str, str]) -> None:
        self.structs, self.aliases = structs, aliases
        self.messages: dict[str, list[str]] = {}

    def qualify(self, package: str, go: str) -> str:
        if "." in go:
            prefix, name = go.split(".", 1)
            return f"{PACKAGES.get(prefix, prefix)}.{name}"
        return f"{package}.{go}"

    def resolve(self, package: str, go: str) -> tuple[str, bool]:
        """(table type, repeated) of a Go type without its pointer star."""
        if go in SCALARS:
            return SCALARS[go], False
        if go.startswith("[]"):
            return self.resolve(package, go[2:])[0], True
        if go.startswith("map["):
            value = go[go.index("]") + 1:]
            return "map:" + self.resolve(package, value.lstrip("*"))[0], False
        name = self.qualify(package, go)
        if name in SPECIAL:
            return SPECIAL[name], False
        if name in self.aliases:
            return self.resolve(name.split(".")[0], self.aliases[name])
        if name not in self.structs:
            raise KeyError(f"unknown Go type {go} in {package}")
        self.message(name)
        return name, False

    def message(self, name: str) -> None:
        if name in self.messages:
            return
        self.messages[name] = []
        package = name.split(".")[0]
        fields = []
        for go, tags in self.structs[name]:
            proto, json_tag = _tag(tags, "protobuf"), _tag(tags, "json")
            if proto is None or json_tag is None or json_tag == "-":
                continue
            number = proto.split(",")[1]
            json_name, *options = json_tag.split(",")
            kind, repeated = self.resolve(package, go.lstrip("*"))
            flags = "".join(flag for flag, on in (("r", repeated), ("p", go.startswith("*")),
                                                 ("o", "omitempty" in options), ("i", "inline" in options)) if on)
            fields.append(f"{number} {json_name or '-'} {kind} {flags or '-'}")
        self.messages[name] = fields


def main(api: str, apimachinery: str) -> None:
    roots = {"API": Path(api), "APIMACHINERY": Path(apimachinery)}
    structs: dict[str, list[tuple[str, str]]] = {}
    aliases: dict[str, str] = {}
    for package, (root, path) in SOURCES.items():
        found, named = parse(package, (roots[root] / path).read_text())
        structs.update(found)
        aliases.update(named)
    generator = Generator(structs, aliases)
    for message in ROOTS.values():
        generator.message(message)
    print("# Generated by localcluster/protobuf_gen.py from k8s.io/api and k8s.io/apimachinery v0.32.9;")
    print("# each field: number, JSON name, type, flags (r repeated, p pointer, o omitempty, i inline JSON).")
    print("kinds:")
    for kind, message in ROOTS.items():
        print(f"  {kind}: {message}")
    print("messages:")
    for message, fields in sorted(generator.messages.items()):
        print(f"  {message}:")
        for field in fields:
            print(f"  - {field}")


if __name__ == "__main__":
    main(*sys.argv[1:3])

"""A small fake Kubernetes API server on loopback, enough for `helm install` to run.

Helm needs the version, API discovery, and list/get/create/update of objects (its
release record is a Secret). Objects are kept in memory and never scheduled: the
point is to get the manifest Helm renders, with Helm's real error messages. Any
resource outside DISCOVERY is answered 404, so a chart using an unexpected API
fails loudly.
"""

from __future__ import annotations

import base64
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from tests.peers.util import free_port, serving

# group/version -> [(resource, kind, namespaced)]
DISCOVERY: dict[str, list[tuple[str, str, bool]]] = {
    "v1": [
        ("configmaps", "ConfigMap", True),
        ("secrets", "Secret", True),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
        ("persistentvolumeclaims", "PersistentVolumeClaim", True),
        ("pods", "Pod", True),
        ("namespaces", "Namespace", False),
    ],
    "apps/v1": [("deployments", "Deployment", True), ("statefulsets", "StatefulSet", True)],
    "monitoring.coreos.com/v1": [
        ("servicemonitors", "ServiceMonitor", True),
        ("prometheusrules", "PrometheusRule", True),
    ],
    "monitoring.coreos.com/v1alpha1": [("scrapeconfigs", "ScrapeConfig", True)],
}


@dataclass
class FakeKube:
    url: str
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kubeconfig(self) -> str:
        """A kubeconfig (YAML) pointing at this server."""
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "fake",
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "fake", "user": {"token": "fake"}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            }
        )


PROTOBUF_MAGIC = b"k8s\x00"


def _fields(data: bytes) -> Iterator[tuple[int, bytes | int]]:
    """Decode one protobuf message into (field number, value) pairs."""
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            length = varint()
            yield number, data[i : i + length]
            i += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, data[i : i + size]
            i += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _map_entry(entry: bytes) -> tuple[str, bytes]:
    fields = dict(_fields(entry))
    key, value = fields.get(1, b""), fields.get(2, b"")
    assert isinstance(key, bytes) and isinstance(value, bytes)
    return key.decode(), value


def _secret_from_protobuf(raw: bytes) -> dict[str, Any]:
    """The parts of a protobuf-encoded Secret that Helm's release storage relies on.

    client-go sends core types as protobuf; only Helm's release records (Secrets) are
    sent that way here, so only Secret's metadata, data and type are decoded.
    """
    envelope = dict(_fields(raw[len(PROTOBUF_MAGIC) :]))
    body = envelope.get(2, b"")
    assert isinstance(body, bytes)
    out: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret", "metadata": {}, "data": {}}
    for number, value in _fields(body):
        if not isinstance(value, bytes):
            continue
        if number == 1:  # ObjectMeta
            for meta_number, meta_value in _fields(value):
                if not isinstance(meta_value, bytes):
                    continue  # generation and other numbers: not needed here
                if meta_number == 1:
                    out["metadata"]["name"] = meta_value.decode()
                elif meta_number == 3:
                    out["metadata"]["namespace"] = meta_value.decode()
                elif meta_number == 11:
                    key, label = _map_entry(meta_value)
                    out["metadata"].setdefault("labels", {})[key] = label.decode()
        elif number == 2:
            key, data = _map_entry(value)
            out["data"][key] = base64.b64encode(data).decode()
        elif number == 3:
            out["type"] = value.decode()
    return out


def _resource_list(group_version: str) -> dict[str, Any]:
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k, "verbs": verbs}
            for r, k, ns in DISCOVERY[group_version]
        ],
    }


def _group_list() -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for gv in DISCOVERY:
        if "/" in gv:
            group, version = gv.split("/")
            groups.setdefault(group, []).append(version)
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [
            {
                "name": g,
                "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
            }
            for g, vs in groups.items()
        ],
    }


def _status(code: int, message: str) -> dict[str, Any]:
    reason = {404: "NotFound", 409: "AlreadyExists", 405: "MethodNotAllowed"}.get(code, "")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _parse(path: str) -> tuple[str, str, str | None, str | None] | None:
    """(group/version, resource, namespace, name) of an object or collection path."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        gv, rest = parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        gv, rest = f"{parts[1]}/{parts[2]}", parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 2 and rest[0] == "namespaces" and len(rest) != 2:
        namespace, rest = rest[1], rest[2:]
    if not rest or gv not in DISCOVERY or rest[0] not in {r for r, _, _ in DISCOVERY[gv]}:
        return None
    return gv, rest[0], namespace, rest[1] if len(rest) > 1 else None


def _matches(obj: dict[str, Any], selector: str) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.partition("=")
        if labels.get(key) != value:
            return False
    return True


def _handler(kube: FakeKube) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            if raw.startswith(PROTOBUF_MAGIC):
                return _secret_from_protobuf(raw)
            parsed: dict[str, Any] = yaml.safe_load(raw) or {}
            return parsed

        def _key(self, gv: str, resource: str, ns: str | None, name: str) -> str:
            return f"{gv}/{resource}/{ns or ''}/{name}"

        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            parts = urlsplit(self.path)
            path = parts.path.rstrip("/")
            if path == "/version":
                return self._send(
                    200,
                    {
                        "major": "1",
                        "minor": "30",
                        "gitVersion": "v1.30.0",
                        "platform": "linux/amd64",
                    },
                )
            if path == "/api":
                return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
            if path == "/apis":
                return self._send(200, _group_list())
            gv = path.removeprefix("/api/").removeprefix("/apis/")
            if gv in DISCOVERY and path in (f"/api/{gv}", f"/apis/{gv}"):
                return self._send(200, _resource_list(gv))
            target = _parse(path)
            if target is None:
                return self._send(404, _status(404, f"{path}: not served by the fake API"))
            group_version, resource, ns, name = target
            with kube.lock:
                if name is not None:
                    obj = kube.objects.get(self._key(group_version, resource, ns, name))
                    if obj is None:
                        return self._send(404, _status(404, f'{resource} "{name}" not found'))
                    return self._send(200, obj)
                selector = parse_qs(parts.query).get("labelSelector", [""])[0]
                prefix = (
                    f"{group_version}/{resource}/{ns or ''}/"
                    if ns
                    else f"{group_version}/{resource}/"
                )
                items = [
                    o
                    for k, o in kube.objects.items()
                    if k.startswith(prefix) and _matches(o, selector)
                ]
            return self._send(
                200,
                {
                    "kind": "List",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": "1"},
                    "items": items,
                },
            )

        def _store(self, create: bool) -> None:
            target = _parse(urlsplit(self.path).path)
            if target is None:
                return self._send(404, _status(404, f"{self.path}: not served by the fake API"))
            group_version, resource, ns, name = target
            obj = self._body()
            meta = obj.setdefault("metadata", {})
            name = name or meta.get("name")
            if not name:
                return self._send(422, _status(422, "metadata.name is required"))
            key = self._key(group_version, resource, ns, name)
            with kube.lock:
                if create and key in kube.objects:
                    return self._send(409, _status(409, f'{resource} "{name}" already exists'))
                meta.setdefault("namespace", ns)
                meta.setdefault("uid", str(uuid.uuid4()))
                meta["resourceVersion"] = str(len(kube.objects) + 1)
                meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
                kube.objects[key] = obj
            self._send(201 if create else 200, obj)

        def do_POST(self) -> None:  # noqa: N802 - stdlib name
            self._store(create=True)

        def do_PUT(self) -> None:  # noqa: N802 - stdlib name
            self._store(create=False)

        def do_PATCH(self) -> None:  # noqa: N802 - stdlib name
            self._store(create=False)

        def do_DELETE(self) -> None:  # noqa: N802 - stdlib name
            target = _parse(urlsplit(self.path).path)
            if target is not None and target[3] is not None:
                with kube.lock:
                    kube.objects.pop(self._key(*target[:3], target[3]), None)
            self._send(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    return Handler


@contextmanager
def fake_kube() -> Iterator[FakeKube]:
    """Serve the fake API on a free loopback port in a thread."""
    port = free_port()
    kube = FakeKube(f"http://127.0.0.1:{port}")
    with serving(ThreadingHTTPServer(("127.0.0.1", port), _handler(kube))):
        yield kube

"""A route table for the services' stdlib HTTP servers: path template -> handler.

Templates are paths whose segments are literals or `<name>` (one non-empty segment).
Literal paths are one dict lookup (the exporter's `/probe` is the hot path); templated
ones are tried in the order added. The matched template is also the `handler` label of
the HTTP metrics (stacksense_common.http_metrics), so metrics never see a raw path.

Flask routes the router (same `<name>` syntax), so its templates read the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
ANY_METHOD: frozenset[str] = frozenset()  # the target decides (e.g. ops' 405 for GET)
READS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class Route(Generic[T]):
    template: str
    target: T
    methods: frozenset[str]  # ANY_METHOD: every method reaches the target

    def allows(self, method: str) -> bool:
        return not self.methods or method in self.methods


@dataclass(slots=True)
class Match(Generic[T]):
    """A route and its parameters; one shared instance per literal route (read-only)."""

    route: Route[T]
    params: dict[str, str]  # still percent-encoded, as in the path


class RouteTable(Generic[T]):
    """Routes in the order added; `match` finds the route for a path."""

    def __init__(self) -> None:
        self._exact: dict[str, Match[T]] = {}
        self._templated: list[tuple[tuple[str, ...], Route[T]]] = []

    def add(self, template: str, target: T, methods: Iterable[str] = READS) -> None:
        route = Route(template, target, frozenset(methods))
        segments = tuple(template.split("/"))
        if any(s.startswith("<") for s in segments):
            self._templated.append((segments, route))
        else:
            self._exact[template] = Match(route, {})

    def match(self, path: str) -> Match[T] | None:
        exact = self._exact.get(path)
        if exact is not None:
            return exact
        parts = path.split("/")
        for segments, route in self._templated:
            if len(segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for want, got in zip(segments, parts, strict=True):
                if want.startswith("<"):
                    if not got:
                        break
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                return Match(route, params)
        return None

    def templates(self) -> list[str]:
        return [*self._exact, *(route.template for _, route in self._templated)]

"""A tiny decorator registry, as lm-evaluation-harness does it for tasks and models.

Pluggable parts (architecture adapters, identification methods, interventions, stages, gate rules)
register themselves by name; lookups of unknown names raise a one-line BadInput naming the choices.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from lab.core.errors import BadInput

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, hint: str = "") -> None:
        self.kind = kind
        self.hint = hint
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            extra = f"; {self.hint}" if self.hint else ""
            raise BadInput(f"unknown {self.kind} {name!r} (known: {known}){extra}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)

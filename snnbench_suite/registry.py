"""A small typed registry: one per kind of plugin object (methods, architectures, ...).

Each entry remembers which plugin supplied it, so a duplicate name is an error naming both
origins and `snnbench list` can show where a name comes from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from snnbench_suite.errors import DuplicateNameError, InvalidSpecError, UnknownNameError

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)?$")


def check_name(kind: str, name: object) -> str:
    """Return `name` if it is a valid registry name, else raise InvalidSpecError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidSpecError(
            f"invalid {kind} name {name!r}: names are lowercase [a-z0-9_]+, "
            "optionally with one '.variant' suffix (e.g. 'calib.light')"
        )
    return name


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    value: T
    origin: str


class Registry(Generic[T]):
    """Name -> object for one kind, with origins, duplicate detection and did-you-mean."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, value: T, origin: str) -> None:
        check_name(self.kind, name)
        existing = self._entries.get(name)
        if existing is not None:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {existing.origin!r} "
                f"and by plugin {origin!r}. Rename one of them, or disable a plugin with "
                "SNNBENCH_DISABLE_PLUGINS=<entry-point name>."
            )
        self._entries[name] = Entry(name, value, origin)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> T:
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        known = sorted(self._entries)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        listing = ", ".join(known) if known else "(none registered)"
        return f"Unknown {self.kind} {name!r}.{hint} Available: {listing}."

    def origin(self, name: str) -> str:
        return self.entry(name).origin

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> Iterator[Entry[T]]:
        for name in self.names():
            yield self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

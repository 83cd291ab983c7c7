"""A small typed registry: one per kind of plugin object (methods, architectures, ...).

Each entry remembers which plugin supplied it, so a duplicate name is an error naming both
origins and `snnbench list` can show where a name comes from. An entry whose value has a
callable `variants` is a family: `family.variant` names resolve through it (`timm.resnet18`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator
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
        self._variants: dict[str, Entry[T]] = {}  # resolved `family.variant` names

    def register(self, name: str, value: T, origin: str) -> None:
        check_name(self.kind, name)
        existing = self._entries.get(name)
        if existing is not None:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is registered twice: by plugin {existing.origin!r} "
                f"and by plugin {origin!r}. Names are unique per kind: rename the one in "
                f"plugin {origin!r} (e.g. prefix it with your project's name), or disable "
                "a plugin with SNNBENCH_DISABLE_PLUGINS=<entry-point name>."
            )
        family, dot, _ = name.partition(".")
        base = self._entries.get(family) if dot else None
        if base is not None and self._resolver(base) is not None:
            # `family.member` names belong to the family: a separate entry would shadow one.
            raise DuplicateNameError(
                f"{self.kind} {name!r} of plugin {origin!r} is in the namespace of the "
                f"family {family!r} of plugin {base.origin!r}, which serves every "
                f"'{family}.<name>'. Choose a name outside '{family}.'."
            )
        self._entries[name] = Entry(name, value, origin)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        for resolved in [n for n in self._variants if n.partition(".")[0] == name]:
            del self._variants[resolved]

    def get(self, name: str) -> T:
        return self.entry(name).value

    def entry(self, name: str) -> Entry[T]:
        found = self._entries.get(name)
        if found is not None and self._resolver(found) is not None:
            raise UnknownNameError(
                f"{self.kind} {name!r} is a family: name one of its members as "
                f"'{name}.<variant>'{self._example(found)}."
            )
        if found is None:
            found = self._variant(name)
        if found is None:
            raise UnknownNameError(self.unknown_message(name))
        return found

    @staticmethod
    def _resolver(entry: Entry[T]) -> Callable[[str], T] | None:
        """A value with a callable `variants` (ArchitectureSpec.variants) is a family."""
        resolve = getattr(entry.value, "variants", None)
        return resolve if callable(resolve) else None

    @staticmethod
    def _example(entry: Entry[T]) -> str:
        examples = getattr(entry.value, "examples", ())
        return f", e.g. '{entry.name}.{examples[0]}'" if examples else ""

    def _variant(self, name: str) -> Entry[T] | None:
        """`family.variant` resolved through the registered `family`, if there is one."""
        if name in self._variants:
            return self._variants[name]
        family, dot, variant = name.partition(".")
        base = self._entries.get(family) if dot else None
        resolve = self._resolver(base) if base is not None else None
        if base is None or resolve is None:
            return None
        try:
            value = resolve(variant)
        except ValueError as exc:
            raise UnknownNameError(f"Unknown {self.kind} {name!r}: {exc}") from None
        self._variants[name] = Entry(name, value, base.origin)
        return self._variants[name]

    def unknown_message(self, name: str) -> str:
        known = sorted(
            f"{n}.<variant>" if self._resolver(e) is not None else n
            for n, e in self._entries.items()
        )
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

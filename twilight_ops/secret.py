"""A masked secret: prints as *** everywhere; the value only through reveal()."""
from __future__ import annotations


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # never pickled/serialised with its value
        raise TypeError("a Secret is not serialisable")


def scrub(text: str, *secrets: "Secret | None") -> str:
    """Replace every secret's value in text with ***."""
    for s in secrets:
        if s is not None and s.reveal():
            text = text.replace(s.reveal(), "***")
    return text

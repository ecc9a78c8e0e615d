"""Versioned prompt templates, kept as files so a prompt change is a reviewed, versioned change."""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class PromptError(ValueError):
    """A template names a field the row does not have, or the template file is malformed."""


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    version: str
    system: str
    user: str

    @classmethod
    def load(cls, directory: Path | str, name: str, version: str) -> PromptTemplate:
        """Read ``<directory>/<name>/<version>.toml`` with ``system`` and ``user`` strings."""
        path = Path(directory) / name / f"{version}.toml"
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if data.get("version", version) != version:
            raise PromptError(f"{path} declares version {data['version']!r}, expected {version!r}")
        if not isinstance(data.get("user"), str):
            raise PromptError(f"{path} has no 'user' template")
        return cls(name=name, version=version, system=data.get("system", ""), user=data["user"])

    @property
    def fields(self) -> tuple[str, ...]:
        """The row fields the templates use, in order of first use."""
        names: list[str] = []
        for text in (self.system, self.user):
            for _, field, _, _ in string.Formatter().parse(text):
                if field and field not in names:
                    names.append(field)
        return tuple(names)

    def render(self, row: Mapping[str, Any]) -> tuple[str, str]:
        """The system and user texts for one row; a null field renders as an empty string."""
        fields = _NullsAsBlank(row)
        try:
            return self.system.format_map(fields), self.user.format_map(fields)
        except KeyError as exc:
            raise PromptError(f"prompt {self.name}/{self.version} needs field {exc.args[0]!r}") from None


class _NullsAsBlank:
    __slots__ = ("row",)

    def __init__(self, row: Mapping[str, Any]) -> None:
        self.row = row

    def __getitem__(self, name: str) -> Any:
        value = self.row[name]
        return "" if value is None else value

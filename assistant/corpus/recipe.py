"""The Recipe record: where a corpus's files are and which loader reads them, validated on construction.

    from assistant.corpus.recipe import Recipe
    Recipe(name="notes", domain="medical", loader="files", sources=("~/notes",)).to_dict()

Reading recipe files and looking recipes up is `assistant.corpus.recipes`; this module holds only the
type, so that loaders can name it without importing the lookup (which imports the loader registry).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import ConfigError

# Names become folder names and id prefixes (`<corpus>:<native id>`), hence no ':' or '/'.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Recipe:
    name: str
    domain: str
    loader: str
    sources: tuple[str, ...]
    license: str = ""
    description: str = ""
    url: str = ""
    options: dict[str, Any] = field(default_factory=dict, hash=False)
    shipped: bool = False  # one of the project's own recipes (corpora/ in the source checkout)
    path: Path | None = field(default=None, compare=False)  # the recipe file, when read from one

    def __post_init__(self) -> None:
        where = str(self.path) if self.path else f"recipe '{self.name}'"
        if not isinstance(self.name, str) or not NAME.match(self.name):
            raise ConfigError(f"{where}: name {self.name!r} must be letters, digits, '_', '-' or '.' (no spaces, ':' or '/')")
        for key in ("domain", "loader"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"{where}: '{key}' must be a non-empty string")
        sources = (self.sources,) if isinstance(self.sources, str | Path) else self.sources
        if not isinstance(sources, list | tuple) or not sources or not all(isinstance(s, str | Path) for s in sources):
            raise ConfigError(f"{where}: 'sources' must be a non-empty list of paths")
        object.__setattr__(self, "sources", tuple(str(s) for s in sources))
        if not isinstance(self.options, dict):
            raise ConfigError(f"{where}: 'options' must be a mapping")
        if not isinstance(self.shipped, bool):
            raise ConfigError(f"{where}: 'shipped' must be true or false")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as written in recipe.yaml (without its own path)."""
        return {
            "name": self.name,
            "domain": self.domain,
            "loader": self.loader,
            "description": self.description,
            "license": self.license,
            "url": self.url,
            "sources": list(self.sources),
            "options": dict(self.options),
            **({"shipped": True} if self.shipped else {}),
        }


__all__ = ["NAME", "Recipe"]

"""What a domain's index lacks of the domain's corpora, said in answers while it is still being built.

    coverage = IndexCoverage("medical", config)
    coverage.note_missing(answer)     # a warning on the answer when the index lacks some of the corpora
"""

from __future__ import annotations

from assistant.config import Config
from assistant.errors import AssistantError
from assistant.types import Answer


class IndexCoverage:
    """The corpora the index `name` holds and those of its domain it lacks, read again only when the index's
    manifest or the corpora folder changed (not once per question)."""

    def __init__(self, name: str, config: Config) -> None:
        self.name, self.config = name, config
        self._seen: tuple[tuple[int, int], tuple[list[str], list[str]]] | None = None

    def note_missing(self, answer: Answer) -> None:
        """While the domain's index is still being built (or a corpus was added since), say what it lacks."""
        found = self.held_and_missing()
        if found is None:
            return
        held, missing = found
        if missing:
            answer.warnings.append(
                f"the '{self.name}' index does not hold {', '.join(missing)} yet (still being built, or run "
                f"`assistant index build {self.name}`): this answer searched {', '.join(held)} only"
            )

    def held_and_missing(self) -> tuple[list[str], list[str]] | None:
        """The corpora the index holds and the domain's corpora it lacks; None when there is no index."""
        from assistant.corpus import corpora_for
        from assistant.index import index_status
        from assistant.index.manifest import manifest_path

        try:
            stamp = (manifest_path(self.name, self.config).stat().st_mtime_ns,
                     self.config.corpora_dir.stat().st_mtime_ns)
        except OSError:
            return None
        if self._seen is None or self._seen[0] != stamp:
            try:
                held = index_status(self.name, self.config).corpora
                missing = [c for c in corpora_for(self.name, self.config) if c not in held]
            except AssistantError:
                return None
            self._seen = (stamp, (held, missing))
        return self._seen[1]


__all__ = ["IndexCoverage"]

"""Errors a user can cause.

Every exception here carries a one-line message that names the input and the fix. The CLI prints it
and exits with code 2; the app shows it as a message. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class AssistantError(Exception):
    """Base class for errors caused by input, configuration or the environment (not by a bug)."""


class NotFoundError(AssistantError):
    """An unknown name: corpus, domain, index, strategy, model or adapter."""


class InputError(AssistantError):
    """Input that cannot be used: a missing path, a corrupt or empty file, an empty question."""


class ConfigError(AssistantError):
    """A configuration value that is out of range or inconsistent."""


class ModelUnavailableError(AssistantError):
    """A model that cannot be loaded offline (not cached, not a folder, not a GGUF file)."""


def unknown(kind: str, name: str, known: list[str] | tuple[str, ...]) -> NotFoundError:
    """A NotFoundError that lists the names that do exist."""
    choices = ", ".join(sorted(known)) if known else "none yet"
    return NotFoundError(f"unknown {kind} '{name}' (known: {choices})")

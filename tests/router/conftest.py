"""The router's service tests reuse the evaluation playground (toy domain, index, tiny model, adapters)."""

from tests.evaluation.conftest import eval_config, eval_model_dir, with_adapters, yes_no_adapters

__all__ = ["eval_config", "eval_model_dir", "with_adapters", "yes_no_adapters"]

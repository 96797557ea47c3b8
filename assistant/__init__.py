"""assistant: answers "RAG or finetune?" for medical and financial documents, with measurements.

The Python API (filled in as the modules land):

    from assistant import Assistant
    a = Assistant.load("medical")
    ans = a.ask("Do statins reduce mortality?")
    print(ans.text, [s.locator for s in ans.sources])
"""

from __future__ import annotations

import logging

from assistant.config import Config, load_config
from assistant.errors import AssistantError, InputError, ModelUnavailableError, NotFoundError
from assistant.types import Answer, Document, QAItem, Source

# bitsandbytes logs a warning about an optional CPU kernel package on every import; it is noise here.
logging.getLogger("bitsandbytes").setLevel(logging.ERROR)

__all__ = [
    "Answer",
    "AssistantError",
    "Config",
    "Document",
    "InputError",
    "ModelUnavailableError",
    "NotFoundError",
    "QAItem",
    "Source",
    "load_config",
]
__version__ = "0.1.0"

"""Public test helpers. Fake models answer from a script or a function; no test needs a real
provider, and with `DEPUTY_BLOCK_REMOTE_MODELS=1` the model registry refuses to build one
(anything but `local:` models and servers on loopback)."""

from deputy.testing.embeddings import HashingEmbedder
from deputy.testing.models import (
    FAKE_CAPABILITIES,
    CollectingUsageSink,
    FunctionModel,
    ScriptedModel,
    reply,
    structured,
    tool_call,
)

__all__ = [
    "FAKE_CAPABILITIES",
    "CollectingUsageSink",
    "FunctionModel",
    "HashingEmbedder",
    "ScriptedModel",
    "reply",
    "structured",
    "tool_call",
]

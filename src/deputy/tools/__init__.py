"""Tools: the agent's action space. `ToolExecutor` is the one way a tool is called: checks
(spec, policies, schema, limits, confirmation), idempotency, the call ledger and untrusted
output; the source clients (`openapi`, `mcp`, `webhook`) speak to the client's systems."""

from deputy.tools.builtins import (
    BuiltinHandlers,
    EndConversationSignal,
    HandoffSignal,
    KnowledgePassage,
    Signal,
)
from deputy.tools.confirmation import Confirmation, arguments_sha256, idempotency_key
from deputy.tools.executor import ToolExecutor
from deputy.tools.ledger import CallLedger, CallRecord, CallStatus, ResultCode
from deputy.tools.results import CallContext, ToolCallResult
from deputy.tools.sending import Backoff

__all__ = [
    "Backoff",
    "BuiltinHandlers",
    "CallContext",
    "CallLedger",
    "CallRecord",
    "CallStatus",
    "Confirmation",
    "EndConversationSignal",
    "HandoffSignal",
    "KnowledgePassage",
    "ResultCode",
    "Signal",
    "ToolCallResult",
    "ToolExecutor",
    "arguments_sha256",
    "idempotency_key",
]

"""The improvement loop as a library: evaluate production conversations, cluster the failures,
propose spec changes, turn failing conversations into regression scenarios, and validate
candidates against the live version before they are filed for review (see `loop`). Pure
library code: the platform supplies conversations and implements the validator and the
proposal sink (`deputy.services.improvement_ports`)."""

from deputy.improve.cluster import cluster_failures, period_regressions
from deputy.improve.conversations import ProductionConversation, transcript_from_entries
from deputy.improve.evaluate import ConversationJudge, evaluate_all
from deputy.improve.loop import LoopInput, ProposalSink, Validation, Validator, improve
from deputy.improve.propose import change_request
from deputy.improve.regression import regression_scenarios
from deputy.improve.signals import conversation_signals

__all__ = [
    "ConversationJudge",
    "LoopInput",
    "ProductionConversation",
    "ProposalSink",
    "Validation",
    "Validator",
    "change_request",
    "cluster_failures",
    "conversation_signals",
    "evaluate_all",
    "improve",
    "period_regressions",
    "regression_scenarios",
    "transcript_from_entries",
]

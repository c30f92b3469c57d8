"""Guided mode's answer when no procedure applies: the best knowledge passages, nearly verbatim,
with their citations; when nothing is found, a fixed reply saying what the agent can help with
(the procedures' titles). No model writes any of it."""

from __future__ import annotations

from deputy.runtime.context import TurnContext
from deputy.runtime.draft import Draft
from deputy.runtime.ports import Passage

KNOWLEDGE_KEY = "guided/knowledge"
PASSAGE_CHARS = 700
REPLY_CHARS = 1200
FOUND = "Here is what I found: "
NOTHING = "I'm sorry, I could not find anything about that."


def _shortened(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


def _chosen(passages: list[Passage]) -> list[Passage]:
    """The best passage, and the next ones while the reply stays short."""
    chosen: list[Passage] = []
    length = 0
    for passage in passages:
        size = min(len(passage.text), PASSAGE_CHARS)
        if chosen and length + size > REPLY_CHARS:
            break
        chosen.append(passage)
        length += size
    return chosen


def capabilities(ctx: TurnContext) -> str:
    """The fixed reply listing what the agent can help with."""
    titles = [p.title.strip() for p in ctx.spec.procedures if p.title.strip()]
    if not titles:
        return NOTHING
    return "I can help you with: " + "; ".join(titles) + ". What would you like to do?"


async def knowledge_reply(ctx: TurnContext, *, failed: bool = False) -> Draft:
    """Answer the customer's message from the agent's knowledge."""
    passages = await ctx.retrieve(KNOWLEDGE_KEY, ctx.customer_text)
    details = {"procedure": None, "step": None}
    chosen = _chosen([p for p in passages if p.text.strip()])
    if not chosen:
        text = capabilities(ctx)
        ctx.evidence.templates.append(text)
        return Draft(text=text, failed=failed, details=details)
    body = "\n\n".join(_shortened(p.text, PASSAGE_CHARS) for p in chosen)
    return Draft(
        text=FOUND + body,
        citations=tuple(dict(p.citation) for p in chosen),
        failed=failed,
        details=details,
    )

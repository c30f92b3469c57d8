"""Transcript mining: what real conversations add to the documents.

    mining = await mine_transcripts(transcripts, procedures, tools, asker=asker)
    mining.intents      # what customers come for, matched to drafted procedures or new
    mining.edge_cases   # refusals, escalations, limits, identity checks, exceptions (anchored)
    mining.flows        # outlines learned from the conversations of intents no procedure covers
    mining.coverage     # which conversation fed what, and which were ignored and why

Conversations are grouped by their opening request (`mine_intents`), edge cases are found in
the agent's turns (`mine_edges`), and for each intent without a procedure the typical sequence
of agent actions becomes an outline (`mine_flows`) that the extractor drafts like any other
section. Rules do the work; a model, when there is one, titles intents, confirms procedure
matches and confirms edge cases (at most `max_model_questions` of the latter)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from deputy.builder.asker import Asker
from deputy.builder.mine_edges import EdgeCase, EdgeJudge, EdgeKind, find_edge_cases
from deputy.builder.mine_flows import learn_flow
from deputy.builder.mine_intents import Opening, TitledGroup, group_openings, opening
from deputy.builder.mine_text import TfIdf, content_words, cosine
from deputy.builder.report import CoverageItem
from deputy.builder.sources import Anchor, OutlineSection, ToolDescription, Transcript, Turn
from deputy.domain.spec import Procedure

if TYPE_CHECKING:  # the pipeline imports this module
    from deputy.builder.pipeline import Progress

__all__ = ["EdgeCase", "EdgeKind", "IntentCluster", "Mining", "mine_transcripts"]

MIN_TURNS = 3
LARGE_CORPUS = 20
"""From this many usable conversations on, an opening request no other conversation shares is
left out as noise; below it every conversation may be an intent of its own."""
TOOL_MATCH = 0.3


@dataclass(frozen=True, slots=True)
class IntentCluster:
    """Conversations that open with the same request: their ids, their opening turns, the
    procedure that handles them (None: an intent the documents do not cover) and the words
    that characterise them."""

    title: str
    transcripts: tuple[str, ...]
    openings: tuple[Anchor, ...]
    procedure: str | None
    terms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Mining:
    intents: tuple[IntentCluster, ...]
    edge_cases: tuple[EdgeCase, ...]
    flows: tuple[OutlineSection, ...]
    coverage: tuple[CoverageItem, ...]


def _unusable(transcript: Transcript) -> str | None:
    speakers = {turn.speaker for turn in transcript.turns}
    if not transcript.turns:
        return "empty conversation"
    if "customer" not in speakers:
        return "no customer turns"
    if not speakers & {"agent", "action"}:
        return "the agent never answered"
    if len(transcript.turns) < MIN_TURNS:
        return f"too short ({len(transcript.turns)} turns)"
    return None


def _ignored(transcript: Transcript, reason: str, quote: str = "") -> CoverageItem:
    return CoverageItem(
        material=transcript.material.id,
        span=f"conversation {transcript.id}",
        quote=(quote or " ".join(t.text for t in transcript.turns[:2]))[:400],
        status="ignored",
        reason=reason,
    )


def _with_tool_names(
    transcripts: Sequence[Transcript], tools: Sequence[ToolDescription]
) -> list[Transcript]:
    """Action turns named after the tool they used: a name equal to a tool's (ignoring case and
    punctuation) takes the tool's spelling, an unnamed action takes the tool whose name and
    description share most words with the turn (cosine at least `TOOL_MATCH`)."""
    if not tools:
        return list(transcripts)
    slugs = {_slug(tool.name): tool.name for tool in tools}
    documents = [content_words(f"{t.name.replace('_', ' ')} {t.description}") for t in tools]
    tfidf = TfIdf(documents)
    vectors = tfidf.matrix(documents)

    def named(turn: Turn) -> Turn:
        if turn.speaker != "action":
            return turn
        if turn.action:
            known = slugs.get(_slug(turn.action))
            return replace(turn, action=known) if known else turn
        vector = tfidf.vector(content_words(turn.text))
        scores = [cosine(vector, row) for row in vectors]
        best = max(range(len(tools)), key=lambda i: (scores[i], -i))
        return replace(turn, action=tools[best].name) if scores[best] >= TOOL_MATCH else turn

    return [replace(t, turns=tuple(named(turn) for turn in t.turns)) for t in transcripts]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _coverage(
    group: TitledGroup, item: Opening, cases: Sequence[EdgeCase], kept: bool
) -> CoverageItem:
    transcript = item.transcript
    if not kept:
        return _ignored(
            transcript,
            "its opening request matches no other conversation (an intent seen once)"
            + (f"; its edge cases were kept ({len(cases)})" if cases else ""),
            item.turn.text,
        )
    procedure = group.group.procedure
    rules = [f"procedures[{procedure}]" if procedure else f"intents[{group.title}]"]
    rules.extend(f"edge_cases[{case.kind}]: {case.anchor.label}" for case in cases)
    return CoverageItem(
        material=transcript.material.id,
        span=f"conversation {transcript.id}",
        quote=item.turn.text[:400],
        status="mapped",
        rules=tuple(rules),
    )


async def mine_transcripts(
    transcripts: Sequence[Transcript],
    procedures: Sequence[Procedure],
    tools: Sequence[ToolDescription],
    *,
    asker: Asker,
    progress: Progress | None = None,
    max_model_questions: int = 60,
) -> Mining:
    """Intents, edge cases and learned flows from real conversations (see the module)."""
    coverage: list[CoverageItem] = []
    openings: list[Opening] = []
    for transcript in _with_tool_names(transcripts, tools):
        reason = _unusable(transcript)
        found = None if reason else opening(transcript)
        if found is None:
            coverage.append(_ignored(transcript, reason or "no customer request, only greetings"))
        else:
            openings.append(found)
    groups = await group_openings(openings, procedures, asker=asker)
    min_size = 2 if len(openings) >= LARGE_CORPUS else 1
    judge = EdgeJudge(asker, max_model_questions)
    intents: list[IntentCluster] = []
    edge_cases: list[EdgeCase] = []
    flows: list[OutlineSection] = []
    done = 0
    for group in groups:
        members = group.group.openings
        kept = len(members) >= min_size
        procedure = group.group.procedure if kept else None
        for item in members:
            cases = await find_edge_cases(item.transcript, procedure, judge)
            edge_cases.extend(cases)
            coverage.append(_coverage(group, item, cases, kept))
            done += 1
            if progress is not None:
                progress("transcripts", done, len(openings))
        if not kept:
            continue
        openings_anchors = tuple(o.transcript.anchor(o.turn.index) for o in members)
        intents.append(
            IntentCluster(
                title=group.title,
                transcripts=tuple(o.transcript.id for o in members),
                openings=openings_anchors,
                procedure=procedure,
                terms=group.group.terms,
            )
        )
        if procedure is None:
            flow = learn_flow(group.title, [o.transcript for o in members], openings_anchors[0])
            if flow is not None:
                flows.append(flow)
    return Mining(tuple(intents), tuple(edge_cases), tuple(flows), tuple(coverage))

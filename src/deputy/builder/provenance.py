"""Provenance integrity: every rule of a draft must point to a real span of what it came from.

A provenance with character offsets must quote exactly `text[start:end]` of the material's
parsed document (whitespace squashed on both sides); one without offsets (a guideline action, a
transcript's turns, a tool description) must quote text that occurs in the material. Goal and
constraint provenance must quote the client's own words."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from deputy.builder.sources import ReadResult
from deputy.domain.spec import AgentSpec, Provenance
from deputy.knowledge.document import squash


def spec_provenance(spec: AgentSpec) -> Iterator[tuple[str, Provenance | None]]:
    """(path, provenance) of every procedure, step, policy, escalation rule and route."""
    for procedure in spec.procedures:
        yield f"procedures[{procedure.id}]", procedure.provenance
        for step in procedure.steps:
            yield f"procedures[{procedure.id}].steps[{step.id}]", step.provenance
    for policy in spec.policies:
        yield f"policies[{policy.id}]", policy.provenance
    for rule in spec.escalation.rules:
        yield f"escalation.rules[{rule.id}]", rule.provenance
    for route in spec.routes:
        yield f"routes[{route.id}]", route.provenance


class _Texts:
    """The texts each material yielded, squashed, for quote lookups."""

    def __init__(self, reads: Sequence[ReadResult]) -> None:
        self.documents: dict[str, str] = {}
        self.corpus: dict[str, str] = {}
        for read in reads:
            parts: list[str] = []
            for source in read.documents:
                self.documents[read.material.id] = source.document.text
                parts.append(source.document.text)
            for section in read.outlines:
                parts.extend([section.title, section.intro, section.anchor.quote])
                for item in section.items:
                    parts.extend([item.text, item.anchor.quote, *item.details])
            for transcript in read.transcripts:
                parts.extend(turn.text for turn in transcript.turns)
                parts.extend(f"{turn.speaker}: {turn.text}" for turn in transcript.turns)
            for tool in read.tools:
                parts.extend([tool.name, tool.description, tool.anchor.quote])
            self.corpus[read.material.id] = squash("\n".join(parts))


def _quote_problem(
    path: str, provenance: Provenance, texts: _Texts, client_words: str
) -> str | None:
    quote = squash(provenance.quote or "")
    if provenance.kind == "manual":
        return None  # written in the builder conversation; the change record keeps the request
    if provenance.kind in ("goal", "constraint"):
        if quote and quote not in client_words:
            return f"{path}: the quoted {provenance.kind} is not the client's wording"
        return None
    if provenance.source not in texts.corpus:
        return f"{path}: provenance names {provenance.source!r}, which is not a material read"
    if provenance.start is not None and provenance.end is not None:
        document = texts.documents.get(provenance.source)
        if document is None:
            return f"{path}: offsets into {provenance.source!r}, which has no document text"
        if provenance.end > len(document):
            return f"{path}: offsets {provenance.start}-{provenance.end} run past the document"
        if quote and squash(document[provenance.start : provenance.end]) != quote:
            return f"{path}: the quote differs from the text at {provenance.span}"
        return None
    if not quote:
        return f"{path}: provenance without offsets must quote its source"
    # quotes joined from several turns use " / " between them
    for piece in quote.split(" / "):
        if piece and piece not in texts.corpus[provenance.source]:
            return f"{path}: {piece[:60]!r} is not in {provenance.source!r}"
    return None


def provenance_problems(
    spec: AgentSpec, reads: Sequence[ReadResult], *, goal: str, constraints: Sequence[str]
) -> list[str]:
    """Every way the draft's provenance fails to point at real material; rules without any
    provenance are problems too (except escalation rules and routes, which may be manual)."""
    texts = _Texts(reads)
    client_words = squash("\n".join([goal, *constraints]))
    problems: list[str] = []
    for path, provenance in spec_provenance(spec):
        if provenance is None:
            if path.startswith(("procedures", "policies")):
                problems.append(f"{path}: no provenance")
            continue
        problem = _quote_problem(path, provenance, texts, client_words)
        if problem is not None:
            problems.append(problem)
    return problems

"""What the builder reads: uploaded materials turned into documents, outlines, transcripts and
tool descriptions, each piece anchored to where it came from.

    result = read_material(MaterialRef("mat_1", "policy.md", "text/markdown"), data)
    result.documents / result.outlines / result.transcripts / result.tools / result.problems

Every rule the builder drafts carries the `Anchor` of the text it came from, turned into the
spec's `Provenance`; `deputy.builder.provenance` checks that each one still points to a real span.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from deputy.domain.spec import EffectTier, Provenance
from deputy.domain.spec.tools import ToolBinding
from deputy.knowledge.document import ParsedDocument

MaterialKind = Literal["document", "guidelines", "transcripts", "tools", "recording"]
AnchorKind = Literal["document", "transcript", "tool_description", "goal", "constraint"]
ProblemCode = Literal[
    "empty",
    "unsupported",
    "damaged",
    "encrypted",
    "too_large",
    "unrecognised_json",
    "invalid_content",
    "speech_to_text_unavailable",
]


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """An uploaded material: its id (`mat_...`), file name and sniffed media type."""

    id: str
    name: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where a piece of the material is.

    - documents: `start`/`end` are character offsets into the `ParsedDocument.text` of the
      material, `label` its locator ("lines 12-18", "page 3"), `quote` that text (squashed);
    - structured files (guidelines, flowcharts, tool files): `label` is a path inside the file
      ("Product Defect › Initiate Refund › action 2"), `quote` the text at that path;
    - transcripts: `label` names the conversation and turns ("dialogue 17, turns 3-5"),
      `turns` are the 1-based turn indices, `conversation` the transcript's id;
    - goal and constraints: `material` is None, `quote` is the client's own wording.
    """

    kind: AnchorKind
    label: str
    quote: str
    material: MaterialRef | None = None
    start: int | None = None
    end: int | None = None
    conversation: str | None = None
    turns: tuple[int, ...] = ()

    def provenance(self) -> Provenance:
        source = self.material.id if self.material is not None else self.kind
        return Provenance(
            source=source,
            kind=self.kind,
            span=self.label[:200] or None,
            start=self.start,
            end=self.end,
            quote=self.quote[:2000] or None,
        )


ItemHint = Literal["step", "rule", "reply", "question", "note", "action"]


@dataclass(frozen=True, slots=True)
class OutlineItem:
    """One instruction of a section: a numbered step, a sentence, a table row, a guideline
    action. `action` is an explicit action name when the structure gives one (an ABCD button,
    a STAR API query or reply label); `details` are its sub-items. `branches` maps a condition
    label ("query_failure", "no") to the `key` of the item that follows in that case; in a
    flowchart, `("next", key)` is the unconditional successor and an item without branches ends
    the flow. Items without branches in other outlines follow their list order."""

    key: str
    text: str
    anchor: Anchor
    hint: ItemHint | None = None
    action: str | None = None
    details: tuple[str, ...] = ()
    branches: tuple[tuple[str, str], ...] = ()


SectionOrigin = Literal["document", "guidelines", "flowchart", "transcripts"]


@dataclass(frozen=True, slots=True)
class OutlineSection:
    """A titled unit of material that may become a procedure (or hold policies): a document
    section under a heading, an ABCD subflow, a STAR task flowchart, or a flow learned from
    transcripts. `path` holds the titles of the enclosing sections, outermost first."""

    title: str
    anchor: Anchor
    items: tuple[OutlineItem, ...]
    origin: SectionOrigin
    path: tuple[str, ...] = ()
    intro: str = ""
    level: int = 1


Speaker = Literal["customer", "agent", "action", "system"]


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of a conversation. `action` turns are what the agent did in its tools (an ABCD
    action, a STAR query); `action` names it and `arguments` hold its inputs. An agent turn
    may carry the `action` label of a canned reply it picked (STAR)."""

    index: int
    speaker: Speaker
    text: str
    action: str | None = None
    arguments: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Transcript:
    """One real conversation. `id` is unique within its material ("17", "row 4", the file
    name for a single conversation). `metadata` holds what the file says about it that is not
    a turn (completion level, timestamps); readers do not put labelled answers here (an ABCD
    conversation's flow/subflow, a STAR task name)."""

    material: MaterialRef
    id: str
    turns: tuple[Turn, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)

    def anchor(self, first: int, last: int | None = None) -> Anchor:
        """The anchor of turns `first`..`last` (1-based, inclusive)."""
        last = first if last is None else last
        chosen = [t for t in self.turns if first <= t.index <= last]
        quote = " / ".join(f"{t.speaker}: {t.text}" for t in chosen)
        label = f"conversation {self.id}, " + (
            f"turn {first}" if first == last else f"turns {first}-{last}"
        )
        return Anchor(
            kind="transcript",
            label=label,
            quote=quote[:2000],
            material=self.material,
            conversation=self.id,
            turns=tuple(t.index for t in chosen),
        )


@dataclass(frozen=True, slots=True)
class ToolDescription:
    """A tool the agent could use, from a tool file (tau2-style JSON, OpenAPI 3) or a tool
    source registered in the workspace (OpenAPI or MCP). `effect` is inferred and `effect_reason`
    says how, for the reviewer; `binding` is None when the description names no place to call it
    (a tool file): the spec then gets a placeholder binding and the report asks for one."""

    name: str
    description: str
    effect: EffectTier
    effect_reason: str
    parameters: Mapping[str, Any]
    anchor: Anchor
    returns: str = ""
    binding: ToolBinding | None = None

    @property
    def required(self) -> tuple[str, ...]:
        required = self.parameters.get("required", ())
        return tuple(str(name) for name in required) if isinstance(required, list) else ()

    @property
    def parameter_names(self) -> tuple[str, ...]:
        properties = self.parameters.get("properties", {})
        return tuple(properties) if isinstance(properties, Mapping) else ()


@dataclass(frozen=True, slots=True)
class SourceDocument:
    """Prose material (an SOP, a policy) with its parsed text and layout."""

    material: MaterialRef
    document: ParsedDocument


@dataclass(frozen=True, slots=True)
class MaterialProblem:
    """Why a file (or part of one) could not be used; the rest of the build goes on."""

    material: MaterialRef
    code: ProblemCode
    message: str


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What one material yielded. `kind` is what it was recognised as (None: nothing usable)."""

    material: MaterialRef
    kind: MaterialKind | None
    documents: tuple[SourceDocument, ...] = ()
    outlines: tuple[OutlineSection, ...] = ()
    transcripts: tuple[Transcript, ...] = ()
    tools: tuple[ToolDescription, ...] = ()
    problems: tuple[MaterialProblem, ...] = ()


class Transcriber(Protocol):
    """Speech to text for recordings (WAV, MP3): the voice channel provides one. Returns the
    conversation's turns; speakers it cannot tell apart come back as `system`."""

    def transcribe(self, data: bytes, media_type: str) -> tuple[Turn, ...]: ...

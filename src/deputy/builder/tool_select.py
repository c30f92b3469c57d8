"""Which described tools the agent gets. Tool files often describe several businesses at once
(tau2's `tools-data.json` holds airline, retail, telecom and mock tools), grouped by domain
(`deputy.builder.read_tools.tool_domains`). Two passes:

1. before extraction, a domain is kept when the words of its tool names occur in the goal and
   documents about as well as the best domain's do (`KEEP_RATIO`);
2. after extraction, a kept domain none of whose tools any procedure calls is dropped, as long as
   another domain's tools are called: the procedures are the evidence of what the business does.

Dropped domains are reported as ignored coverage with the reason. A tool of a registered tool
source (bound) replaces a described tool of the same name (unbound) and is always kept."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from deputy.builder.read_tools import tool_domains
from deputy.builder.report import CoverageItem
from deputy.builder.sources import ToolDescription
from deputy.knowledge.text import tokenize

KEEP_RATIO = 0.5
"""A domain is kept when its name score is at least this share of the best domain's."""

_GENERIC = frozenset(
    [
        "get", "set", "list", "all", "search", "find", "create", "update", "delete", "check",
        "send", "details", "info", "information", "user", "users", "by", "to", "for", "the", "id",
    ]
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class DomainGroup:
    material: str | None
    domain: str
    tools: tuple[ToolDescription, ...]


@dataclass(frozen=True, slots=True)
class ToolSelection:
    groups: tuple[DomainGroup, ...]
    registered: tuple[ToolDescription, ...]
    coverage: tuple[CoverageItem, ...]

    @property
    def tools(self) -> tuple[ToolDescription, ...]:
        """One tool per name; a registered tool wins over a described one."""
        by_name: dict[str, ToolDescription] = {}
        for group in self.groups:
            for tool in group.tools:
                by_name.setdefault(tool.name, tool)
        for tool in self.registered:
            by_name[tool.name] = tool
        return tuple(by_name.values())


def _name_score(tools: Sequence[ToolDescription], context: Counter[str]) -> float:
    """The mean share of each tool's distinctive name words that the context uses."""
    shares: list[float] = []
    for tool in tools:
        words = [w for w in tokenize(tool.name.replace("_", " ")) if w not in _GENERIC]
        if not words:
            continue
        found = sum(
            1 for w in words if context[w] or context[f"{w}s"] or context[w.removesuffix("s")]
        )
        shares.append(found / len(words))
    return sum(shares) / len(shares) if shares else 0.0


def _ignored(group: DomainGroup, reason: str) -> CoverageItem:
    return CoverageItem(
        material=group.material,
        span=group.domain or "tools",
        quote=", ".join(t.name for t in group.tools[:8])[:400],
        status="ignored",
        reason=reason,
    )


def select_tools(
    described: Sequence[ToolDescription],
    registered: Sequence[ToolDescription],
    *,
    context: str,
) -> ToolSelection:
    """Pass 1: the registered tools, plus the described domains the context talks about."""
    by_material: dict[str | None, list[ToolDescription]] = {}
    for tool in described:
        material = tool.anchor.material.id if tool.anchor.material is not None else None
        by_material.setdefault(material, []).append(tool)
    vocabulary = Counter(tokenize(context))
    kept: list[DomainGroup] = []
    coverage: list[CoverageItem] = []
    for material, members in by_material.items():
        groups = [DomainGroup(material, d, t) for d, t in tool_domains(members).items()]
        scores = [_name_score(group.tools, vocabulary) for group in groups]
        best = max(scores)
        for group, score in zip(groups, scores, strict=True):
            if len(groups) == 1 or (best > 0 and score >= KEEP_RATIO * best):
                kept.append(group)
            else:
                coverage.append(
                    _ignored(
                        group,
                        f"the tool names of {group.domain!r} are not what the goal and "
                        f"documents talk about (score {score:.2f}, best domain {best:.2f})",
                    )
                )
    return ToolSelection(tuple(kept), tuple(registered), tuple(coverage))


def prune_unused(selection: ToolSelection, used: Collection[str]) -> ToolSelection:
    """Pass 2: drop the described domains no procedure calls, when some domain is called."""
    called = [g for g in selection.groups if any(t.name in used for t in g.tools)]
    if not called:
        return selection
    dropped = [g for g in selection.groups if g not in called]
    return ToolSelection(
        groups=tuple(called),
        registered=selection.registered,
        coverage=(
            *selection.coverage,
            *(
                _ignored(g, f"no procedure calls a tool of {g.domain!r}; other domains' are")
                for g in dropped
            ),
        ),
    )

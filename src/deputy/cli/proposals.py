"""`deputy proposals`: list and read proposed agent changes (the diff, what widens the agent's
permissions, the sandbox evidence and gate) and review them; `deputy audit`: read the audit
log and check its hash chain."""

from __future__ import annotations

import json
from typing import Annotated, cast, get_args

import typer

from deputy.cli import listing
from deputy.cli.output import (
    EXIT_ERROR,
    AsJson,
    Column,
    out,
    print_json,
    print_page,
    when,
)
from deputy.cli.state import agent_id_of, client
from deputy.domain.lifecycle import (
    AuditAction,
    AuditEntry,
    Proposal,
    ProposalStatus,
    ReviewKind,
)

proposals_app = typer.Typer(
    help="Proposed agent changes: review, approve, reject.", no_args_is_help=True
)
audit_app = typer.Typer(help="The workspace's tamper-evident audit log.", no_args_is_help=True)

ProposalId = Annotated[str, typer.Argument(metavar="PROPOSAL_ID", help="The proposal (prp_…).")]
Message = Annotated[str, typer.Option("--message", "-m", help="What the reviewer says.")]
PROPOSAL_COLUMNS: list[Column[Proposal]] = [
    ("ID", lambda p: p.id),
    ("STATUS", lambda p: p.status),
    (
        "AGENT",
        lambda p: (
            f"{p.agent_id} v{p.version}" + (f" (on v{p.base_version})" if p.base_version else "")
        ),
    ),
    ("TITLE", lambda p: p.title),
    ("GATE", lambda p: p.gate),
    ("WIDENS", lambda p: "yes" if p.widens_permissions else "-"),
    ("CREATED", lambda p: when(p.created_at)),
]
AUDIT_COLUMNS: list[Column[AuditEntry]] = [
    ("SEQ", lambda e: str(e.seq)),
    ("AT", lambda e: when(e.at)),
    ("ACTOR", lambda e: e.actor),
    ("ACTION", lambda e: e.action),
    ("SUBJECT", lambda e: f"{e.subject_type} {e.subject_id}"),
    ("DATA", lambda e: json.dumps(e.data, ensure_ascii=False, sort_keys=True)),
]


def _usd(value: float | None) -> str:
    return "unknown" if value is None else f"${value:.4f}"


def _evidence(proposal: Proposal) -> list[str]:
    found = proposal.evidence
    lines = ["evidence:"]
    card = found.scorecard
    if card is None:
        lines.append("  no sandbox run of the candidate")
    else:
        estimate = card.pass_hat.get(1)
        rate = (
            "-"
            if estimate is None
            else (f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]")
        )
        lines.append(
            f"  sandbox run {found.sandbox_run_id}: pass^1 {rate} over {card.conversations} "
            f"conversations ({card.errors} errors)"
        )
    ab = found.comparison
    if ab is None:
        lines.append("  no A/B against the base version")
    else:
        lines.append(
            f"  A/B against run {found.baseline_run_id} (version {proposal.base_version}): "
            f"{ab.verdict.replace('_', ' ')}, p = {ab.p_value:.4f}; pass^1 "
            f"{ab.baseline_pass_1:.3f} -> {ab.candidate_pass_1:.3f} over {ab.scenarios} scenarios"
        )
        lines.append(f"    regressions: {', '.join(ab.regressions) or 'none'}")
        lines.append(f"    improvements: {', '.join(ab.improvements) or 'none'}")
    lines.append(
        f"  cost per conversation: {_usd(found.cost.baseline_usd)} before, "
        f"{_usd(found.cost.candidate_usd)} after"
    )
    lines.append(f"  conversations: {', '.join(found.conversation_ids) or 'none'}")
    if found.regression_scenario_ids:
        lines.append(f"  regression scenarios: {', '.join(found.regression_scenario_ids)}")
    return lines


def _indented(text: str) -> list[str]:
    return [f"  {line}" if line else "" for line in text.rstrip("\n").splitlines()]


def render_proposal(proposal: Proposal) -> str:
    """A proposal as a reviewer reads it: title and status, the gate and why, what widens the
    agent's permissions (first), the rationale, the diff, then the evidence."""
    p = proposal
    base = f"changes version {p.base_version}" if p.base_version else "first version"
    lines = [
        f"Proposal {p.id}: {p.title}",
        f"agent {p.agent_id}: version {p.version} ({base})",
        f"status: {p.status} (origin {p.origin}, filed by {p.created_by} {when(p.created_at)})",
    ]
    if p.decided_by:
        lines.append(f"decided by {p.decided_by} {when(p.decided_at)}")
    lines.append(f"gate: {p.gate}: {p.gate_reason}")
    if p.widening_reasons:
        lines += ["", "! Widens permissions: a person must approve it, whatever the autonomy:"]
        lines += [f"  ! {reason}" for reason in p.widening_reasons]
    if p.rationale:
        lines += ["", "rationale:", *_indented(p.rationale)]
    lines += ["", "changes:", *_indented(p.diff_text)]
    lines += ["", *_evidence(p)]
    return "\n".join(lines) + "\n"


def _choice(value: str | None, allowed: tuple[str, ...], option: str) -> str | None:
    if value is not None and value not in allowed:
        raise typer.BadParameter(f"{value!r}: use one of {', '.join(allowed)}", param_hint=option)
    return value


@proposals_app.command("list")
def list_proposals(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="One agent's (name or id).")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help=f"Only in this status: {', '.join(get_args(ProposalStatus))}."
        ),
    ] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the workspace's proposals, newest first."""
    wanted = cast(ProposalStatus | None, _choice(status, get_args(ProposalStatus), "--status"))
    sdk = client(ctx)
    agent_id = agent_id_of(sdk, agent) if agent is not None else None
    page = listing.fetch(
        lambda n, c: sdk.proposals.list(agent_id, wanted, limit=n, cursor=c),
        limit,
        cursor,
        all_pages,
    )
    print_page(page, PROPOSAL_COLUMNS, as_json=as_json, noun="proposals")


@proposals_app.command("show")
def show_proposal(ctx: typer.Context, proposal_id: ProposalId, as_json: AsJson = False) -> None:
    """Show a proposal: gate, what widens permissions (in red), the diff and the evidence."""
    proposal = client(ctx).proposals.get(proposal_id)
    if as_json:
        print_json(proposal)
        return
    console = out()
    for line in render_proposal(proposal).splitlines():
        widening = line.lstrip().startswith("!") or "[widens:" in line
        console.print(line, markup=False, style="red" if widening else None)


def _review(ctx: typer.Context, proposal_id: str, kind: ReviewKind, message: str) -> None:
    sdk = client(ctx)
    written = sdk.proposals.review(proposal_id, kind, message)
    status = sdk.proposals.get(proposal_id).status
    done = {
        "comment": "Commented on",
        "request_changes": "Requested changes to",
        "approve": "Approved",
        "reject": "Rejected",
    }[kind]
    out().print(f"{done} {proposal_id} ({written.id}); it is {status}.", markup=False)


@proposals_app.command("approve")
def approve(ctx: typer.Context, proposal_id: ProposalId, message: Message = "") -> None:
    """Approve a proposal (a member's key only)."""
    _review(ctx, proposal_id, "approve", message)


@proposals_app.command("reject")
def reject(ctx: typer.Context, proposal_id: ProposalId, message: Message = "") -> None:
    """Reject a proposal (a member's key only)."""
    _review(ctx, proposal_id, "reject", message)


@proposals_app.command("request-changes")
def request_changes(ctx: typer.Context, proposal_id: ProposalId, message: Message = "") -> None:
    """Send a proposal back for changes (a member's key only)."""
    _review(ctx, proposal_id, "request_changes", message)


@proposals_app.command("comment")
def comment(ctx: typer.Context, proposal_id: ProposalId, message: Message = "") -> None:
    """Comment on a proposal without deciding it (a member's key only)."""
    _review(ctx, proposal_id, "comment", message)


@audit_app.command("list")
def list_entries(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Only entries about this id.")
    ] = None,
    limit: listing.Limit = 50,
    cursor: listing.Cursor = None,
    all_pages: listing.AllPages = False,
    as_json: AsJson = False,
) -> None:
    """List the audit log, newest first."""
    wanted = cast(AuditAction | None, _choice(action, get_args(AuditAction), "--action"))
    sdk = client(ctx)
    page = listing.fetch(
        lambda n, c: sdk.audit.list(wanted, subject, limit=n, cursor=c), limit, cursor, all_pages
    )
    print_page(page, AUDIT_COLUMNS, as_json=as_json, noun="audit entries")


@audit_app.command("verify")
def verify(ctx: typer.Context, as_json: AsJson = False) -> None:
    """Check the audit log's hash chain from its first entry. Exit 0 when it is intact; 1 with
    the first entry that does not check (changed, missing, reordered or relinked)."""
    result = client(ctx).audit.verify()
    if as_json:
        print_json(result)
    elif result.ok:
        out().print(f"ok: {result.entries} entries, head {result.head_hash or '-'}", markup=False)
    else:
        out().print(
            f"not ok: entry {result.first_bad_seq}: {result.problem}", markup=False, style="red"
        )
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)

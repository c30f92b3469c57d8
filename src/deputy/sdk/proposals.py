"""Proposals and the audit log, for `DeputyClient` (`client.proposals`, `client.audit`) and
`AsyncDeputyClient` (the same, awaited).

proposal = client.proposals.create(agent.id, 2, "Offer exchanges",
                                   sandbox_run_id=run.id, baseline_run_id=live_run.id)
print(proposal.gate, proposal.widening_reasons)
client.proposals.approve(proposal.id, "Checked the A/B.")   # a member's key only
assert client.audit.verify().ok
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from deputy.domain import lifecycle as lc
from deputy.domain import resources as r
from deputy.sdk import _proposal_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP

T = TypeVar("T")


def _pages(fetch: Callable[[str | None], r.Page[T]]) -> Iterator[r.Page[T]]:
    cursor: str | None = None
    while True:
        page = fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


def _items(fetch: Callable[[str | None], r.Page[T]]) -> Iterator[T]:
    for page in _pages(fetch):
        yield from page.data


async def _apages(fetch: Callable[[str | None], Awaitable[r.Page[T]]]) -> AsyncIterator[r.Page[T]]:
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        yield page
        if not page.next_cursor:
            return
        cursor = page.next_cursor


async def _aitems(fetch: Callable[[str | None], Awaitable[r.Page[T]]]) -> AsyncIterator[T]:
    async for page in _apages(fetch):
        for item in page.data:
            yield item


class ProposalsAPI:
    """Proposed agent changes: file one with its sandbox evidence, read its diff, gate and
    what widens permissions, and review it (approving and rejecting need a member's key)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def create(
        self,
        agent_id: str,
        version: int,
        title: str,
        *,
        rationale: str = "",
        base_version: int | None = None,
        sandbox_run_id: str | None = None,
        baseline_run_id: str | None = None,
        conversation_ids: Sequence[str] = (),
        regression_scenario_ids: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> lc.Proposal:
        """File `version` as a change to `base_version` (default: the live version)."""
        return self._http.run(
            calls.create_proposal(
                agent_id,
                version,
                title,
                rationale=rationale,
                base_version=base_version,
                sandbox_run_id=sandbox_run_id,
                baseline_run_id=baseline_run_id,
                conversation_ids=conversation_ids,
                regression_scenario_ids=regression_scenario_ids,
                idempotency_key=idempotency_key,
            )
        )

    def get(self, proposal_id: str) -> lc.Proposal:
        return self._http.run(calls.get_proposal(proposal_id))

    def list(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[lc.Proposal]:
        """One page of the workspace's proposals (of one agent, in one status), newest first."""
        return self._http.run(calls.list_proposals(agent_id, status, limit, cursor))

    def iter_pages(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[r.Page[lc.Proposal]]:
        return _pages(lambda cursor: self.list(agent_id, status, limit=page_size, cursor=cursor))

    def iter_all(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[lc.Proposal]:
        return _items(lambda cursor: self.list(agent_id, status, limit=page_size, cursor=cursor))

    def review(
        self,
        proposal_id: str,
        kind: lc.ReviewKind,
        body: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> lc.Review:
        return self._http.run(calls.review(proposal_id, kind, body, idempotency_key))

    def approve(self, proposal_id: str, body: str = "") -> lc.Review:
        return self.review(proposal_id, "approve", body)

    def reject(self, proposal_id: str, body: str = "") -> lc.Review:
        return self.review(proposal_id, "reject", body)

    def request_changes(self, proposal_id: str, body: str = "") -> lc.Review:
        return self.review(proposal_id, "request_changes", body)

    def comment(self, proposal_id: str, body: str = "") -> lc.Review:
        return self.review(proposal_id, "comment", body)

    def reviews(
        self, proposal_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[lc.Review]:
        """One page of the proposal's reviews, newest first."""
        return self._http.run(calls.list_reviews(proposal_id, limit, cursor))

    def iter_reviews(
        self, proposal_id: str, *, page_size: int | None = None
    ) -> Iterator[lc.Review]:
        return _items(lambda cursor: self.reviews(proposal_id, limit=page_size, cursor=cursor))


class AsyncProposalsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def create(
        self,
        agent_id: str,
        version: int,
        title: str,
        *,
        rationale: str = "",
        base_version: int | None = None,
        sandbox_run_id: str | None = None,
        baseline_run_id: str | None = None,
        conversation_ids: Sequence[str] = (),
        regression_scenario_ids: Sequence[str] = (),
        idempotency_key: str | None = None,
    ) -> lc.Proposal:
        return await self._http.run(
            calls.create_proposal(
                agent_id,
                version,
                title,
                rationale=rationale,
                base_version=base_version,
                sandbox_run_id=sandbox_run_id,
                baseline_run_id=baseline_run_id,
                conversation_ids=conversation_ids,
                regression_scenario_ids=regression_scenario_ids,
                idempotency_key=idempotency_key,
            )
        )

    async def get(self, proposal_id: str) -> lc.Proposal:
        return await self._http.run(calls.get_proposal(proposal_id))

    async def list(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[lc.Proposal]:
        return await self._http.run(calls.list_proposals(agent_id, status, limit, cursor))

    def iter_pages(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        page_size: int | None = None,
    ) -> AsyncIterator[r.Page[lc.Proposal]]:
        return _apages(lambda cursor: self.list(agent_id, status, limit=page_size, cursor=cursor))

    def iter_all(
        self,
        agent_id: str | None = None,
        status: lc.ProposalStatus | None = None,
        *,
        page_size: int | None = None,
    ) -> AsyncIterator[lc.Proposal]:
        return _aitems(lambda cursor: self.list(agent_id, status, limit=page_size, cursor=cursor))

    async def review(
        self,
        proposal_id: str,
        kind: lc.ReviewKind,
        body: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> lc.Review:
        return await self._http.run(calls.review(proposal_id, kind, body, idempotency_key))

    async def approve(self, proposal_id: str, body: str = "") -> lc.Review:
        return await self.review(proposal_id, "approve", body)

    async def reject(self, proposal_id: str, body: str = "") -> lc.Review:
        return await self.review(proposal_id, "reject", body)

    async def request_changes(self, proposal_id: str, body: str = "") -> lc.Review:
        return await self.review(proposal_id, "request_changes", body)

    async def comment(self, proposal_id: str, body: str = "") -> lc.Review:
        return await self.review(proposal_id, "comment", body)

    async def reviews(
        self, proposal_id: str, *, limit: int | None = None, cursor: str | None = None
    ) -> r.Page[lc.Review]:
        return await self._http.run(calls.list_reviews(proposal_id, limit, cursor))

    def iter_reviews(
        self, proposal_id: str, *, page_size: int | None = None
    ) -> AsyncIterator[lc.Review]:
        return _aitems(lambda cursor: self.reviews(proposal_id, limit=page_size, cursor=cursor))


class AuditAPI:
    """The workspace's tamper-evident audit log (`audit:read`)."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def list(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[lc.AuditEntry]:
        """One page of entries, newest first."""
        return self._http.run(calls.list_audit(action, subject_id, limit, cursor))

    def iter_pages(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[r.Page[lc.AuditEntry]]:
        return _pages(lambda cursor: self.list(action, subject_id, limit=page_size, cursor=cursor))

    def iter_all(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        page_size: int | None = None,
    ) -> Iterator[lc.AuditEntry]:
        return _items(lambda cursor: self.list(action, subject_id, limit=page_size, cursor=cursor))

    def verify(self) -> lc.AuditVerification:
        """Check the whole hash chain: `ok`, or the first entry that does not check."""
        return self._http.run(calls.verify_audit())


class AsyncAuditAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def list(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> r.Page[lc.AuditEntry]:
        return await self._http.run(calls.list_audit(action, subject_id, limit, cursor))

    def iter_pages(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        page_size: int | None = None,
    ) -> AsyncIterator[r.Page[lc.AuditEntry]]:
        return _apages(lambda cursor: self.list(action, subject_id, limit=page_size, cursor=cursor))

    def iter_all(
        self,
        action: lc.AuditAction | None = None,
        subject_id: str | None = None,
        *,
        page_size: int | None = None,
    ) -> AsyncIterator[lc.AuditEntry]:
        return _aitems(lambda cursor: self.list(action, subject_id, limit=page_size, cursor=cursor))

    async def verify(self) -> lc.AuditVerification:
        return await self._http.run(calls.verify_audit())

"""Deployments, for `DeputyClient` (`client.deployments`) and `AsyncDeputyClient` (the same,
awaited).

live = client.deployments.deploy(agent.id, 1)                      # version 1 answers
canary = client.deployments.deploy(agent.id, 2, canary_percent=10, proposal_id=proposal.id)
print(client.deployments.canary(canary.id).decision)            # promote | rollback | wait
client.deployments.promote(canary.id)                           # or .rollback(id, reason=...)
print(client.deployments.trust(agent.id))
"""

from __future__ import annotations

from deputy.domain import lifecycle as lc
from deputy.sdk import _deployment_calls as calls
from deputy.sdk._http import AsyncHTTP, SyncHTTP


class DeploymentsAPI:
    """Which version answers on each channel; canaries, promote, pause, resume, roll back."""

    def __init__(self, http: SyncHTTP) -> None:
        self._http = http

    def deploy(
        self,
        agent_id: str,
        version: int,
        channel: str = lc.ALL_CHANNELS,
        canary_percent: int | None = None,
        proposal_id: str | None = None,
        note: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> lc.Deployment:
        """Put `version` live on `channel`, or (with `canary_percent`) start it as the canary
        beside the live version. Needs an approved proposal for it, or a member's key."""
        return self._http.run(
            calls.deploy(
                agent_id, version, channel, canary_percent, proposal_id, note, idempotency_key
            )
        )

    def list(self, agent_id: str) -> list[lc.Deployment]:
        """The agent's deployments, one per channel (`all` first)."""
        return self._http.run(calls.list_deployments(agent_id))

    def get(self, deployment_id: str) -> lc.Deployment:
        return self._http.run(calls.get_deployment(deployment_id))

    def promote(self, deployment_id: str, *, idempotency_key: str | None = None) -> lc.Deployment:
        """The canary becomes the live version."""
        return self._http.run(calls.change(deployment_id, "promote", None, idempotency_key))

    def pause(self, deployment_id: str, *, idempotency_key: str | None = None) -> lc.Deployment:
        """The canary takes no new conversations until resumed."""
        return self._http.run(calls.change(deployment_id, "pause", None, idempotency_key))

    def resume(self, deployment_id: str, *, idempotency_key: str | None = None) -> lc.Deployment:
        return self._http.run(calls.change(deployment_id, "resume", None, idempotency_key))

    def rollback(
        self, deployment_id: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> lc.Deployment:
        """Remove the canary; without one, the previous version goes live again."""
        body = {"reason": reason}
        return self._http.run(calls.change(deployment_id, "rollback", body, idempotency_key))

    def canary(self, deployment_id: str) -> lc.CanaryStatus:
        """The canary's metrics beside the live version's, its breaches and the decision."""
        return self._http.run(calls.canary(deployment_id))

    def trust(self, agent_id: str) -> lc.TrustRecord:
        """How the agent's proposals and canaries went."""
        return self._http.run(calls.trust(agent_id))


class AsyncDeploymentsAPI:
    def __init__(self, http: AsyncHTTP) -> None:
        self._http = http

    async def deploy(
        self,
        agent_id: str,
        version: int,
        channel: str = lc.ALL_CHANNELS,
        canary_percent: int | None = None,
        proposal_id: str | None = None,
        note: str = "",
        *,
        idempotency_key: str | None = None,
    ) -> lc.Deployment:
        return await self._http.run(
            calls.deploy(
                agent_id, version, channel, canary_percent, proposal_id, note, idempotency_key
            )
        )

    async def list(self, agent_id: str) -> list[lc.Deployment]:
        return await self._http.run(calls.list_deployments(agent_id))

    async def get(self, deployment_id: str) -> lc.Deployment:
        return await self._http.run(calls.get_deployment(deployment_id))

    async def promote(
        self, deployment_id: str, *, idempotency_key: str | None = None
    ) -> lc.Deployment:
        return await self._http.run(calls.change(deployment_id, "promote", None, idempotency_key))

    async def pause(
        self, deployment_id: str, *, idempotency_key: str | None = None
    ) -> lc.Deployment:
        return await self._http.run(calls.change(deployment_id, "pause", None, idempotency_key))

    async def resume(
        self, deployment_id: str, *, idempotency_key: str | None = None
    ) -> lc.Deployment:
        return await self._http.run(calls.change(deployment_id, "resume", None, idempotency_key))

    async def rollback(
        self, deployment_id: str, reason: str = "", *, idempotency_key: str | None = None
    ) -> lc.Deployment:
        body = {"reason": reason}
        return await self._http.run(calls.change(deployment_id, "rollback", body, idempotency_key))

    async def canary(self, deployment_id: str) -> lc.CanaryStatus:
        return await self._http.run(calls.canary(deployment_id))

    async def trust(self, agent_id: str) -> lc.TrustRecord:
        return await self._http.run(calls.trust(agent_id))

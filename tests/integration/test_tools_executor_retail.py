"""An AgentSpec binding the retail OpenAPI tools calls them through `deputy.tools` against the
REAL retail REST backend (examples/retail) on 127.0.0.1, with the SQL ledger on the database under
test: validation, limits, confirmation, idempotent replay, secrets, and a crash between the call and
its acknowledgement (in real processes killed with `os._exit`)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from examples.retail.auth import AuthConfig as RetailAuth
from sqlalchemy import select

from deputy.config import load_settings
from deputy.domain import resources as r
from deputy.domain.spec import AgentSpec
from deputy.domain.tenancy import Principal
from deputy.services import agents
from deputy.services.keys import authenticate
from deputy.services.platform import Platform
from deputy.services.startup import prepare
from deputy.services.tool_sources import build_executor, create_source
from deputy.store import tables as t
from deputy.tools.confirmation import Confirmation
from deputy.tools.executor import ToolExecutor
from deputy.tools.results import CallContext, ToolCallResult
from tests.integration.retail_backend import RetailServer, retail_server
from tests.integration.tool_call_child import CRASH_EXIT_CODE

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PENDING = "#W5918442"  # a pending order of sofia_rossi_8776, paid by credit card
OTHER_PENDING = "#W2974929"
API_KEY = "retail-key-0123456789abcdef"

SPEC: dict[str, Any] = {
    "name": "Retail support (tools test)",
    "goal": "Help retail customers with their orders.",
    "policies": [
        {
            "id": "cancel_reasons",
            "text": "Orders are only cancelled as 'no longer needed' or 'ordered by mistake'.",
            "limits": [
                {
                    "tool": "cancel_pending_order",
                    "argument": "reason",
                    "one_of": ["no longer needed", "ordered by mistake"],
                }
            ],
        }
    ],
    "tools": [
        {
            "name": "get_order_details",
            "effect": "read",
            "binding": {"kind": "openapi", "source": "retail", "operation": "get_order_details"},
            "retries": 1,
        },
        {
            "name": "cancel_pending_order",
            "description": "Cancel a pending order and refund it.",
            "effect": "irreversible",
            "binding": {
                "kind": "openapi",
                "source": "retail",
                "operation": "cancel_pending_order",
            },
        },
        {
            "name": "return_order",
            "effect": "irreversible",
            "binding": {"kind": "openapi", "source": "retail", "operation": "return_order"},
            "limits": [{"argument": "items.*.quantity", "max": 1}],
        },
    ],
}


@dataclass
class Deployment:
    platform: Platform
    principal: Principal
    workspace_id: str
    agent_id: str
    settings_env: dict[str, str]
    runner: asyncio.Runner
    executors: list[ToolExecutor]

    def register(self, server: RetailServer, **options: Any) -> r.ToolSource:
        body = r.ToolSourceCreate(
            name="retail", kind="openapi", document=server.document, base_url=server.url, **options
        )
        return create_source(self.platform, self.principal, body)

    def executor(self, spec: dict[str, Any] | None = None) -> ToolExecutor:
        executor = build_executor(
            self.platform, self.workspace_id, self.agent_id, AgentSpec.model_validate(spec or SPEC)
        )
        self.executors.append(executor)
        return executor

    def close(self) -> None:
        for executor in self.executors:
            self.runner.run(executor.aclose())
        self.runner.close()

    def context(self, step_key: str = "turn-1/step-1", **changes: Any) -> CallContext:
        ctx = CallContext(self.workspace_id, self.agent_id, "conv_retail_1", step_key)
        return replace(ctx, **changes)

    def calls(self) -> list[t.ToolCallRow]:
        with self.platform.db.session() as session:
            return list(session.scalars(select(t.ToolCallRow).order_by(t.ToolCallRow.id)))


DEPLOYMENTS: list[Deployment] = []


@pytest.fixture
def deployment(database_url: str, tmp_path: Path) -> Iterator[Deployment]:
    data_dir = tmp_path / "data"
    platform, boot = prepare(load_settings(database_url=database_url, data_dir=data_dir))
    assert boot.created is not None
    principal = authenticate(platform, boot.created.owner_key.secret)
    agent = agents.create_agent(platform, principal, r.AgentCreate(name="retail-support"))
    env = {"DEPUTY_DATABASE_URL": database_url, "DEPUTY_DATA_DIR": str(data_dir)}
    deployment = Deployment(
        platform, principal, principal.workspace_id, agent.id, env, asyncio.Runner(), []
    )
    DEPLOYMENTS.append(deployment)
    yield deployment
    DEPLOYMENTS.remove(deployment)
    deployment.close()
    platform.close()


def call(
    executor: ToolExecutor, ctx: CallContext, tool: str, args: dict[str, Any]
) -> ToolCallResult:
    """One call on the deployment's event loop (clients keep connections across calls)."""
    runner = next(d.runner for d in DEPLOYMENTS if executor in d.executors)
    return runner.run(executor.call(ctx, tool, args))


CANCEL = {"order_id": PENDING, "reason": "no longer needed"}


def confirmed(ctx: CallContext, tool: str, args: dict[str, Any]) -> CallContext:
    return replace(ctx, confirmations=(Confirmation.for_call(tool, args, "msg_3"),))


def test_reads_go_out_and_come_back_as_untrusted_data(deployment: Deployment) -> None:
    with retail_server() as server:
        deployment.register(server)
        executor = deployment.executor()
        result = call(executor, deployment.context(), "get_order_details", {"order_id": PENDING})
        assert result.ok and result.output["order_id"] == PENDING
        assert result.output["status"] == "pending"
        assert 'trust="untrusted"' in result.for_model()
        missing = call(executor, deployment.context(), "get_order_details", {"order_id": "#W0"})
        assert (missing.status, missing.code) == ("failed", "tool_error")
        assert "not found" in json.dumps(missing.output).lower()
    [read, failed] = deployment.calls()
    assert read.status == "succeeded" and read.idempotency_key is None
    assert read.request["method"] == "POST" and read.response["status"] == 200
    assert failed.status == "failed" and failed.response["status"] >= 400


def test_validation_and_limits_refuse_before_anything_leaves(deployment: Deployment) -> None:
    with retail_server() as server:
        deployment.register(server)
        executor = deployment.executor()
        ctx = deployment.context()
        no_reason = {"order_id": PENDING}
        invalid = call(
            executor,
            confirmed(ctx, "cancel_pending_order", no_reason),
            "cancel_pending_order",
            no_reason,
        )
        assert (invalid.status, invalid.code) == ("refused", "invalid_arguments")
        assert "reason" in invalid.message
        extra = {**CANCEL, "refund_to": "attacker"}
        assert call(executor, ctx, "cancel_pending_order", extra).code == "invalid_arguments"
        cheaper = {"order_id": PENDING, "reason": "found it cheaper elsewhere"}
        limited = call(
            executor,
            confirmed(ctx, "cancel_pending_order", cheaper),
            "cancel_pending_order",
            cheaper,
        )
        assert (limited.status, limited.code) == ("refused", "limit_exceeded")
        assert limited.details["violations"][0]["origin"] == "policy:cancel_reasons"
        two = {
            "order_id": "#W4817420",
            "items": [{"item_id": "6777246137", "quantity": 2}],
            "reason": "broken",
        }
        fanned = call(executor, confirmed(ctx, "return_order", two), "return_order", two)
        assert fanned.code == "limit_exceeded"
        assert fanned.details["violations"][0]["argument"] == "items.0.quantity"
        assert server.backend.requests == []
        assert server.order(PENDING)["status"] == "pending"
    assert {row.status for row in deployment.calls()} == {"refused"}
    assert all(row.idempotency_key is None for row in deployment.calls())


def test_confirmation_required_then_accepted_then_replayed(deployment: Deployment) -> None:
    with retail_server() as server:
        deployment.register(server)
        executor = deployment.executor()
        ctx = deployment.context()
        asked = call(executor, ctx, "cancel_pending_order", CANCEL)
        assert (asked.status, asked.code) == ("refused", "confirmation_required")
        assert asked.details["summary"].startswith("cancel_pending_order(order_id=")
        assert server.backend.requests == []

        yes = Confirmation("cancel_pending_order", asked.details["arguments_sha256"], "msg_4")
        done = call(executor, replace(ctx, confirmations=(yes,)), "cancel_pending_order", CANCEL)
        assert done.ok and not done.replayed
        assert done.output["status"] == "cancelled"
        again = call(
            deployment.executor(),
            replace(ctx, confirmations=(yes,)),
            "cancel_pending_order",
            CANCEL,
        )
        assert again.ok and again.replayed and again.output == done.output
        assert server.backend.arrived("cancel_pending_order") == 1
        order = server.order(PENDING)
        assert order["status"] == "cancelled"
        assert [p["transaction_type"] for p in order["payment_history"]] == ["payment", "refund"]
        other = {**CANCEL, "reason": "ordered by mistake"}
        conflict = call(
            executor, confirmed(ctx, "cancel_pending_order", other), "cancel_pending_order", other
        )
        assert conflict.code == "idempotency_conflict"
        assert server.backend.arrived("cancel_pending_order") == 1
    rows = [row for row in deployment.calls() if row.status == "succeeded"]
    assert len(rows) == 1 and rows[0].idempotency_key == done.idempotency_key
    assert rows[0].request["headers"]["idempotency-key"] == done.idempotency_key
    assert server.backend.requests[0][1] == done.idempotency_key


def test_credentials_reach_the_backend_but_never_the_ledger(deployment: Deployment) -> None:
    auth = RetailAuth(mode="api_key", api_key=API_KEY)
    with retail_server(auth=auth) as server:
        deployment.register(server, auth={"type": "api_key", "name": "X-API-Key", "value": API_KEY})
        result = call(
            deployment.executor(), deployment.context(), "get_order_details", {"order_id": PENDING}
        )
        assert result.ok, result.message
    with deployment.platform.db.session() as session:
        dumped = json.dumps(
            [
                [row.request, row.response, row.output, row.error]
                for row in session.scalars(select(t.ToolCallRow))
            ]
        )
        stored_source = session.scalar(select(t.ToolSource))
        assert stored_source is not None
        assert API_KEY not in (stored_source.credentials_encrypted or "")
    assert "x-api-key" in dumped.lower() and API_KEY not in dumped


def test_webhooks_sign_with_their_source_only_inside_its_base_url(
    deployment: Deployment,
) -> None:
    auth = RetailAuth(mode="api_key", api_key=API_KEY)
    with retail_server(auth=auth) as server:
        body = r.ToolSourceCreate(
            name="retail_hooks",
            kind="http",
            base_url=server.url + "/tools",
            auth={"type": "api_key", "name": "X-API-Key", "value": API_KEY},
        )
        create_source(deployment.platform, deployment.principal, body)
        hook = {"kind": "http", "method": "POST", "source": "retail_hooks"}
        spec = {
            "name": "Hooks",
            "goal": "Call webhooks.",
            "tools": [
                {
                    "name": "order_hook",
                    "effect": "read",
                    "binding": {**hook, "url": server.url + "/tools/get_order_details"},
                    "parameters": {
                        "type": "object",
                        "properties": {"order_id": {"type": "string"}},
                        "required": ["order_id"],
                    },
                },
                {
                    "name": "elsewhere",
                    "effect": "read",
                    "binding": {**hook, "url": server.url + "/admin/state"},
                },
            ],
        }
        executor = deployment.executor(spec)
        ctx = deployment.context()
        result = call(executor, ctx, "order_hook", {"order_id": PENDING})
        assert result.ok and result.output["order_id"] == PENDING
        outside = call(executor, ctx, "elsewhere", {})
        assert (outside.status, outside.code) == ("refused", "unavailable")
        assert server.backend.arrived("get_order_details") == 1
    assert API_KEY not in json.dumps([row.request for row in deployment.calls()])


def test_the_retail_support_spec_runs_its_tools(deployment: Deployment) -> None:
    spec = yaml.safe_load((REPO / "examples" / "specs" / "retail_support.yaml").read_text())
    with retail_server() as server:
        deployment.register(server)
        executor = deployment.executor(spec)
        ctx = deployment.context(procedure_id="cancel_pending_order")
        found = call(executor, ctx, "get_order_details", {"order_id": OTHER_PENDING})
        assert found.ok and found.output["status"] == "pending"
        args = {"order_id": OTHER_PENDING, "reason": "ordered by mistake"}
        asked = call(executor, ctx, "cancel_pending_order", args)
        assert asked.code == "confirmation_required"
        done = call(
            executor, confirmed(ctx, "cancel_pending_order", args), "cancel_pending_order", args
        )
        assert done.ok and server.order(OTHER_PENDING)["status"] == "cancelled"


# ---- a crash between the call and its acknowledgement --------------------------------------------


def child(deployment: Deployment, request: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPUTY_")}
    env |= deployment.settings_env | {
        "DEPUTY_ENVIRONMENT": "test",
        "DEPUTY_BLOCK_REMOTE_MODELS": "1",
    }
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO)])
    payload = {
        "workspace_id": deployment.workspace_id,
        "agent_id": deployment.agent_id,
        "spec": SPEC,
        "conversation_id": "conv_crash",
        "step_key": "turn-2/step-3",
        **request,
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.integration.tool_call_child", json.dumps(payload)],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("honours", [False, True], ids=["no-key-support", "key-support"])
def test_a_crash_after_sending_never_cancels_twice(deployment: Deployment, honours: bool) -> None:
    cancel = {"tool": "cancel_pending_order", "arguments": CANCEL, "confirm": True}
    with retail_server(honour_idempotency_keys=honours) as server:
        deployment.register(server, honours_idempotency_keys=honours)

        crashed = child(deployment, {**cancel, "crash_after_send": True})
        assert crashed.returncode == CRASH_EXIT_CODE, crashed.stderr
        assert server.backend.ran("cancel_pending_order") == 1  # the request went out, and acted
        assert server.order(PENDING)["status"] == "cancelled"
        [pending] = deployment.calls()
        assert pending.status == "pending" and pending.idempotency_key is not None

        retried = child(deployment, cancel)  # a fresh process, the same call at the same step
        assert retried.returncode == 0, retried.stderr
        result = json.loads(retried.stdout)

        order = server.order(PENDING)
        refunds = [p for p in order["payment_history"] if p["transaction_type"] == "refund"]
        assert order["status"] == "cancelled" and len(refunds) == 1  # changed exactly once
        assert server.backend.ran("cancel_pending_order") == 1
        [row] = deployment.calls()
        if honours:
            # Re-sent with the same key; the backend answered with its first response.
            assert server.backend.arrived("cancel_pending_order") == 2
            keys = {key for _, key in server.backend.requests}
            assert keys == {pending.idempotency_key}
            assert result["status"] == "succeeded" and result["attempts"] == 2
            first = json.loads(server.backend.first_answer(pending.idempotency_key))
            assert result["output"] == first and first["status"] == "cancelled"
            assert row.status == "succeeded"
        else:
            # Not re-sent: the outcome is unknown and the runtime must escalate.
            assert server.backend.arrived("cancel_pending_order") == 1
            assert (result["status"], result["code"]) == ("outcome_unknown", "outcome_unknown")
            assert "human" in result["message"]
            assert row.status == "outcome_unknown"
            third = child(deployment, cancel)
            assert json.loads(third.stdout)["status"] == "outcome_unknown"
            assert server.backend.arrived("cancel_pending_order") == 1

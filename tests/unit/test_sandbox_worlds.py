"""Sandbox tool worlds: the retail backend simulated in process (a fresh copy per world, state
observable, OpenAPI and webhook-bound tools served through the executor, nothing leaving the
process), recorded responses replayed from ledger records, a staging world, a composite world,
loading a backend by name, and the reference replay with its state comparison."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
from examples.retail.auth import AuthConfig
from examples.retail.rest import create_app
from examples.retail.sandbox import world_factory
from examples.retail.store import RetailStore, default_db_path
from fastapi import FastAPI
from pydantic import JsonValue

from deputy.domain.scenarios import ToolCallExpectation
from deputy.domain.spec import (
    AgentSpec,
    BuiltinBinding,
    HTTPBinding,
    MCPBinding,
    OpenAPIBinding,
    Tool,
)
from deputy.sandbox.ports import WorldFactory
from deputy.sandbox.replay import expected_state, states_match
from deputy.sandbox.worlds import (
    FALLBACK_STATE_KEY,
    AsgiWorldFactory,
    CompositeWorldFactory,
    RecordedWorldFactory,
    Recording,
    StagingWorld,
    StagingWorldFactory,
    load_backend,
    recordings_from_calls,
)
from deputy.sandbox.worlds_recorded import NOT_RECORDED
from deputy.testing.tools import FakeToolSource, InMemoryCallLedger, answer
from deputy.tools.base import ToolDefinition, ToolSourceClient
from deputy.tools.confirmation import Confirmation
from deputy.tools.executor import ToolExecutor
from deputy.tools.results import CallContext

T = TypeVar("T")

PENDING = "#W5918442"
CANCEL = {"order_id": PENDING, "reason": "no longer needed"}
USER = "yusuf_rossi_9620"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def retail() -> AsgiWorldFactory:
    return world_factory()


def _tool(name: str, binding: Any, effect: str = "read") -> Tool:
    return Tool.model_validate({"name": name, "effect": effect, "binding": binding})


SPEC = AgentSpec(
    name="retail",
    goal="Help retail customers.",
    mode="reasoning",
    tools=(
        _tool("get_order_details", OpenAPIBinding(source="retail", operation="get_order_details")),
        _tool(
            "cancel_pending_order",
            OpenAPIBinding(source="retail", operation="cancel_pending_order"),
            "irreversible",
        ),
        # A tool the builder only described: a placeholder webhook, named like an operation.
        _tool(
            "get_user_details",
            HTTPBinding(url="https://unbound.invalid/get_user_details"),
        ),
        _tool("send_sms", HTTPBinding(url="https://unbound.invalid/send_sms"), "write"),
        _tool("search_kb", MCPBinding(source="kb", tool="search")),
        _tool("end", BuiltinBinding(builtin="end_conversation"), "write"),
    ),
)


def _context(*confirmed: tuple[str, Mapping[str, Any]]) -> CallContext:
    return CallContext(
        workspace_id="ws_1",
        agent_id="agt_1",
        conversation_id="cnv_1",
        step_key="turn-1/t1.0",
        confirmations=tuple(Confirmation.for_call(t, a, "msg_1") for t, a in confirmed),
    )


def _order_status(state: Any, order_id: str = PENDING) -> str:
    return str(state["orders"][order_id]["status"])


# ---- the in-process simulation ---------------------------------------------------------------


def test_each_world_has_its_own_copy_of_the_seed_state(retail: AsgiWorldFactory) -> None:
    async def scenario() -> tuple[Any, Any, Any]:
        first, second = await retail.open(), await retail.open()
        try:
            cancelled = await first.call("cancel_pending_order", CANCEL)
            assert cancelled.ok, cancelled.output
            assert cancelled.output["status"] == "cancelled"
            third = await retail.open()  # opened after the write
            try:
                return await first.state(), await second.state(), await third.state()
            finally:
                await third.aclose()
        finally:
            await first.aclose()
            await second.aclose()

    after, untouched, fresh = run(scenario())
    assert _order_status(after) == "cancelled"
    assert _order_status(untouched) == "pending"
    assert _order_status(fresh) == "pending"
    assert set(after) == {"products", "users", "orders"}


def test_a_refused_or_unknown_operation_is_a_tool_level_failure(retail: AsgiWorldFactory) -> None:
    async def scenario() -> tuple[Any, Any]:
        world = await retail.open()
        try:
            refused = await world.call("cancel_pending_order", {**CANCEL, "order_id": "#W2378156"})
            unknown = await world.call("delete_everything", {})
            return refused, unknown
        finally:
            await world.aclose()

    refused, unknown = run(scenario())
    assert (refused.ok, refused.status) == (False, 400)
    assert refused.output == {"error": "Non-pending order cannot be cancelled"}
    assert not unknown.ok and "no operation 'delete_everything'" in unknown.output["error"]


def _retail_app() -> FastAPI:
    return create_app(RetailStore(), AuthConfig(mode="none"))


def test_clients_serve_openapi_sources_and_described_webhooks_named_like_operations(
    retail: AsgiWorldFactory,
) -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        world = await retail.open()
        limited = await AsgiWorldFactory(
            _retail_app, description="limited", sources={"retail"}
        ).open()
        try:
            return set(world.clients(SPEC)), set(limited.clients(SPEC))
        finally:
            await world.aclose()
            await limited.aclose()

    served, limited = run(scenario())
    # Not served: the MCP source, the built-in, and a webhook the backend has no operation for.
    assert served == {"retail", "http:get_user_details"}
    assert limited == {"retail"}


def test_the_executor_runs_the_specs_tools_against_the_simulation(
    retail: AsgiWorldFactory,
) -> None:
    async def scenario() -> tuple[Any, Any, Any, Any]:
        world = await retail.open()
        executor = ToolExecutor(SPEC, world.clients(SPEC), InMemoryCallLedger())
        try:
            user = await executor.call(_context(), "get_user_details", {"user_id": USER})
            unconfirmed = await executor.call(_context(), "cancel_pending_order", CANCEL)
            confirmed = await executor.call(
                _context(("cancel_pending_order", CANCEL)), "cancel_pending_order", CANCEL
            )
            return user, unconfirmed, confirmed, await world.state()
        finally:
            await executor.aclose()
            await world.aclose()

    user, unconfirmed, confirmed, state = run(scenario())
    assert user.ok and user.output["user_id"] == USER
    assert unconfirmed.code == "confirmation_required"
    assert confirmed.ok and confirmed.output["status"] == "cancelled"
    assert _order_status(state) == "cancelled"


def test_requests_go_to_the_invalid_sandbox_host_never_a_real_one(
    retail: AsgiWorldFactory,
) -> None:
    async def scenario() -> list[str]:
        world = await retail.open()
        ledger = InMemoryCallLedger()
        executor = ToolExecutor(SPEC, world.clients(SPEC), ledger)
        try:
            await executor.call(_context(), "get_order_details", {"order_id": PENDING})
            await executor.call(_context(), "get_user_details", {"user_id": USER})
        finally:
            await world.aclose()
        return [str(record.request.get("url")) for record in ledger.records.values()]

    urls = run(scenario())
    assert urls == [
        "http://sandbox.invalid/tools/get_order_details",
        "http://sandbox.invalid/tools/get_user_details",
    ]


def test_a_fresh_app_per_world_and_the_document_fetched_once() -> None:
    built: list[FastAPI] = []

    def make() -> FastAPI:
        app = FastAPI()
        counter = {"n": 0}

        @app.post("/increment", operation_id="increment")
        def increment() -> dict[str, int]:
            counter["n"] += 1
            return counter

        built.append(app)
        return app

    factory = AsgiWorldFactory(make, description="counter")

    async def scenario() -> tuple[Any, Any, Any]:
        first, second = await factory.open(), await factory.open()
        try:
            await first.call("increment", {})
            again = await first.call("increment", {})
            other = await second.call("increment", {})
            return again.output, other.output, await first.state()
        finally:
            await first.aclose()
            await second.aclose()

    again, other, state = run(scenario())
    assert (again, other) == ({"n": 2}, {"n": 1})
    assert state is None  # no /admin/state: the world's state cannot be observed
    assert len(built) == 2
    assert built[0].openapi_schema is not None and built[1].openapi_schema is None
    assert [t.operation for t in run(factory.document()).tools()] == ["increment"]


# ---- recorded responses ----------------------------------------------------------------------


def test_recorded_calls_match_canonical_arguments_and_replay_in_order() -> None:
    recordings = [
        Recording("get_order_details", {"order_id": PENDING}, True, {"status": "pending"}, 200),
        Recording("get_order_details", {"order_id": PENDING}, True, {"status": "cancelled"}, 200),
        Recording("refund", {"amount": 25, "order_id": PENDING}, False, {"error": "too late"}, 400),
    ]
    factory = RecordedWorldFactory(recordings, description="recorded")

    async def scenario() -> list[Any]:
        world = await factory.open()
        answers = [await world.call("get_order_details", {"order_id": PENDING}) for _ in range(3)]
        answers.append(await world.call("refund", {"order_id": PENDING, "amount": 25.0}))
        answers.append(await world.call("refund", {"order_id": PENDING, "amount": 30}))
        fresh = await factory.open()
        answers.append(await fresh.call("get_order_details", {"order_id": PENDING}))
        assert await world.state() is None
        return answers

    first, second, third, refund, other, fresh = run(scenario())
    assert [a.output["status"] for a in (first, second, third, fresh)] == [
        "pending",
        "cancelled",
        "cancelled",  # the last answer again once the recorded ones run out
        "pending",  # a new world starts from the first answer
    ]
    assert (refund.ok, refund.status, refund.output) == (False, 400, {"error": "too late"})
    assert (other.ok, other.output) == (False, {"error": NOT_RECORDED})


def test_recordings_from_the_ledger_replay_through_the_executor() -> None:
    """Production: calls through the executor land in the ledger. Sandbox: the ledger's
    records become recordings, and the same spec's calls get the same answers back."""
    spec = AgentSpec(
        name="shop",
        goal="Help.",
        tools=(
            _tool("order", OpenAPIBinding(source="shop", operation="get_order")),
            _tool("notify", HTTPBinding(url="https://hooks.example.com/notify"), "write"),
            _tool("end", BuiltinBinding(builtin="end_conversation"), "write"),
        ),
    )
    schema = {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}
    production = FakeToolSource(
        definitions=[ToolDefinition("get_order", "Get an order.", schema, "read")],
        handlers={"get_order": lambda i: answer({"id": i.arguments["id"], "total": 12.5})},
    )
    hook = FakeToolSource(
        definitions=[ToolDefinition("notify", "Notify.", {"type": "object"}, "write")],
        handlers={"notify": lambda i: answer({"error": "down"}, ok=False, status=503)},
    )

    async def scenario() -> tuple[list[Recording], Any, Any, Any, set[str]]:
        ledger = InMemoryCallLedger()
        live = ToolExecutor(spec, {"shop": production, "http:notify": hook}, ledger)
        await live.call(_context(), "order", {"id": "o1"})
        await live.call(_context(), "notify", {"text": "hi"})
        await live.call(_context(), "order", {"wrong": 1})  # refused: not recorded
        recordings = recordings_from_calls(spec, ledger.records.values())
        world = await RecordedWorldFactory(recordings, description="replay").open()
        clients = world.clients(spec)
        replay = ToolExecutor(spec, clients, InMemoryCallLedger())
        again = await replay.call(_context(), "order", {"id": "o1"})
        notified = await replay.call(_context(), "notify", {"text": "hi"})
        unseen = await replay.call(_context(), "order", {"id": "o2"})
        return recordings, again, notified, unseen, set(clients)

    recordings, again, notified, unseen, keys = run(scenario())
    assert [(r.operation, r.ok, r.status) for r in recordings] == [
        ("get_order", True, 200),
        ("notify", False, 503),
    ]
    assert keys == {"shop", "http:notify"}
    assert again.ok and again.output == {"id": "o1", "total": 12.5}
    assert notified.status == "failed" and notified.code == "tool_error"
    assert unseen.status == "failed" and unseen.output == {"error": NOT_RECORDED}
    assert production.executions[0].arguments == {"id": "o1"}  # production saw only live calls
    assert len(production.executions) == 1


# ---- staging and composite worlds -------------------------------------------------------------


def _fake_source(operation: str, output: Any) -> FakeToolSource:
    return FakeToolSource(
        definitions=[ToolDefinition(operation, operation, {"type": "object"}, "read")],
        handlers={operation: lambda i: answer(output)},
    )


def test_a_staging_world_uses_the_callers_clients_and_closes_them() -> None:
    staging = _fake_source("get_order_details", {"status": "staged"})
    asked: list[str] = []

    def make(spec: AgentSpec) -> Mapping[str, ToolSourceClient]:
        asked.append(spec.name)
        return {"retail": staging}

    factory: WorldFactory = StagingWorldFactory(make, description="staging")

    async def scenario() -> tuple[dict[str, ToolSourceClient], Any, Any, Any]:
        world = await factory.open()
        assert isinstance(world, StagingWorld)
        assert await world.operations() == frozenset()  # no client made yet
        clients = world.clients(SPEC)
        assert await world.operations() == {"get_order_details"}
        found = await world.call("get_order_details", {"order_id": PENDING})
        missing = await world.call("cancel_pending_order", CANCEL)
        state = await world.state()
        await world.aclose()
        return clients, found, missing, state

    clients, found, missing, state = run(scenario())
    assert clients == {"retail": staging} and asked == ["retail"]
    assert found.output == {"status": "staged"}
    assert not missing.ok and state is None
    assert staging.closed


def test_a_composite_world_routes_sources_calls_and_states(retail: AsgiWorldFactory) -> None:
    payments = RecordedWorldFactory(
        [Recording("charge", {"amount": 5}, True, {"charged": 5}, 200)], description="payments"
    )
    factory = CompositeWorldFactory({"payments": payments, "ledger": payments}, fallback=retail)
    spec = SPEC.model_copy(
        update={
            "tools": (
                *SPEC.tools,
                _tool("charge", OpenAPIBinding(source="payments", operation="charge"), "write"),
            )
        }
    )

    async def scenario() -> tuple[dict[str, Any], Any, Any, Any]:
        world = await factory.open()
        try:
            clients = world.clients(spec)
            charged = await world.call("charge", {"amount": 5})
            cancelled = await world.call("cancel_pending_order", CANCEL)
            return clients, charged, cancelled, await world.state()
        finally:
            await world.aclose()

    clients, charged, cancelled, state = run(scenario())
    assert set(clients) == {"retail", "http:get_user_details", "payments"}
    assert type(clients["payments"]).__name__ == "RecordedClient"
    assert charged.output == {"charged": 5}
    assert cancelled.ok
    assert set(state) == {FALLBACK_STATE_KEY}  # the recorded part has no state
    assert _order_status(state[FALLBACK_STATE_KEY]) == "cancelled"
    assert "payments: payments" in factory.description and "retail" in factory.description


# ---- loading a backend -----------------------------------------------------------------------


def test_load_backend_builds_the_registered_factory(tmp_path: Path) -> None:
    data = json.loads(default_db_path().read_text())
    data["orders"][PENDING]["status"] = "processed"
    seed = tmp_path / "db.json"
    seed.write_text(json.dumps(data))
    factory = load_backend("examples.retail.sandbox:world_factory", str(seed))

    async def scenario() -> Any:
        world = await factory.open()
        try:
            return await world.state()
        finally:
            await world.aclose()

    assert _order_status(run(scenario())) == "processed"


def test_a_missing_retail_seed_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "db.json"
    with pytest.raises(ValueError, match=f"the retail seed database {re.escape(str(missing))}"):
        load_backend("examples.retail.sandbox:world_factory", str(missing))


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("examples.retail.sandbox", "must look like 'package.module:function'"),
        ("examples.nowhere:factory", "cannot import the backend module 'examples.nowhere'"),
        ("examples.retail.sandbox:nothing", "has no attribute 'nothing'"),
        ("examples.retail.store:DEFAULT_DB_PATH", "is not callable"),
        ("json:dumps", "returned str, not a world factory"),
    ],
)
def test_load_backend_explains_a_bad_reference(ref: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_backend(ref, None)


# ---- the reference replay --------------------------------------------------------------------


def test_expected_state_replays_reference_actions_ignoring_failures(
    retail: AsgiWorldFactory,
) -> None:
    cancel = ToolCallExpectation(tool="cancel_pending_order", arguments=CANCEL)
    failing = ToolCallExpectation(
        tool="cancel_pending_order", arguments={**CANCEL, "order_id": "#W0000000"}
    )
    read = ToolCallExpectation(tool="get_order_details", arguments={"order_id": PENDING})

    async def scenario() -> tuple[Any, Any, Any]:
        with_failure = await expected_state(retail, [read, failing, cancel])
        plain = await expected_state(retail, [cancel])
        untouched = await expected_state(retail, [read])
        return with_failure, plain, untouched

    with_failure, plain, untouched = run(scenario())
    assert states_match(with_failure, plain) == (
        True,
        "the end state equals the reference end state",
    )
    same, detail = states_match(untouched, plain)
    assert not same
    assert detail.startswith("the end state differs from the reference at ")
    assert f"orders.{PENDING}.status: 'pending' != 'cancelled'" in detail


def test_states_match_lists_the_first_differing_paths() -> None:
    expected: JsonValue = {"orders": {"#W1": {"status": "cancelled", "items": [1, 2]}}, "n": 25}
    assert states_match(
        {"n": 25.0, "orders": {"#W1": {"items": [1, 2], "status": "cancelled"}}}, expected
    )[0]
    actual: JsonValue = {
        "orders": {"#W1": {"status": "pending", "items": [1, 3]}, "#W2": {}},
        "n": 25,
        **{f"z{i}": i for i in range(4)},
    }
    same, detail = states_match(actual, expected)
    assert not same
    assert detail == (
        "the end state differs from the reference at 7 paths: orders.#W1.items[1]: 3 != 2; "
        "orders.#W1.status: 'pending' != 'cancelled'; orders.#W2: {} != (absent); "
        "z0: 0 != (absent); z1: 1 != (absent) (and 2 more)"
    )
    _, short = states_match({"a": [1, {"b": 2}]}, {"a": [1]})
    assert short == "the end state differs from the reference at 1 path: a[1]: {'b': 2} != (absent)"
    assert states_match([1], [1, 2])[1].endswith("at 1 path: [1]: (absent) != 2")
    assert states_match(None, expected) == (
        False,
        "the trial's end state cannot be observed, so it was not compared",
    )

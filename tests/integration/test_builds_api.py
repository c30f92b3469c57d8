"""Builds through the HTTP API on a real database: tau2's retail policy and tool file in, a
draft spec, scenarios and report out; validation, scopes and tenancy; change requests; filing
the draft as an agent version."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import anyio
from examples.retail.rest import create_app as create_retail_app
from examples.retail.server import serve_mcp_http
from examples.retail.store import RetailStore

from deputy.builder.report import BuildReport
from deputy.domain.ids import new_id
from deputy.domain.scenarios import ScenarioSuite
from deputy.domain.spec import AgentSpec, MCPBinding, OpenAPIBinding, load_spec, spec_from_data
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.store import tables as t
from deputy.store.tables import utcnow
from deputy.testing import FunctionModel, structured
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model
from tests.processes import SHARED_DATA

RETAIL = SHARED_DATA / "tau2-bench" / "data" / "tau2" / "domains" / "retail"
POLICY = RETAIL / "policy.md"
TOOLS = SHARED_DATA / "tau2-bench" / "tools-data.json"
GOAL = "Help customers of our online retail store with their orders, returns and exchanges."
MANAGER = "refunds over $100 need a manager"


def upload(api: Api, name: str, data: bytes, key: str | None = None) -> dict[str, Any]:
    response = api.client.post(
        "/v1/materials", files={"file": (name, data)}, headers=api.headers(key)
    )
    assert response.status_code == 201, response.text
    material: dict[str, Any] = response.json()
    return material


def retail_materials(api: Api, key: str | None = None) -> list[str]:
    return [
        upload(api, "policy.md", POLICY.read_bytes(), key)["id"],
        upload(api, "tools-data.json", TOOLS.read_bytes(), key)["id"],
    ]


def start(api: Api, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    response = api.client.post("/v1/builds", json=body, headers=api.headers(key))
    assert response.status_code == 202, response.text
    build: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/builds/{build['id']}"
    return build


def wait(api: Api, build_id: str, key: str | None = None, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.client.get(f"/v1/builds/{build_id}", headers=api.headers(key))
        assert response.status_code == 200, response.text
        build: dict[str, Any] = response.json()
        if build["status"] in ("succeeded", "failed"):
            return build
        assert time.monotonic() < deadline, f"build still {build['status']}: {build}"
        time.sleep(0.05)


def retail_build(api: Api, key: str | None = None, **body: Any) -> dict[str, Any]:
    build = start(
        api,
        {"goal": GOAL, "material_ids": retail_materials(api, key), "model": "none", **body},
        key,
    )
    finished = wait(api, build["id"], key)
    assert finished["status"] == "succeeded", finished
    return finished


def get(api: Api, path: str, key: str | None = None) -> Any:
    response = api.client.get(path, headers=api.headers(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_rules_only_build_drafts_the_retail_agent(api: Api) -> None:
    materials = retail_materials(api)
    created = start(
        api,
        {
            "goal": GOAL,
            "name": "Retail support",
            "material_ids": materials,
            "constraints": ["Never reveal another customer's orders."],
            "model": "none",
        },
    )
    assert (created["status"], created["revision"], created["model"]) == ("queued", 0, "none")
    assert created["material_ids"] == materials
    build = wait(api, created["id"])
    assert build["status"] == "succeeded", build
    assert (build["revision"], build["attempts"], build["error"]) == (1, 1, None)
    assert build["progress"]["stage"] is not None and build["finished_at"] is not None

    data = get(api, f"/v1/builds/{build['id']}/spec")
    spec = spec_from_data(data)
    assert spec.name == "Retail support" and spec.goal == GOAL
    assert spec.procedures, "the policy's procedures were drafted"
    sources = {p.provenance.source for p in spec.procedures if p.provenance is not None}
    assert sources and sources <= {*materials, "goal", "constraint"}
    tools = {tool.name for tool in spec.tools}
    assert {"get_order_details", "cancel_order", "return_order", "exchange_order"} <= tools
    assert "book_reservation" not in tools  # tools-data.json's airline tools are not retail's

    yaml_answer = api.client.get(
        f"/v1/builds/{build['id']}/spec", params={"format": "yaml"}, headers=api.headers()
    )
    assert yaml_answer.status_code == 200
    assert yaml_answer.headers["content-type"].startswith("application/yaml")
    assert load_spec(yaml_answer.text, "yaml") == spec

    suite = ScenarioSuite.model_validate(get(api, f"/v1/builds/{build['id']}/scenarios"))
    assert suite.scenarios
    procedure_ids = {p.id for p in spec.procedures}
    assert {s.procedure for s in suite.scenarios if s.procedure} <= procedure_ids

    report = BuildReport.model_validate(get(api, f"/v1/builds/{build['id']}/report"))
    assert report.model is None  # rules only: no model was asked
    assert {m.id for m in report.materials} == set(materials)
    assert report.problems == ()
    assert report.stats.procedures == len(spec.procedures)
    assert report.stats.scenarios == len(suite.scenarios)

    listed = get(api, "/v1/builds")["data"]
    assert [b["id"] for b in listed] == [build["id"]]


def test_a_broken_file_is_reported_and_the_build_goes_on(api: Api) -> None:
    broken = upload(api, "scan.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50)
    policy = upload(api, "policy.md", POLICY.read_bytes())
    build = start(
        api, {"goal": GOAL, "material_ids": [broken["id"], policy["id"]], "model": "none"}
    )
    finished = wait(api, build["id"])
    assert finished["status"] == "succeeded", finished
    report = BuildReport.model_validate(get(api, f"/v1/builds/{build['id']}/report"))
    assert [p.material for p in report.problems] == [broken["id"]]
    assert report.problems[0].name == "scan.pdf" and report.problems[0].message
    statuses = {m.id: m.status for m in report.materials}
    assert statuses == {broken["id"]: "failed", policy["id"]: "used"}
    assert spec_from_data(get(api, f"/v1/builds/{build['id']}/spec")).procedures


def error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    assert body["code"] == code, body
    return body


def test_build_inputs_are_checked_before_anything_is_stored(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]

    def post(**body: Any) -> Any:
        return api.client.post(
            "/v1/builds", json={"goal": GOAL, "model": "none", **body}, headers=api.headers()
        )

    error(post(material_ids=[]), 422, "validation_error")
    error(post(material_ids=[material], goal="   "), 422, "validation_error")
    error(post(material_ids=[material], constraints=["x"] * 51), 422, "validation_error")
    error(post(material_ids=[material], constraints=["x" * 1001]), 422, "validation_error")
    error(post(material_ids=[f"mat_{i}" for i in range(201)]), 422, "validation_error")
    missing = error(post(material_ids=[material, "mat_missing", "mat_gone"]), 404, "not_found")
    assert "mat_missing" in missing["message"] and "mat_gone" in missing["message"]
    assert missing["details"]["ids"] == ["mat_missing", "mat_gone"]
    unknown_source = error(
        post(material_ids=[material], tool_source_ids=["tsrc_missing"]), 404, "not_found"
    )
    assert unknown_source["details"]["ids"] == ["tsrc_missing"]
    error(
        post(material_ids=[material], model="openai-compatible:nowhere/m"), 400, "invalid_request"
    )
    assert get(api, "/v1/builds")["data"] == []


def test_building_needs_agents_write_and_materials_read(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    body = {"goal": GOAL, "material_ids": [material], "model": "none"}
    for scopes in (["agents:write", "agents:read"], ["materials:read", "agents:read"]):
        key = api.client.post(
            "/v1/keys",
            json={"name": "narrow", "kind": "service", "scopes": scopes},
            headers=api.headers(),
        ).json()["secret"]
        response = api.client.post("/v1/builds", json=body, headers=api.headers(key))
        error(response, 403, "permission_denied")
    reader = api.client.post(
        "/v1/keys",
        json={"name": "reader", "kind": "service", "scopes": ["agents:read"]},
        headers=api.headers(),
    ).json()["secret"]
    build = start(api, body)
    assert get(api, f"/v1/builds/{build['id']}", reader)["id"] == build["id"]
    wait(api, build["id"])
    change = api.client.post(
        f"/v1/builds/{build['id']}/changes", json={"text": MANAGER}, headers=api.headers(reader)
    )
    error(change, 403, "permission_denied")


def test_another_workspace_sees_no_build(api: Api) -> None:
    build = retail_build(api)
    _, b_key = api.new_workspace("Bee")
    for path in ("", "/spec", "/scenarios", "/report", "/changes"):
        error(
            api.client.get(f"/v1/builds/{build['id']}{path}", headers=api.headers(b_key)),
            404,
            "not_found",
        )
    assert get(api, "/v1/builds", b_key)["data"] == []
    theirs = retail_build(api, b_key)
    assert [b["id"] for b in get(api, "/v1/builds")["data"]] == [build["id"]]
    assert [b["id"] for b in get(api, "/v1/builds", b_key)["data"]] == [theirs["id"]]


def test_a_change_request_makes_the_next_revision_and_files_as_a_version(api: Api) -> None:
    build = retail_build(api)
    path = f"/v1/builds/{build['id']}"
    first = get(api, f"{path}/spec")

    filed = api.client.post(f"{path}/agent", json={}, headers=api.headers())
    assert filed.status_code == 201, filed.text
    version = filed.json()
    assert version["number"] == 1 and version["spec"] == first
    again = api.client.post(
        f"{path}/agent", json={"agent_id": version["agent_id"]}, headers=api.headers()
    )
    error(again, 409, "conflict")  # the same draft is already version 1

    response = api.client.post(f"{path}/changes", json={"text": MANAGER}, headers=api.headers())
    assert response.status_code == 201, response.text
    change = response.json()
    assert change["applied"] and change["changes"], change
    assert change["revision"] == 2 and change["request"] == MANAGER
    assert change["text"].strip() and change["text"] != "No changes.\n"
    assert get(api, path)["revision"] == 2
    second = get(api, f"{path}/spec")
    assert second != first
    assert [c["id"] for c in get(api, f"{path}/changes")["data"]] == [change["id"]]

    filed = api.client.post(
        f"{path}/agent", json={"agent_id": version["agent_id"]}, headers=api.headers()
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["number"] == 2 and filed.json()["spec"] == second


def test_a_change_nothing_can_be_made_of_is_recorded_with_its_questions(api: Api) -> None:
    build = retail_build(api)
    path = f"/v1/builds/{build['id']}"
    before = get(api, f"{path}/spec")
    response = api.client.post(
        f"{path}/changes",
        json={"text": "stop handling time travel requests"},
        headers=api.headers(),
    )
    assert response.status_code == 201, response.text
    change = response.json()
    assert (change["applied"], change["changes"], change["revision"]) == ([], [], 1)
    assert change["questions"] and change["text"] == "No changes.\n"
    assert get(api, f"{path}/spec") == before and get(api, path)["revision"] == 1
    assert [c["id"] for c in get(api, f"{path}/changes")["data"]] == [change["id"]]


def insert_build(api: Api, material_ids: list[str], **values: Any) -> str:
    """A build row as a process left it (queued, running, or held by another process)."""
    workspace_id = get(api, "/v1/workspace")["id"]
    row = t.Build(
        id=new_id("bld"),
        workspace_id=workspace_id,
        status="queued",
        goal=GOAL,
        constraints=[],
        material_ids=material_ids,
        tool_source_ids=[],
        model="none",
        progress={},
        revision=0,
        attempts=0,
        created_by_key_id="key_test",
    )
    for name, value in values.items():
        setattr(row, name, value)
    with api.platform.db.tenant_session(workspace_id) as session:
        session.add(row)
    return row.id


def test_a_draft_is_not_changed_or_filed_before_the_build_has_succeeded(api: Api) -> None:
    material = upload(api, "policy.md", POLICY.read_bytes())["id"]
    held = insert_build(
        api,
        [material],
        status="running",
        lease_owner="another-process",
        lease_expires_at=utcnow() + timedelta(hours=1),
        attempts=1,
    )
    for method, suffix, body in (
        ("POST", "/changes", {"text": MANAGER}),
        ("POST", "/agent", {}),
        ("GET", "/spec", None),
        ("GET", "/scenarios", None),
        ("GET", "/report", None),
    ):
        response = api.client.request(
            method, f"/v1/builds/{held}{suffix}", json=body, headers=api.headers()
        )
        assert error(response, 409, "conflict")["details"]["status"] == "running"
    failed = insert_build(
        api,
        [material],
        status="failed",
        error={"code": "internal_error", "message": "boom"},
        finished_at=utcnow(),
    )
    response = api.client.post(
        f"/v1/builds/{failed}/changes", json={"text": MANAGER}, headers=api.headers()
    )
    assert "failed" in error(response, 409, "conflict")["message"]
    assert get(api, f"/v1/builds/{failed}")["error"] == {
        "code": "internal_error",
        "message": "boom",
    }


def test_a_build_asks_its_model_and_cannot_be_changed_while_it_runs(api: Api) -> None:
    asked = threading.Event()
    release = threading.Event()

    async def answer(request: ModelRequest) -> ModelResponse:
        asked.set()
        await anyio.to_thread.run_sync(release.wait, 60)
        return structured({})  # never what the schema asks: the builder keeps its rules' answer

    model = FunctionModel(answer, name="openai:builder-test")
    serve_model(api, model.name, model)
    build = start(
        api, {"goal": GOAL, "material_ids": retail_materials(api), "model": "openai:builder-test"}
    )
    assert asked.wait(60), "the build never asked its model"
    running = get(api, f"/v1/builds/{build['id']}")
    assert (running["status"], running["attempts"]) == ("running", 1)
    change = api.client.post(
        f"/v1/builds/{build['id']}/changes", json={"text": MANAGER}, headers=api.headers()
    )
    assert error(change, 409, "conflict")["details"]["status"] == "running"
    release.set()
    finished = wait(api, build["id"])
    assert finished["status"] == "succeeded", finished
    report = BuildReport.model_validate(get(api, f"/v1/builds/{build['id']}/report"))
    assert report.model == "openai:builder-test"
    assert report.stats.model_calls >= 1 and model.requests
    assert report.stats.model_failures == report.stats.model_calls
    # every question is attributed to the workspace and the build, for usage metering
    workspace = get(api, "/v1/workspace")["id"]
    assert {
        (r.metadata.get("workspace_id"), r.metadata.get("build_id")) for r in model.requests
    } == {(workspace, build["id"])}


def _build_with_source(api: Api, source_body: dict[str, Any]) -> tuple[AgentSpec, BuildReport]:
    """A rules-only build of the retail policy with one registered tool source."""
    source = api.client.post("/v1/tool-sources", json=source_body, headers=api.headers())
    assert source.status_code == 201, source.text
    policy = upload(api, "policy.md", POLICY.read_bytes())["id"]
    build = start(
        api,
        {
            "goal": GOAL,
            "material_ids": [policy],
            "tool_source_ids": [source.json()["id"]],
            "model": "none",
        },
    )
    assert wait(api, build["id"])["status"] == "succeeded"
    spec = spec_from_data(get(api, f"/v1/builds/{build['id']}/spec"))
    report = BuildReport.model_validate(get(api, f"/v1/builds/{build['id']}/report"))
    return spec, report


def _bound_operations(spec: AgentSpec, source: str) -> dict[str, str]:
    """Spec tool name → the operation (OpenAPI) or tool (MCP) of `source` it is bound to."""
    bound: dict[str, str] = {}
    for tool in spec.tools:
        binding = tool.binding
        if isinstance(binding, OpenAPIBinding) and binding.source == source:
            bound[tool.name] = binding.operation
        elif isinstance(binding, MCPBinding) and binding.source == source:
            bound[tool.name] = binding.tool
    return bound


def test_a_build_binds_the_tools_of_a_registered_tool_source(api: Api) -> None:
    document = create_retail_app(RetailStore(), None).openapi()
    spec, report = _build_with_source(
        api,
        {
            "name": "retail",
            "kind": "openapi",
            "document": document,
            "base_url": "http://127.0.0.1:9",
        },
    )
    bound = _bound_operations(spec, "retail")
    assert bound.get("cancel_pending_order") == "cancel_pending_order", spec.tools
    assert {t.tool for t in report.tools if t.bound} >= {"cancel_pending_order"}


def test_a_build_binds_the_tools_of_a_registered_mcp_server(api: Api) -> None:
    """An MCP server address registered as a tool source: its tools come bound to it."""
    with serve_mcp_http(RetailStore()) as url:
        spec, _ = _build_with_source(
            api, {"name": "retail_mcp", "kind": "mcp", "mcp": {"type": "http", "url": url}}
        )
    bound = _bound_operations(spec, "retail_mcp")
    assert bound.get("cancel_pending_order") == "cancel_pending_order", spec.tools
    cancel = next(p for p in spec.procedures if "cancel" in p.id)
    called = {step.tool for step in cancel.steps if step.tool}
    assert called & {"cancel_pending_order", "cancel_order"}, called
    assert called <= set(bound), called

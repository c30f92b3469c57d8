"""The customer's explicit feedback: recorded in the transcript through the API, validated,
and read by the improvement loop as a signal."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Api
from tests.integration.test_improvement_api import (
    RETURNS,
    Store,
    get,
    ok,
    post,
    start,
    store_agent,
    wait,
)

pytestmark = pytest.mark.integration


def test_feedback_is_recorded_validated_and_read_by_the_improvement_loop(api: Api) -> None:
    agent_id = store_agent(api, Store())
    conversation = ok(post(api, "/v1/conversations", {"agent_id": agent_id}), 201)
    path = f"/v1/conversations/{conversation['id']}"
    ok(post(api, f"{path}/messages", {"text": RETURNS[0]}))
    ok(post(api, f"{path}/close", {"outcome": "resolved"}))

    for bad in ({}, {"comment": "   "}, {"rating": 0}, {"rating": 6}, {"rating": 3, "x": 1}):
        assert post(api, f"{path}/feedback", bad).status_code == 422, bad
    entry = ok(post(api, f"{path}/feedback", {"rating": 1, "comment": "Useless."}), 201)
    assert (entry["kind"], entry["text"], entry["data"]) == ("feedback", "Useless.", {"rating": 1})
    transcript = ok(get(api, f"{path}/transcript"))["entries"]
    assert transcript[-1]["kind"] == "feedback"
    assert post(api, "/v1/conversations/cnv_missing/feedback", {"rating": 5}).status_code == 404

    run = wait(api, start(api, {"agent_id": agent_id, "trials": 1})["id"])
    assert run["status"] == "succeeded", run["error"]
    [evaluation] = run["report"]["evaluations"]
    # the outcome says resolved; the customer's rating of 1 says otherwise
    assert evaluation["signals"]["negative_feedback"] is True
    assert evaluation["failed"] is True

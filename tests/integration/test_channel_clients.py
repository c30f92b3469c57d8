"""Channel connections through the SDK (`client.channels`, sync and async) and the CLI
(`deputy channels`), against the real app in process: secrets go in and never come back out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from deputy.cli.main import app
from deputy.cli.state import CliState
from deputy.sdk import AsyncDeputyClient, DeputyClient, NotFoundError
from deputy.sdk.errors import ConflictError, ValidationFailedError
from deputy.sdk.testing import SyncASGITransport
from tests.integration.channel_agent import echo_agent
from tests.integration.conftest import Api

pytestmark = pytest.mark.integration

BASE = "http://deputy.test"
BOT_TOKEN = "123456:bot-token-never-shown"
WEBHOOK_SECRET = "webhook-secret-never-shown"
SMTP_PASSWORD = "smtp-password-never-shown"
IMAP_PASSWORD = "imap-password-never-shown"
EMAIL = {"address": "help@shop.example", "smtp_host": "127.0.0.1", "smtp_port": 2525}


@pytest.fixture
def in_process(api: Api) -> Iterator[httpx.BaseTransport]:
    with SyncASGITransport(api.client.app) as transport:
        # A MockTransport in front, so each command closing its client leaves the app up.
        yield httpx.MockTransport(transport.handle_request)


def test_the_sdk_manages_connections(api: Api, in_process: httpx.BaseTransport) -> None:
    agent_id = echo_agent(api)
    secrets = {"bot_token": BOT_TOKEN, "secret_token": WEBHOOK_SECRET}
    with DeputyClient(BASE, api.owner_key, transport=in_process) as client:
        bot = client.channels.create(agent_id, "telegram", "support-bot", {}, secrets=secrets)
        assert (bot.kind, bot.agent_id, bot.enabled) == ("telegram", agent_id, True)
        assert bot.secrets_set == ["bot_token", "secret_token"]
        assert bot.inbound_path == f"/v1/channels/{bot.id}/webhook"
        mail = client.channels.create(agent_id, "email", "mailbox", EMAIL)
        assert mail.config["smtp_port"] == 2525 and mail.secrets_set == []
        with pytest.raises(ConflictError):
            client.channels.create(agent_id, "email", "mailbox", EMAIL)
        with pytest.raises(ValidationFailedError) as missing:
            client.channels.create(agent_id, "telegram", "no-secrets", {})
        assert missing.value.details["missing"] == ["bot_token", "secret_token"]

        newest_first = [c.name for c in client.channels.iter_all(agent_id=agent_id, page_size=1)]
        assert newest_first == ["mailbox", "support-bot"]
        page = client.channels.list(agent_id=agent_id, limit=1)
        assert len(page.data) == 1 and page.next_cursor
        disabled = client.channels.update(bot.id, enabled=False)
        assert not disabled.enabled and disabled.secrets_set == bot.secrets_set
        moved = client.channels.update(mail.id, config={**EMAIL, "smtp_port": 587},
                                       secrets={"smtp_password": SMTP_PASSWORD})  # fmt: skip
        assert moved.config["smtp_port"] == 587 and moved.secrets_set == ["smtp_password"]
        cleared = client.channels.update(mail.id, secrets={"smtp_password": ""})
        assert cleared.secrets_set == []
        with pytest.raises(ValidationFailedError):
            client.channels.update(bot.id, secrets={"bot_token": ""})  # a required one
        client.channels.delete(bot.id)
        with pytest.raises(NotFoundError):
            client.channels.get(bot.id)
        remaining = client.channels.get(mail.id)

    for text in (bot.model_dump_json(), remaining.model_dump_json(), moved.model_dump_json()):
        assert BOT_TOKEN not in text and WEBHOOK_SECRET not in text and SMTP_PASSWORD not in text

    async def with_async_client() -> None:
        transport = httpx.ASGITransport(app=api.client.app)
        async with AsyncDeputyClient(BASE, api.owner_key, transport=transport) as aio:
            sms = await aio.channels.create(
                agent_id,
                "sms",
                "texts",
                {
                    "account_sid": "AC1",
                    "from_number": "+15550001",
                    "webhook_url": "https://x.test/s",
                },
                secrets={"auth_token": "twilio-token"},
            )
            listed = [c.id async for c in aio.channels.iter_all(agent_id=agent_id, page_size=1)]
            assert listed == [sms.id, mail.id]
            updated = await aio.channels.update(sms.id, enabled=False)
            assert not updated.enabled
            assert (await aio.channels.get(sms.id)).secrets_set == ["auth_token"]
            await aio.channels.delete(sms.id)
            assert [c.id for c in (await aio.channels.list()).data] == [mail.id]

    asyncio.run(with_async_client())


def test_the_cli_manages_connections_without_echoing_secrets(
    api: Api,
    in_process: httpx.BaseTransport,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    echo_agent(api, name="support")
    state = CliState(url=BASE, api_key=api.owner_key, transport=in_process)

    def run(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, ["channels", *args], obj=state, input=input)

    password_file = tmp_path / "smtp.txt"
    password_file.write_text(SMTP_PASSWORD + "\n")
    monkeypatch.setenv("DEPUTY_SECRET_IMAP_PASSWORD", IMAP_PASSWORD)
    settings = tmp_path / "mailbox.yaml"
    settings.write_text("address: help@shop.example\nsmtp_host: 127.0.0.1\n")
    added = run(
        "add", "support", "email", "mailbox",
        "--config", str(settings),
        "--set", "smtp_port=2525",
        "--set", "display_name=Shop Help",
        "--secret", f"smtp_password=@{password_file}",
        "--secret", "imap_password",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "imap_password, smtp_password" in added.stdout
    assert "/v1/channels/chn_" in added.stdout
    prompted = run(
        "add", "support", "telegram", "bot",
        "--secret", "bot_token", "--secret", f"secret_token={WEBHOOK_SECRET}", "--json",
        input=BOT_TOKEN + "\n",
    )  # fmt: skip
    assert prompted.exit_code == 0, prompted.output
    bot = json.loads(prompted.stdout[prompted.stdout.index("{") :])
    assert bot["secrets_set"] == ["bot_token", "secret_token"]

    listed = run("list", "--agent", "support", "--json")
    assert listed.exit_code == 0, listed.output
    assert [c["name"] for c in json.loads(listed.stdout)["data"]] == ["bot", "mailbox"]
    shown = run("show", "mailbox", "--json")
    mailbox = json.loads(shown.stdout)
    assert mailbox["config"]["smtp_port"] == 2525
    assert mailbox["config"]["display_name"] == "Shop Help"
    assert mailbox["secrets_set"] == ["imap_password", "smtp_password"]

    changed = run("update", "mailbox", "--set", "smtp_port=587", "--disable", "--json")
    assert changed.exit_code == 0, changed.output
    after = json.loads(changed.stdout)
    assert (after["config"]["smtp_port"], after["config"]["smtp_host"]) == (
        587,
        "127.0.0.1",
    )  # one setting changed, the others kept
    assert after["enabled"] is False
    unset = run("update", bot["id"], "--remove-secret", "secret_token")
    assert unset.exit_code == 2 and "secret_token" in unset.output  # a required secret
    assert run("update", "mailbox").exit_code == 2  # nothing to change
    table = run("list")
    assert "mailbox" in table.stdout and "bot" in table.stdout

    assert run("remove", "bot", "--yes").exit_code == 0
    assert run("show", "bot").exit_code == 4
    assert run("add", "support", "fax", "x").exit_code == 2

    outputs = (added, prompted, listed, shown, changed, unset, table)
    for result in outputs:
        for secret in (SMTP_PASSWORD, IMAP_PASSWORD, BOT_TOKEN, WEBHOOK_SECRET):
            assert secret not in result.output

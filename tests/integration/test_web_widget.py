"""The chat widget in a real headless Chromium, on a shop page of another origin that embeds the
one script tag (with hostile CSS). Deputy is a real uvicorn server on 127.0.0.1 over the `api`
fixture's app; the agent is the echo agent (its first answer held back until the test has seen
the typing indicator). The customer opens the chat, sees the greeting, types, sees the typing
indicator and the streamed reply, uploads a file, reloads the page (the conversation is
restored), loses the WebSocket (closed under it, then the server restarted) and gets what was
said meanwhile, once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from deputy.api.widget_cors import WidgetCorsMiddleware
from deputy.llm.types import ModelRequest, ModelResponse
from deputy.testing import FunctionModel
from tests.integration.channel_agent import ECHO_MODEL, ECHO_PREFIX, echo_agent, echo_answer
from tests.integration.conftest import Api
from tests.integration.retail_agent import serve_model
from tests.integration.test_widget_attachments import PNG
from tests.integration.test_widget_sessions import widget_key
from tests.processes import free_port

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = Path("/tmp/widget.png")
GREETING = "Hi, I'm Ada from the shop. How can I help?"
HELD = "Hello there. Where is my parcel?"
WAIT_MS = 20_000
HOLD_LIMIT_SECONDS = 60.0

# Records the page's WebSockets and the event types they receive (the widget is untouched).
SOCKET_SPY = """
(() => {
  const Native = window.WebSocket;
  window.__sockets = [];
  window.__frames = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      window.__sockets.push(this);
      this.addEventListener("message", (event) => {
        try { window.__frames.push(JSON.parse(event.data).type); } catch (e) {}
      });
    }
  };
})();
"""

SHOP_PAGE = """<!doctype html>
<html><head><title>Shop</title><style>
  * {{ font-size: 40px !important; color: red !important; font-family: serif !important; }}
  button {{ display: none !important; }}
  div {{ position: static !important; background: yellow !important; }}
</style></head>
<body><h1>The shop</h1><p>Our products.</p>
<script src="{deputy}/widget.js" data-agent="{agent}" data-key="{key}"></script>
</body></html>"""


class ThreadServer:
    """An ASGI app under uvicorn in a thread on a fixed port of 127.0.0.1 that can be stopped
    and started again (lifespan off: the `api` fixture's client runs the app's lifespan)."""

    def __init__(self, app: Any, port: int) -> None:
        self.app, self.port = app, port
        self.url = f"http://127.0.0.1:{port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
        self._server = self._thread = None


@contextmanager
def running(app: Any) -> Iterator[ThreadServer]:
    server = ThreadServer(app, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def held_echo(release: threading.Event) -> FunctionModel:
    """The echo model, holding its answer to `HELD` until `release` is set."""

    async def answer(request: ModelRequest) -> ModelResponse:
        said = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
        if request.response_schema is None and HELD in said:
            deadline = time.monotonic() + HOLD_LIMIT_SECONDS
            while not release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        return echo_answer(request)

    return FunctionModel(answer, name=ECHO_MODEL)


def texts(page: Any, selector: str) -> list[str]:
    found: list[str] = page.locator(selector).all_inner_texts()
    return [t.strip() for t in found]


def test_the_widget_chats_streams_uploads_survives_reloads_and_reconnects(api: Api) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    agent = echo_agent(
        api,
        channels={"chat": {"greeting": GREETING, "allow_uploads": True}},
        persona={"name": "Ada"},
    )
    release = threading.Event()
    serve_model(api, ECHO_MODEL, held_echo(release))
    key = widget_key(api, agent)
    app = api.client.app
    installed = any(m.cls is WidgetCorsMiddleware for m in app.user_middleware)  # type: ignore[attr-defined]
    deputy_app = app if installed else WidgetCorsMiddleware(app)

    with running(deputy_app) as deputy:
        page_html = SHOP_PAGE.format(deputy=deputy.url, agent=agent, key=key)
        shop = Starlette(routes=[Route("/", lambda _request: HTMLResponse(page_html))])
        with running(shop) as host, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
            context = browser.new_context(viewport={"width": 1100, "height": 760})
            context.add_init_script(SOCKET_SPY)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(host.url)

            # The host page's CSS does not reach the widget.
            launcher = page.get_by_role("button", name="Open chat")
            expect(launcher).to_be_visible()
            assert launcher.evaluate("b => getComputedStyle(b).color") == "rgb(255, 255, 255)"
            launcher.click()
            panel = page.get_by_role("dialog", name="Chat with Ada")
            expect(panel).to_be_visible()
            log = page.get_by_role("log")
            assert log.get_attribute("aria-live") == "polite"
            expect(page.locator(".msg.agent").first).to_have_text(GREETING, timeout=WAIT_MS)
            assert log.evaluate("l => getComputedStyle(l).fontSize") != "40px"

            # A message: the typing indicator shows while the agent works, then the reply
            # streams in (reply.delta events) and the indicator goes.
            box = page.get_by_role("textbox", name="Your message")
            box.fill(HELD)
            box.press("Enter")
            typing = page.get_by_role("status").filter(has_text="Ada is typing")
            expect(typing).to_be_visible(timeout=WAIT_MS)
            expect(page.locator(".msg.customer")).to_have_text([HELD], timeout=WAIT_MS)
            release.set()
            expect(page.locator(".msg.agent").nth(1)).to_have_text(
                ECHO_PREFIX + HELD, timeout=WAIT_MS
            )
            expect(typing).to_be_hidden(timeout=WAIT_MS)
            frames = page.evaluate("window.__frames")
            assert frames.count("reply.delta") >= 2, frames  # two sentences, two pieces

            # A file: stored, announced, answered.
            page.locator("input.file").set_input_files(
                files=[{"name": "receipt.png", "mimeType": "image/png", "buffer": PNG}]
            )
            line = f"[attachment: receipt.png (image/png, {len(PNG)} bytes)]"
            expect(page.locator(".msg.agent").nth(2)).to_have_text(
                ECHO_PREFIX + line, timeout=WAIT_MS
            )
            expect(page.locator(".msg.customer").nth(1)).to_contain_text("receipt.png")
            page.screenshot(path=str(SCREENSHOT))

            # A reload: the same conversation, restored in order, nothing twice.
            before = texts(page, ".msg")
            kept = "Object.values(localStorage).map(v => JSON.parse(v).session.conversation_id)"
            stored = page.evaluate(kept)
            page.reload()
            expect(page.get_by_role("dialog", name="Chat with Ada")).to_be_visible()
            expect(page.locator(".msg")).to_have_count(len(before), timeout=WAIT_MS)
            assert texts(page, ".msg") == before
            assert page.evaluate(kept) == stored
            conversations = api.client.get("/v1/conversations", headers=api.headers()).json()
            assert len(conversations["data"]) == 1
            cid = conversations["data"][0]["id"]
            assert stored == [cid]
            assert conversations["data"][0]["channel"] == "chat"

            def say_elsewhere(text: str) -> None:
                said = api.client.post(
                    f"/v1/conversations/{cid}/messages", json={"text": text}, headers=api.headers()
                )
                assert said.status_code == 200, said.text

            # The WebSocket closed under the widget: it opens another from where it was.
            sockets = page.evaluate("window.__sockets.length")
            page.evaluate("window.__sockets[window.__sockets.length - 1].close(4000)")
            say_elsewhere("Sent while the socket was closed")
            expect(page.locator(".msg.agent").last).to_have_text(
                ECHO_PREFIX + "Sent while the socket was closed", timeout=WAIT_MS
            )
            assert page.evaluate("window.__sockets.length") > sockets
            newest = page.evaluate("window.__sockets[window.__sockets.length - 1].url")
            assert "after=" in newest and not newest.endswith("after=0")

            # The server restarted: the widget backs off, comes back and gets what was said
            # while it was away, once.
            deputy.stop()
            expect(page.locator("header .state")).to_have_text("Reconnecting…", timeout=WAIT_MS)
            say_elsewhere("Sent while the server was down")
            deputy.start()
            expect(page.locator(".msg.agent").last).to_have_text(
                ECHO_PREFIX + "Sent while the server was down", timeout=WAIT_MS
            )
            expect(page.locator("header .state")).to_have_text("", timeout=WAIT_MS)
            everything = texts(page, ".msg")
            assert len(everything) == len(set(everything)), everything
            transcript = api.client.get(
                f"/v1/conversations/{cid}/transcript", headers=api.headers()
            ).json()["entries"]
            shown = [
                e["text"]
                for e in transcript
                if e["kind"] in ("customer_message", "agent_message", "human_message")
            ]
            # What the widget shows is the transcript: in order, nothing lost, nothing twice.
            assert len(everything) == len(shown), (everything, shown)
            for seen, said in zip(everything, shown, strict=True):
                if said.startswith("[attachment: "):
                    assert seen.startswith("receipt.png \N{MIDDLE DOT} "), seen
                else:
                    assert seen == said

            # Closed by the business: the widget says so and offers a new conversation.
            closed = api.client.post(
                f"/v1/conversations/{cid}/close", json={}, headers=api.headers()
            )
            assert closed.status_code == 200, closed.text
            alert = page.get_by_role("alert")
            expect(alert).to_contain_text("This conversation has ended.", timeout=WAIT_MS)
            expect(box).to_be_disabled()
            alert.get_by_role("button", name="Start a new one").click()
            expect(page.locator(".msg")).to_have_text([GREETING], timeout=WAIT_MS)
            expect(box).to_be_enabled()
            listed = api.client.get("/v1/conversations", headers=api.headers()).json()["data"]
            assert len(listed) == 2 and cid in [c["id"] for c in listed]
            assert errors == []
            browser.close()


def test_the_script_is_cacheable_and_the_demo_page_embeds_it(api: Api) -> None:
    script = api.client.get("/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "max-age=" in script.headers["cache-control"]
    assert script.headers["cross-origin-resource-policy"] == "cross-origin"
    assert "attachShadow" in script.text and "/ws?after=" in script.text
    etag = script.headers["etag"]
    again = api.client.get("/widget.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""

    agent = echo_agent(api)
    page = api.client.get(f"/chat/{agent}")
    assert page.status_code == 200
    assert f'data-agent="{agent}"' in page.text and 'data-key-from="fragment"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "dpy_" not in page.text.replace("dpy_…", "")  # no key in the page itself
    assert api.client.get("/chat/not-an-agent").status_code == 404
    assert api.client.get('/chat/agt_"><script>').status_code == 404


def test_the_demo_page_chats_with_the_key_in_its_fragment(api: Api) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (Debian's chromium package); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    expect = sync_api.expect
    agent = echo_agent(api, channels={"chat": {"greeting": GREETING}}, persona={"name": "Ada"})
    key = widget_key(api, agent)
    with running(api.client.app) as deputy, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        page = browser.new_page()
        violations: list[str] = []
        page.on("console", lambda message: violations.append(message.text))
        page.goto(f"{deputy.url}/chat/{agent}#key={key}")
        expect(page.get_by_role("dialog", name="Chat with Ada")).to_be_visible()
        expect(page.locator(".msg.agent").first).to_have_text(GREETING, timeout=WAIT_MS)
        box = page.get_by_role("textbox", name="Your message")
        box.fill("Is anyone there?")
        box.press("Enter")
        expect(page.locator(".msg.agent").last).to_have_text(
            ECHO_PREFIX + "Is anyone there?", timeout=WAIT_MS
        )
        assert not [m for m in violations if "Content Security Policy" in m], violations
        browser.close()

"""Hugging Face GGUF downloads, against httpx's MockTransport: clear, fast failures offline, and a
resumable, verified download when the Hub answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from deputy.llm.errors import ModelNotInstalled
from deputy.llm.local import LocalModels
from deputy.llm.local.huggingface import HfDownloader, HfFile

REF = HfFile.parse("acme/Tiny-GGUF/tiny-Q4_K_M.gguf")
CONTENT = b"GGUF" + bytes(range(256)) * 400
SHA = hashlib.sha256(CONTENT).hexdigest()


def test_repository_file_names_are_parsed_and_checked() -> None:
    assert (REF.repo, REF.filename, REF.revision) == ("acme/Tiny-GGUF", "tiny-Q4_K_M.gguf", "main")
    pinned = HfFile.parse("acme/Tiny-GGUF@v1.0/q/tiny.gguf")
    assert (pinned.revision, pinned.filename, pinned.spec) == (
        "v1.0",
        "q/tiny.gguf",
        "acme/Tiny-GGUF@v1.0/q/tiny.gguf",
    )
    for bad in ("acme/tiny.gguf", "acme/Tiny/../x.gguf", "acme/Tiny/model.bin", "/x/y.gguf"):
        with pytest.raises(ValueError, match="owner"):
            HfFile.parse(bad)


@pytest.mark.parametrize(
    "failure",
    [httpx.ConnectError("[Errno -2] Name or service not known"), httpx.ConnectTimeout("")],
)
def test_no_network_fails_fast_with_what_to_do_instead(
    tmp_path: Path, failure: httpx.HTTPError
) -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise failure

    downloader = HfDownloader(tmp_path, transport=httpx.MockTransport(offline))
    assert downloader.timeout.connect == 5.0  # offline machines hear "no" within seconds
    with pytest.raises(ModelNotInstalled) as caught:
        downloader.download(REF)
    message = str(caught.value)
    assert "could not download local:hf:acme/Tiny-GGUF/tiny-Q4_K_M.gguf" in message
    assert type(failure).__name__ in message
    assert "DEPUTY_LOCAL_MODEL_PATH" in message
    assert downloader.downloaded(REF) is None


@pytest.mark.parametrize(
    ("status", "hint"), [(404, "does not exist"), (401, "DEPUTY_HF_TOKEN"), (503, "HTTP 503")]
)
def test_hub_refusals_are_explained(tmp_path: Path, status: int, hint: str) -> None:
    downloader = HfDownloader(
        tmp_path, transport=httpx.MockTransport(lambda _: httpx.Response(status))
    )
    with pytest.raises(ModelNotInstalled, match=hint):
        downloader.download(REF)


class FakeHub:
    """Redirects /resolve/ like the Hub does for LFS files (stating the sha256), serves ranges."""

    def __init__(self, content: bytes, sha256: str) -> None:
        self.content = content
        self.sha256 = sha256
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.host == "huggingface.co":
            assert request.url.path == "/acme/Tiny-GGUF/resolve/main/tiny-Q4_K_M.gguf"
            return httpx.Response(
                302,
                headers={
                    "Location": "https://cdn.example/blob",
                    "X-Linked-Etag": f'"{self.sha256}"',
                },
            )
        wanted = request.headers.get("Range")
        if wanted:
            start = int(wanted.removeprefix("bytes=").rstrip("-"))
            return httpx.Response(206, content=self.content[start:])
        return httpx.Response(200, content=self.content)


def test_a_download_is_verified_stamped_and_not_repeated(tmp_path: Path) -> None:
    hub = FakeHub(CONTENT, SHA)
    downloader = HfDownloader(tmp_path, transport=httpx.MockTransport(hub))
    seen: list[tuple[int, int]] = []

    path = downloader.download(REF, progress=lambda done, total: seen.append((done, total)))

    assert path == tmp_path / "huggingface" / "acme" / "Tiny-GGUF" / "main" / "tiny-Q4_K_M.gguf"
    assert path.read_bytes() == CONTENT
    assert seen[-1] == (len(CONTENT), len(CONTENT))
    assert not list(path.parent.glob(".*.partial"))
    requests = len(hub.requests)
    assert downloader.download(REF) == path
    assert len(hub.requests) == requests  # the stamp answers; no second download


def test_an_interrupted_download_resumes_with_a_range_request(tmp_path: Path) -> None:
    hub = FakeHub(CONTENT, SHA)
    downloader = HfDownloader(tmp_path, transport=httpx.MockTransport(hub))
    final = downloader.path_for(REF)
    final.parent.mkdir(parents=True)
    final.with_name(f".{final.name}.partial").write_bytes(CONTENT[:5000])

    assert downloader.download(REF).read_bytes() == CONTENT
    assert hub.requests[-1].headers["Range"] == "bytes=5000-"


def test_a_download_that_misses_the_stated_sha256_is_discarded(tmp_path: Path) -> None:
    downloader = HfDownloader(tmp_path, transport=httpx.MockTransport(FakeHub(CONTENT, "a" * 64)))
    with pytest.raises(ModelNotInstalled, match="discarded"):
        downloader.download(REF)
    final = downloader.path_for(REF)
    assert not final.exists()
    assert not final.with_name(f".{final.name}.partial").exists()


def test_a_file_that_is_not_gguf_is_discarded(tmp_path: Path) -> None:
    html = b"<html>login</html>"
    hub = FakeHub(html, hashlib.sha256(html).hexdigest())
    with pytest.raises(ModelNotInstalled, match="not a GGUF"):
        HfDownloader(tmp_path, transport=httpx.MockTransport(hub)).download(REF)


def test_downloads_can_be_switched_off(tmp_path: Path) -> None:
    models = LocalModels(tmp_path, allow_downloads=False, hf_endpoint="http://127.0.0.1:9")
    name = "local:hf:acme/Tiny-GGUF/tiny-Q4_K_M.gguf"
    assert models.status(name).state == "not_installed"
    with pytest.raises(ModelNotInstalled, match="downloads are disabled"):
        models.ensure(name)

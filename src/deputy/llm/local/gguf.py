"""Read the header of a GGUF file (magic, version, scalar metadata) without loading the model:
enough to refuse a file that is not GGUF and to size the context and the KV cache."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

MAGIC = b"GGUF"
_SCALARS: dict[int, str] = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_STRING = 8
_ARRAY = 9
_MAX_STRING = 1 << 24


class NotGguf(ValueError):
    """The file is not a GGUF model (or its header is damaged)."""


@dataclass(frozen=True, slots=True)
class GgufInfo:
    version: int
    tensor_count: int
    metadata: dict[str, str | int | float | bool] = field(default_factory=dict)  # scalars only

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", ""))

    def arch_int(self, key: str) -> int | None:
        value = self.metadata.get(f"{self.architecture}.{key}")
        return int(value) if isinstance(value, int | float) else None

    @property
    def context_length(self) -> int | None:
        return self.arch_int("context_length")

    def kv_cache_bytes(self, context_tokens: int) -> int | None:
        """Size of an f16 K+V cache for `context_tokens`, from the attention shape."""
        layers = self.arch_int("block_count")
        width = self.arch_int("embedding_length")
        heads = self.arch_int("attention.head_count")
        kv_heads = self.arch_int("attention.head_count_kv") or heads
        if not (layers and width and heads and kv_heads):
            return None
        return 2 * layers * context_tokens * kv_heads * (width // heads) * 2


def read_gguf_info(path: Path) -> GgufInfo:
    try:
        with path.open("rb") as handle:
            if handle.read(4) != MAGIC:
                raise NotGguf(f"{path} is not a GGUF file")
            version, tensors, count = struct.unpack("<IQQ", _exact(handle, 20))
            metadata: dict[str, str | int | float | bool] = {}
            for _ in range(count):
                key = _string(handle)
                (kind,) = struct.unpack("<I", _exact(handle, 4))
                value = _value(handle, kind)
                if value is not None:
                    metadata[key] = value
            return GgufInfo(version, tensors, metadata)
    except (struct.error, UnicodeDecodeError) as exc:
        raise NotGguf(f"{path} has a damaged GGUF header: {exc}") from exc


def _exact(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise NotGguf("truncated GGUF header")
    return data


def _string(handle: BinaryIO) -> str:
    (size,) = struct.unpack("<Q", _exact(handle, 8))
    if size > _MAX_STRING:
        raise NotGguf("implausible string length in GGUF header")
    return _exact(handle, size).decode("utf-8")


def _value(handle: BinaryIO, kind: int) -> str | int | float | bool | None:
    if kind in _SCALARS:
        fmt = _SCALARS[kind]
        value: str | int | float | bool = struct.unpack(fmt, _exact(handle, struct.calcsize(fmt)))[
            0
        ]
        return value
    if kind == _STRING:
        return _string(handle)
    if kind == _ARRAY:
        item_kind, length = struct.unpack("<IQ", _exact(handle, 12))
        if item_kind in _SCALARS:
            handle.seek(struct.calcsize(_SCALARS[item_kind]) * length, 1)
        else:
            for _ in range(length):
                _value(handle, item_kind)
        return None
    raise NotGguf(f"unknown GGUF value type {kind}")

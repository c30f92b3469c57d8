"""Prefixed, time-sortable identifiers (`ws_01J…`): a 48-bit millisecond clock plus 80 random bits,
Crockford base32, so ids sort by creation time and make stable pagination cursors."""

from __future__ import annotations

import os
import re
import time
from typing import Literal

IdKind = Literal[
    "ws",
    "mem",
    "key",
    "mat",
    "agt",
    "ver",
    "job",
    "mep",
    "use",
    "tsrc",
    "tcall",
    "kdoc",
    "kchk",
    "fact",
    "cus",
    "cnv",
    "ent",
    "turn",
    "bld",
    "bch",
    "sbx",
    "aud",
    "prp",
    "rev",
    "dep",
    "imp",
    "chn",
    "chin",
    "chb",
    "cht",
    "chout",
    "pln",
    "bdg",
    "dsp",
    "inv",
    "alr",
    "ntf",
    "altg",
    "prb",
    "prr",
]

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BODY = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(kind: IdKind) -> str:
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{kind}_{_encode((millis << 80) | randomness, 26)}"


def is_id(value: str, kind: IdKind) -> bool:
    prefix, _, body = value.partition("_")
    return prefix == kind and bool(_BODY.match(body))

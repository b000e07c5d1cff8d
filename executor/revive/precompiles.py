"""The Ethereum precompiles pallet-revive provides at ``0x01..0x09``.

A ``call`` (or ``delegate_call``) to one of these addresses runs the precompile instead
of looking up contract code, as pallet-revive does:

======  ==========  ==================================================================
addr    name        output
======  ==========  ==================================================================
0x01    ecrecover   the signer's address left-padded to 32 bytes; **empty** (and
                    success) for any invalid signature, as the EVM gives
0x02    sha256      32 bytes
0x03    ripemd160   20 bytes left-padded to 32
0x04    identity    the input
0x05    modexp      ``base ** exp % mod`` big-endian, ``mod_len`` bytes (EIP-198)
0x06    bn128 add   a point of alt_bn128 G1 (EIP-196), 64 bytes
0x07    bn128 mul   a point of G1, 64 bytes
0x08    pairing     32-byte 1 or 0 (EIP-197)
0x09    blake2f     the BLAKE2b compression function F (EIP-152), 64 bytes
======  ==========  ==================================================================

Bad input that the EVM rejects (a point not on the curve, a blake2f input that is not
213 bytes, a modexp length above 1024 bytes, ...) fails the call, which the calling
contract sees as ``success == false`` (error ``PrecompileFailed``).

**Gas.**  pallet-revive charges each builtin a benchmarked weight
(``RuntimeCosts::EcdsaRecovery``, ``HashSha256(len)``, ``Ripemd160(len)``,
``Identity(len)``, ``Bn128Add``, ``Bn128Mul``, ``Bn128Pairing(n)``, ``Blake2F(rounds)``:
per-runtime benchmark results), and modexp the EIP-2565 EVM gas times the pallet's
``WEIGHT_PER_GAS`` = 10^12 / 40_000_000 = 25_000 ps (times 20 when the modulus is even,
as pallet-revive does).  This executor meters PolkaVM gas at a nominal 10_000 ps per gas
(:mod:`executor.revive.costs`), so every precompile is charged its Ethereum gas
(Istanbul/Berlin schedule, EIP-1108 for bn128, EIP-2565 for modexp) times
25_000 / 10_000 = 2.5, rounded up -- the conversion pallet-revive itself applies to
modexp, used for all of them because the benchmarked weights differ per runtime.  One
published benchmark for comparison: asset-hub-westend prices ``bn128_pairing(n)`` at
4_968_864_584 + 6_023_077_711 n ps (~496_886 + 602_308 n gas here), about five times the
converted EVM price.  The table lives in :class:`PrecompileCosts`; pass another to
:class:`~executor.revive.runtime.ReviveRuntime` via ``CostTable.precompiles``.

The cryptography comes from well-kept libraries: ``coincurve`` (libsecp256k1) for
ecrecover, ``hashlib`` for sha256, pycryptodome for RIPEMD-160, ``py_ecc`` for alt_bn128
(the ``contracts`` extra).  BLAKE2b's F with a caller-chosen round count is not exposed
by any of them, so :func:`blake2b_f` implements RFC 7693 section 3.2 here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from executor.revive.errors import OUT_OF_GAS, PRECOMPILE_FAILED
from executor.revive.hashing import keccak256


class PrecompileFailure(Exception):  # noqa: N818 - ends the precompile call, like ExecError
    """Raised by a precompile to fail the call (``reason`` says why)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class PrecompileCosts:
    """Ethereum gas of each precompile and the EVM-gas-to-PolkaVM-gas conversion
    (``ps_per_evm_gas`` / ``ps_per_gas``, rounded up)."""

    ecrecover: int = 3000
    sha256: int = 60
    sha256_per_word: int = 12
    ripemd160: int = 600
    ripemd160_per_word: int = 120
    identity: int = 15
    identity_per_word: int = 3
    modexp_min: int = 200
    modexp_even_modulus_factor: int = 20
    bn128_add: int = 150
    bn128_mul: int = 6000
    bn128_pairing: int = 45000
    bn128_pairing_per_pair: int = 34000
    blake2f_per_round: int = 1
    ps_per_evm_gas: int = 25_000
    ps_per_gas: int = 10_000
    blake2f_max_rounds: int = 1_000_000
    """Not an EVM rule: F runs in pure Python here (about 10 us a round), so rounds are
    capped to keep one call within seconds; more rounds fail the call."""

    def to_gas(self, evm_gas: int) -> int:
        """EVM gas -> PolkaVM gas (rounded up)."""
        return -(-evm_gas * self.ps_per_evm_gas // self.ps_per_gas)


DEFAULT_PRECOMPILE_COSTS = PrecompileCosts()


def _words(n: int) -> int:
    return (n + 31) >> 5


# ---- 0x01..0x04 ----
def ecrecover_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.ecrecover


def ecrecover(data: bytes) -> bytes:
    data = data[:128].ljust(128, b"\0")
    msg, v_word, r, s = data[:32], data[32:64], data[64:96], data[96:128]
    if any(v_word[:31]) or v_word[31] not in (27, 28):
        return b""
    try:
        from coincurve import PublicKey
    except ImportError as exc:  # pragma: no cover - the extra is installed by make
        raise RuntimeError("ecrecover needs coincurve: pip install 'pvm-executor[contracts]'"
                           ) from exc
    try:
        key = PublicKey.from_signature_and_message(r + s + bytes([v_word[31] - 27]), msg,
                                                   hasher=None)
    except Exception:  # noqa: BLE001 - any invalid signature: empty output, as the EVM
        return b""
    return bytes(12) + keccak256(key.format(compressed=False)[1:])[12:]


def sha256_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.sha256 + c.sha256_per_word * _words(len(data))


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def ripemd160_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.ripemd160 + c.ripemd160_per_word * _words(len(data))


def ripemd160(data: bytes) -> bytes:
    from Crypto.Hash import RIPEMD160

    return bytes(12) + RIPEMD160.new(data).digest()


def identity_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.identity + c.identity_per_word * _words(len(data))


def identity(data: bytes) -> bytes:
    return bytes(data)


# ---- 0x05 modexp (EIP-198, gas EIP-2565) ----
_MODEXP_MAX_LEN = 1024
"""pallet-revive rejects base, exponent or modulus lengths above 1024 bytes."""


def _modexp_lengths(data: bytes) -> tuple[int, int, int]:
    head = data[:96].ljust(96, b"\0")
    lens = tuple(int.from_bytes(head[i:i + 32], "big") for i in (0, 32, 64))
    for what, n in zip(("base", "exponent", "modulus"), lens, strict=True):
        if n > _MODEXP_MAX_LEN:
            raise PrecompileFailure(f"modexp {what} length {n} above {_MODEXP_MAX_LEN}")
    return lens[0], lens[1], lens[2]


def _field(data: bytes, start: int, n: int) -> bytes:
    return data[start:start + n].ljust(n, b"\0")


def modexp_gas(data: bytes, c: PrecompileCosts) -> int:
    base_len, exp_len, mod_len = _modexp_lengths(data)
    if mod_len == 0:
        return 0
    exp_bytes = _field(data, 96 + base_len, exp_len)
    modulus = int.from_bytes(_field(data, 96 + base_len + exp_len, mod_len), "big")
    words = (max(base_len, mod_len) + 7) // 8
    complexity = words * words
    head = int.from_bytes(exp_bytes[:32], "big")
    if exp_len <= 32:
        iterations = max(head.bit_length() - 1, 0)
    else:
        iterations = 8 * (exp_len - 32) + max(head.bit_length() - 1, 0)
    gas = max(c.modexp_min, complexity * max(iterations, 1) // 3)
    return gas * (c.modexp_even_modulus_factor if modulus % 2 == 0 else 1)


def modexp(data: bytes) -> bytes:
    base_len, exp_len, mod_len = _modexp_lengths(data)
    if mod_len == 0:
        return b""
    base = int.from_bytes(_field(data, 96, base_len), "big")
    exponent = int.from_bytes(_field(data, 96 + base_len, exp_len), "big")
    modulus = int.from_bytes(_field(data, 96 + base_len + exp_len, mod_len), "big")
    result = 0 if modulus <= 1 else pow(base, exponent, modulus)
    return result.to_bytes(mod_len, "big")


# ---- 0x06..0x08 alt_bn128 (EIP-196/197) ----
def _bn() -> Any:
    try:
        from py_ecc import optimized_bn128
    except ImportError as exc:  # pragma: no cover - the extra is installed by make
        raise RuntimeError("bn128 precompiles need py_ecc: pip install "
                           "'pvm-executor[contracts]'") from exc
    return optimized_bn128


def _g1(bn: Any, raw: bytes) -> Any:
    x, y = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
    p = bn.field_modulus
    if x >= p or y >= p:
        raise PrecompileFailure("G1 coordinate not below the field modulus")
    if x == 0 and y == 0:
        return bn.Z1
    point = (bn.FQ(x), bn.FQ(y), bn.FQ.one())
    if not bn.is_on_curve(point, bn.b):
        raise PrecompileFailure("G1 point not on the curve")
    return point


def _g2(bn: Any, raw: bytes) -> Any:
    x_im, x_re, y_im, y_re = (int.from_bytes(raw[i:i + 32], "big") for i in (0, 32, 64, 96))
    p = bn.field_modulus
    if max(x_im, x_re, y_im, y_re) >= p:
        raise PrecompileFailure("G2 coordinate not below the field modulus")
    if x_im == x_re == y_im == y_re == 0:
        return bn.Z2
    point = (bn.FQ2([x_re, x_im]), bn.FQ2([y_re, y_im]), bn.FQ2.one())
    if not bn.is_on_curve(point, bn.b2):
        raise PrecompileFailure("G2 point not on the curve")
    if not bn.is_inf(bn.multiply(point, bn.curve_order)):
        raise PrecompileFailure("G2 point not in the subgroup")
    return point


def _g1_bytes(bn: Any, point: Any) -> bytes:
    if bn.is_inf(point):
        return bytes(64)
    x, y = bn.normalize(point)
    return int(x).to_bytes(32, "big") + int(y).to_bytes(32, "big")


def bn128_add_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.bn128_add


def bn128_add(data: bytes) -> bytes:
    bn = _bn()
    data = data[:128].ljust(128, b"\0")
    return _g1_bytes(bn, bn.add(_g1(bn, data[:64]), _g1(bn, data[64:128])))


def bn128_mul_gas(data: bytes, c: PrecompileCosts) -> int:
    return c.bn128_mul


def bn128_mul(data: bytes) -> bytes:
    bn = _bn()
    data = data[:96].ljust(96, b"\0")
    scalar = int.from_bytes(data[64:96], "big") % bn.curve_order
    return _g1_bytes(bn, bn.multiply(_g1(bn, data[:64]), scalar))


def bn128_pairing_gas(data: bytes, c: PrecompileCosts) -> int:
    if len(data) % 192:
        raise PrecompileFailure(f"pairing input of {len(data)} bytes, not a multiple of 192")
    return c.bn128_pairing + c.bn128_pairing_per_pair * (len(data) // 192)


def bn128_pairing(data: bytes) -> bytes:
    if len(data) % 192:
        raise PrecompileFailure(f"pairing input of {len(data)} bytes, not a multiple of 192")
    bn = _bn()
    product = bn.FQ12.one()
    for i in range(0, len(data), 192):
        a = _g1(bn, data[i:i + 64])
        b = _g2(bn, data[i + 64:i + 192])
        if bn.is_inf(a) or bn.is_inf(b):
            continue  # e(0, Q) = e(P, 0) = 1
        product = product * bn.pairing(b, a, final_exponentiate=False)
    ok = bn.final_exponentiate(product) == bn.FQ12.one()
    return int(ok).to_bytes(32, "big")


# ---- 0x09 blake2f (EIP-152) ----
_MASK64 = (1 << 64) - 1
_IV = (0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
       0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179)
_SIGMA = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
    (14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3),
    (11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4),
    (7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8),
    (9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13),
    (2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9),
    (12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11),
    (13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10),
    (6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5),
    (10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0),
)
_MIX = ((0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
        (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14))


def _rotr(x: int, n: int) -> int:
    return ((x >> n) | (x << (64 - n))) & _MASK64


def blake2b_f(rounds: int, h: list[int], m: list[int], t: int, final: bool) -> list[int]:
    """BLAKE2b's compression function F (RFC 7693 3.2) with ``rounds`` rounds."""
    v = list(h) + list(_IV)
    v[12] ^= t & _MASK64
    v[13] ^= (t >> 64) & _MASK64
    if final:
        v[14] ^= _MASK64
    for r in range(rounds):
        s = _SIGMA[r % 10]
        for i, (a, b, c, d) in enumerate(_MIX):
            x, y = m[s[2 * i]], m[s[2 * i + 1]]
            v[a] = (v[a] + v[b] + x) & _MASK64
            v[d] = _rotr(v[d] ^ v[a], 32)
            v[c] = (v[c] + v[d]) & _MASK64
            v[b] = _rotr(v[b] ^ v[c], 24)
            v[a] = (v[a] + v[b] + y) & _MASK64
            v[d] = _rotr(v[d] ^ v[a], 16)
            v[c] = (v[c] + v[d]) & _MASK64
            v[b] = _rotr(v[b] ^ v[c], 63)
    return [h[i] ^ v[i] ^ v[i + 8] for i in range(8)]


def _blake2f_rounds(data: bytes) -> int:
    if len(data) != 213:
        raise PrecompileFailure(f"blake2f input of {len(data)} bytes, not 213")
    return int.from_bytes(data[:4], "big")


def blake2f_gas(data: bytes, c: PrecompileCosts) -> int:
    rounds = _blake2f_rounds(data)
    if rounds > c.blake2f_max_rounds:
        raise PrecompileFailure(f"blake2f with {rounds} rounds, above this executor's limit "
                                f"of {c.blake2f_max_rounds}")
    return c.blake2f_per_round * rounds


def blake2f(data: bytes) -> bytes:
    rounds = _blake2f_rounds(data)
    if data[212] not in (0, 1):
        raise PrecompileFailure(f"blake2f final flag {data[212]}, not 0 or 1")
    h = [int.from_bytes(data[4 + 8 * i:12 + 8 * i], "little") for i in range(8)]
    m = [int.from_bytes(data[68 + 8 * i:76 + 8 * i], "little") for i in range(16)]
    t = int.from_bytes(data[196:212], "little")
    out = blake2b_f(rounds, h, m, t, bool(data[212]))
    return b"".join(w.to_bytes(8, "little") for w in out)


# ---- the table ----
@dataclass(frozen=True)
class Precompile:
    """``gas(input, costs)`` in EVM gas (may raise :class:`PrecompileFailure` for input
    rejected before any charge) and ``run(input)`` -> output."""

    name: str
    gas: Callable[[bytes, PrecompileCosts], int]
    run: Callable[[bytes], bytes]


def _address(n: int) -> bytes:
    return n.to_bytes(20, "big")


PRECOMPILES: dict[bytes, Precompile] = {
    _address(1): Precompile("ecrecover", ecrecover_gas, ecrecover),
    _address(2): Precompile("sha256", sha256_gas, sha256),
    _address(3): Precompile("ripemd160", ripemd160_gas, ripemd160),
    _address(4): Precompile("identity", identity_gas, identity),
    _address(5): Precompile("modexp", modexp_gas, modexp),
    _address(6): Precompile("bn128_add", bn128_add_gas, bn128_add),
    _address(7): Precompile("bn128_mul", bn128_mul_gas, bn128_mul),
    _address(8): Precompile("bn128_pairing", bn128_pairing_gas, bn128_pairing),
    _address(9): Precompile("blake2f", blake2f_gas, blake2f),
}
"""The builtin precompiles by 20-byte address."""


def precompile_at(address: bytes) -> Precompile | None:
    """The precompile at ``address`` or ``None``."""
    return PRECOMPILES.get(address)


@dataclass(frozen=True)
class PrecompileResult:
    """``output`` (empty on failure), ``gas`` used (PolkaVM gas), ``error`` ``None`` or
    ``"OutOfGas"`` / :data:`PRECOMPILE_FAILED`, ``reason`` the failure text."""

    output: bytes
    gas: int
    error: str | None
    reason: str = ""


def run_precompile(pre: Precompile, data: bytes, gas_limit: int,
                   costs: PrecompileCosts = DEFAULT_PRECOMPILE_COSTS) -> PrecompileResult:
    """Charges and runs ``pre`` on ``data`` with at most ``gas_limit`` gas."""
    try:
        gas = costs.to_gas(pre.gas(data, costs))
    except PrecompileFailure as exc:
        return PrecompileResult(b"", 0, PRECOMPILE_FAILED, exc.reason)
    if gas > gas_limit:
        return PrecompileResult(b"", gas_limit, OUT_OF_GAS, f"{pre.name} needs {gas} gas")
    try:
        return PrecompileResult(pre.run(data), gas, None)
    except PrecompileFailure as exc:
        return PrecompileResult(b"", gas, PRECOMPILE_FAILED, exc.reason)

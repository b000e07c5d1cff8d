"""Ethereum gas as pallet-revive shows it to an Ethereum client, from what this executor
meters (PolkaVM gas) and a transaction's storage deposit.

One place for the formula, for the contract-testing harness (``contracts``) and the
dev node (``chain_sim.node``) alike.  It follows polkadot-sdk's stable2503-era
pallet-revive and its ``eth-rpc`` server (read in ``substrate/frame/revive``:
``Pallet::bare_eth_transact``, ``Pallet::evm_fee_to_gas``, ``evm/gas_encoder.rs`` and the
RPC's receipt extractor); the numbers are our own code.

* **Receipt ``gasUsed``** (what a wallet shows after the transaction): the fee the
  transaction paid (``TransactionFeePaid``: actual fee plus tip, in native units) times
  ``NativeToEthRatio``, divided by the transaction's gas price (rounded down).  The
  fee is ``pallet-transaction-payment``'s: the base fee of the extrinsic
  (``ExtrinsicBaseWeight`` through ``WeightToFee``), a length fee per byte of the
  encoded ``eth_transact`` extrinsic, and the weight fee of the dispatch times the
  fee multiplier.  The **storage deposit is not in it**: pallet-revive holds the
  deposit on the signer's balance, apart from the fee.
* **``eth_estimateGas``**: the fee computed the same way but on the weight *limit* the
  estimate stands for (the needed ref_time rounded up to a power of two), converted to
  gas rounded up (``evm_fee_to_gas``), then encoded with the weight and deposit *limits* the
  transaction needs (``GasEncoder``): the fee gas rounded up to a multiple of
  1,000,000, plus ``rr·10⁴ + pp·10² + dd`` where ``rr``, ``pp``, ``dd`` are the
  log₂ (rounded up) of the ref_time, proof_size and storage deposit.  The runtime
  decodes the gas limit of the transaction back into those limits, which is why the
  estimate's last six digits look odd.

Weight: this executor meters PolkaVM gas; one gas stands for ``ref_time_per_gas``
picoseconds of ref_time (10,000, the nominal rate :mod:`executor.revive.costs` is
built on).  Proof size is not metered here: it is taken as 0, which pallet-revive's
``WeightToFee`` of the dev runtime ignores anyway when ref_time dominates.

The runtime-specific numbers (fee per weight and per byte, base weight, deposits, the
native/EVM decimals ratio) are :class:`EthGasSchedule` fields; the defaults are the
revive dev-node runtime's as read in polkadot-sdk (``NativeToEthRatio`` 10⁶: 12 native
decimals against 18 on the Ethereum side; ``TransactionByteFee`` 10 milli-cents
= 10⁸ native units; one native unit per picosecond of ref_time; 20 cents per storage
item and 1 milli-cent per byte of deposit; ``GAS_PRICE`` 1,000 wei), which later
releases changed (a fee multiplier and ``GasScale`` in the gas price, the deposit folded
into the gas).  Set them to your runtime's values.
"""

from __future__ import annotations

from dataclasses import dataclass

DOLLARS = 10**12
CENTS = DOLLARS // 100
MILLICENTS = CENTS // 1000


@dataclass(frozen=True)
class EthGasSchedule:
    """What turns weight, length and deposit into Ethereum gas (see the module)."""

    ref_time_per_gas: int = 10_000
    """Picoseconds of ref_time one PolkaVM gas stands for."""
    native_to_eth_ratio: int = 1_000_000
    """``NativeToEthRatio``: EVM wei per native unit."""
    gas_price: int = 1_000
    """``GAS_PRICE``: wei per gas (the gas price the pallet reports and wallets use)."""
    fee_per_ref_time: int = 1
    """``WeightToFee``: native units per picosecond of ref_time."""
    fee_multiplier: int = 1
    """``NextFeeMultiplier`` (an integer here; 1 on the dev runtime)."""
    byte_fee: int = 10 * MILLICENTS
    """``TransactionByteFee``: native units per byte of the encoded extrinsic."""
    base_ref_time: int = 125_000_000
    """``ExtrinsicBaseWeight`` in picoseconds (runtime-benchmarked; 125 µs here)."""
    dispatch_ref_time: int = 0
    """Weight of the ``call``/``instantiate`` dispatchable itself, on top of the gas
    the contract used (runtime-benchmarked; not modelled by default)."""
    deposit_per_item: int = 20 * CENTS
    """``DepositPerItem``: native units held per storage item."""
    deposit_per_byte: int = 1 * MILLICENTS
    """``DepositPerByte``: native units held per byte of storage."""

    def ref_time(self, pvm_gas: int) -> int:
        """The ref_time (ps) of ``pvm_gas`` PolkaVM gas plus the dispatch weight."""
        return pvm_gas * self.ref_time_per_gas + self.dispatch_ref_time

    def tx_fee(self, ref_time: int, length: int) -> int:
        """``compute_fee``: base fee + length fee + weight fee x multiplier (native)."""
        base = self.base_ref_time * self.fee_per_ref_time
        return base + length * self.byte_fee + \
            ref_time * self.fee_per_ref_time * self.fee_multiplier

    def deposit(self, items: int, nbytes: int) -> int:
        """The storage deposit (native units) of ``items`` items of ``nbytes`` bytes
        (negative counts: a refund)."""
        return items * self.deposit_per_item + nbytes * self.deposit_per_byte

    def gas_used(self, pvm_gas: int, length: int, tip: int = 0) -> int:
        """A receipt's ``gasUsed``: (fee + tip) x ratio / gas price, rounded down."""
        fee = self.tx_fee(self.ref_time(pvm_gas), length)
        return (fee + tip) * self.native_to_eth_ratio // self.gas_price

    def gas_estimate(self, pvm_gas: int, length: int, deposit: int,
                     proof_size: int = 0) -> int:
        """``eth_estimateGas``: the fee as gas (rounded up) encoded with the weight and
        deposit the transaction needs (``GasEncoder``)."""
        needed = pvm_gas * self.ref_time_per_gas
        # the fee is charged on the dispatch with the limits the estimate encodes:
        # the needed ref_time rounded up to a power of two (GasEncoder's decoding)
        limit = 1 << _log2_up(needed) if needed else 0
        fee_wei = self.tx_fee(limit + self.dispatch_ref_time, length) * self.native_to_eth_ratio
        raw = -(-fee_wei // self.gas_price)
        return encode_gas(raw, needed, proof_size, max(deposit, 0))


def _log2_up(value: int) -> int:
    """⌈log₂ value⌉ (0 for 0 and 1)."""
    return 0 if value <= 1 else (value - 1).bit_length()


def encode_gas(raw_gas: int, ref_time: int, proof_size: int, deposit: int) -> int:
    """pallet-revive's gas encoding (stable2503 ``GasEncoder``): the log₂ (rounded up)
    of deposit, proof size and ref_time in the last six decimal digits (two each,
    lowest first), ``raw_gas`` rounded up to a multiple of 10⁶ above them (kept at 0
    when it does not exceed the components)."""
    components = _log2_up(deposit) + 100 * _log2_up(proof_size) + 10_000 * _log2_up(ref_time)
    mask = 1_000_000
    if raw_gas <= components:
        return components
    return components + -(-raw_gas // mask) * mask


def decode_gas(gas: int) -> tuple[int, int, int]:
    """The ``(ref_time, proof_size, deposit)`` limits an encoded gas value stands for
    (powers of two; ``ValueError`` for a component above 64)."""
    parts = []
    for digits in (gas // 10_000 % 100, gas // 100 % 100, gas % 100):
        if digits > 64:
            raise ValueError(f"gas {gas}: component {digits} is above 64")
        parts.append(0 if digits == 0 else (1 << 64) - 1 if digits == 64 else 1 << digits)
    return parts[0], parts[1], parts[2]


def _rlp_len(payload_len: int) -> int:
    """Bytes of an RLP header for a payload of ``payload_len`` bytes."""
    return 1 if payload_len < 56 else 1 + (payload_len.bit_length() + 7) // 8


def _rlp_int_len(value: int) -> int:
    if 0 < value < 0x80:
        return 1
    n = (value.bit_length() + 7) // 8
    return _rlp_len(n) + n


def _rlp_bytes_len(n: int) -> int:
    return _rlp_len(n) + n  # (a single byte below 0x80 would be 1: calldata rarely)


def eth_tx_length(*, to: bytes | None, data: bytes, value: int, nonce: int,
                  chain_id: int, gas: int, gas_price: int) -> int:
    """Bytes of a signed EIP-1559 transaction with these fields: type byte and the RLP
    list ``[chain_id, nonce, tip, max_fee, gas, to, value, data, access_list,
    y_parity, r, s]`` (tip = max fee = ``gas_price``, empty access list, 32-byte
    r and s)."""
    fields = (_rlp_int_len(chain_id) + _rlp_int_len(nonce) + 2 * _rlp_int_len(gas_price)
              + _rlp_int_len(gas) + _rlp_bytes_len(0 if to is None else len(to))
              + _rlp_int_len(value) + _rlp_bytes_len(len(data)) + 1  # access list: c0
              + 1 + 2 * _rlp_bytes_len(32))                           # y parity, r, s
    return 1 + _rlp_len(fields) + fields


def eth_transact_length(*, to: bytes | None, data: bytes, value: int, nonce: int,
                        chain_id: int, gas: int, gas_price: int) -> int:
    """Bytes of the ``Revive.eth_transact`` extrinsic carrying that transaction (what
    the length fee is charged on): the transaction wrapped as a bare extrinsic
    (compact length, version byte, pallet and call index, compact payload length)."""
    payload = eth_tx_length(to=to, data=data, value=value, nonce=nonce, chain_id=chain_id,
                            gas=gas, gas_price=gas_price)
    call = 2 + _compact_len(payload) + payload
    body = 1 + call
    return _compact_len(body) + body


def _compact_len(n: int) -> int:
    """Bytes of SCALE's compact encoding of ``n``."""
    if n < 1 << 6:
        return 1
    if n < 1 << 14:
        return 2
    if n < 1 << 30:
        return 4
    return 1 + (n.bit_length() + 7) // 8


DEFAULT_ETH_GAS = EthGasSchedule()

"""Constants of the pallet-revive host API (shared/spec/revive-host-api.md sections 1.9 and 2).

The values follow polkadot-sdk stable2503 (the runtime resolc 0.3.0 targets) where the
spec knows them; where the spec marks a value UNVERIFIED the choice is noted here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

SENTINEL = 0xFFFF_FFFF
"""``u32::MAX``: "absent" (fixed 32-byte key, skipped output, no salt, no previous value)."""

MASK32 = 0xFFFF_FFFF
MASK64 = (1 << 64) - 1
U256_MAX = (1 << 256) - 1

EMPTY_CODE_HASH = bytes.fromhex(
    "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
"""``keccak256(b"")``: the code hash of an existing account without code."""

ZERO_ADDRESS = bytes(20)
GAS_PRICE = 1000
"""``evm::runtime::GAS_PRICE`` of the 2025 sources (2503 value UNVERIFIED)."""


class ReturnFlags(enum.IntFlag):
    """Flags of ``seal_return``."""

    REVERT = 0x1


class CallFlags(enum.IntFlag):
    """Flags of ``call`` and ``delegate_call``."""

    FORWARD_INPUT = 0x01
    CLONE_INPUT = 0x02
    TAIL_CALL = 0x04
    ALLOW_REENTRY = 0x08
    READ_ONLY = 0x10


class StorageFlags(enum.IntFlag):
    """Flags of the storage functions."""

    TRANSIENT = 0x1


ALL_CALL_FLAGS = int(CallFlags.FORWARD_INPUT | CallFlags.CLONE_INPUT | CallFlags.TAIL_CALL
                     | CallFlags.ALLOW_REENTRY | CallFlags.READ_ONLY)


class ReturnCode(enum.IntEnum):
    """``ReturnErrorCode`` in ``a0`` (2503 numbering, spec section 1.7)."""

    SUCCESS = 0
    CALLEE_TRAPPED = 1
    CALLEE_REVERTED = 2
    KEY_NOT_FOUND = 3
    TRANSFER_FAILED = 4
    LOGGING_DISABLED = 5
    CALL_RUNTIME_FAILED = 6
    ECDSA_RECOVERY_FAILED = 7
    SR25519_VERIFY_FAILED = 8
    XCM_EXECUTION_FAILED = 9
    XCM_SEND_FAILED = 10
    OUT_OF_RESOURCES = 11
    DUPLICATE_CONTRACT_ADDRESS = 12  # UNVERIFIED in the spec: added after 11 by PR #7414


@dataclass(frozen=True)
class Limits:
    """Limits enforced by the runtime (spec section 2.2; 2503 values by default).

    ``call_stack_depth``      nested frames allowed besides the first (5 in 2503).
    ``payload_bytes``         max storage value and event data length (416 or 512 in 2503,
                              UNVERIFIED; 416 chosen, the value of the mid-2025 source).
    ``blob_bytes``            max code blob size at upload (about 256 KiB in 2503, UNVERIFIED).
    ``max_basic_block``       max instructions in one basic block at upload.
    ``max_static_memory``     max ro + rw + stack bytes at upload (our own simplification of
                              the pallet's interpreter memory estimate).
    ``contract_initial_nonce`` nonce of a new contract account: 0 in 2503 (PR #8734 of
                              June 2025 changed it to 1, the Ethereum value).
    """

    call_stack_depth: int = 5
    num_event_topics: int = 4
    payload_bytes: int = 416
    storage_key_bytes: int = 128
    transient_storage_bytes: int = 4096
    immutable_bytes: int = 4096
    blob_bytes: int = 256 * 1024
    max_basic_block: int = 1000
    max_static_memory: int = 1536 * 1024
    contract_initial_nonce: int = 0

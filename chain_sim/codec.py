"""The chain's SCALE types: one type registry of our own (scalecodec), and typed
encode/decode helpers.

Every byte string the chain hashes, signs, stores or sends -- extrinsics, calls,
headers, receipts and the values in state -- is SCALE-encoded with these types.
Decoding is strict: trailing bytes or a malformed value raise :class:`CodecError`
naming the type.
"""

from __future__ import annotations

from typing import Any

from scalecodec.base import RuntimeConfigurationObject, ScaleBytes
from scalecodec.type_registry import load_type_registry_preset

TYPES: dict[str, Any] = {
    # ---- calls (pallet index, call index, arguments; see chain_sim.extrinsic) ----
    "SimCall": {"type": "enum", "type_mapping": [
        ["System", "Null"],
        ["Timestamp", "Null"],
        ["Balances", "SimBalancesCall"],
        ["TransactionPayment", "Null"],
        ["Revive", "SimReviveCall"],
    ]},
    "SimMultiAddress": {"type": "enum", "type_mapping": [["Id", "[u8; 32]"]]},
    "SimBalancesCall": {"type": "enum", "type_mapping": [
        ["transfer_allow_death", "SimTransfer"],
        ["unused1", "Null"],
        ["unused2", "Null"],
        ["transfer_keep_alive", "SimTransfer"],
    ]},
    "SimTransfer": {"type": "struct", "type_mapping": [
        ["dest", "SimMultiAddress"],
        ["value", "Compact<u128>"],
    ]},
    "SimReviveCall": {"type": "enum", "type_mapping": [
        ["eth_transact", "SimEthTransact"],
        ["call", "SimContractCall"],
        ["instantiate", "SimInstantiate"],
        ["instantiate_with_code", "SimInstantiateWithCode"],
        ["upload_code", "SimUploadCode"],
    ]},
    "SimEthTransact": {"type": "struct", "type_mapping": [["payload", "HexBytes"]]},
    "SimWeight": {"type": "struct", "type_mapping": [
        ["ref_time", "Compact<u64>"],
        ["proof_size", "Compact<u64>"],
    ]},
    "SimUploadCode": {"type": "struct", "type_mapping": [
        ["code", "HexBytes"],
        ["storage_deposit_limit", "Compact<u128>"],
    ]},
    "SimInstantiate": {"type": "struct", "type_mapping": [
        ["value", "Compact<u128>"],
        ["gas_limit", "SimWeight"],
        ["storage_deposit_limit", "Compact<u128>"],
        ["code_hash", "[u8; 32]"],
        ["data", "HexBytes"],
        ["salt", "Option<[u8; 32]>"],
    ]},
    "SimInstantiateWithCode": {"type": "struct", "type_mapping": [
        ["value", "Compact<u128>"],
        ["gas_limit", "SimWeight"],
        ["storage_deposit_limit", "Compact<u128>"],
        ["code", "HexBytes"],
        ["data", "HexBytes"],
        ["salt", "Option<[u8; 32]>"],
    ]},
    "SimContractCall": {"type": "struct", "type_mapping": [
        ["dest", "[u8; 20]"],
        ["value", "Compact<u128>"],
        ["gas_limit", "SimWeight"],
        ["storage_deposit_limit", "Compact<u128>"],
        ["data", "HexBytes"],
    ]},
    # ---- extrinsics: the standard v4 signed envelope (inside a Vec<u8>) ----
    "SimSignedExtrinsic": {"type": "struct", "type_mapping": [
        ["version", "u8"],
        ["address_variant", "u8"],
        ["signer", "[u8; 32]"],
        ["signature_variant", "u8"],
        ["signature", "[u8; 64]"],
        ["era", "u8"],
        ["nonce", "Compact<u32>"],
        ["tip", "Compact<u128>"],
        ["call", "SimCall"],
    ]},
    "SimSigningPayload": {"type": "struct", "type_mapping": [
        ["call", "SimCall"],
        ["era", "u8"],
        ["nonce", "Compact<u32>"],
        ["tip", "Compact<u128>"],
        ["spec_version", "u32"],
        ["transaction_version", "u32"],
        ["genesis_hash", "[u8; 32]"],
        ["era_hash", "[u8; 32]"],
    ]},
    # ---- blocks ----
    "SimHeader": {"type": "struct", "type_mapping": [
        ["parent_hash", "[u8; 32]"],
        ["number", "Compact<u32>"],
        ["state_root", "[u8; 32]"],
        ["extrinsics_root", "[u8; 32]"],
        ["receipts_root", "[u8; 32]"],
        ["timestamp", "u64"],
        ["gas_limit", "u64"],
        ["gas_used", "u64"],
        ["author", "[u8; 32]"],
    ]},
    "SimBody": "Vec<HexBytes>",
    "SimEvent": {"type": "struct", "type_mapping": [
        ["contract", "[u8; 20]"],
        ["topics", "Vec<[u8; 32]>"],
        ["data", "HexBytes"],
    ]},
    "SimOutcome": {"type": "enum", "value_list": ["Success", "Reverted", "Failed"]},
    "SimReceipt": {"type": "struct", "type_mapping": [
        ["outcome", "SimOutcome"],
        ["error", "Option<Text>"],
        ["gas_used", "Compact<u64>"],
        ["fee", "Compact<u128>"],
        ["storage_deposit", "Compact<u128>"],
        ["contract", "Option<[u8; 20]>"],
        ["code_hash", "Option<[u8; 32]>"],
        ["output", "HexBytes"],
        ["events", "Vec<SimEvent>"],
    ]},
    "SimReceipts": "Vec<SimReceipt>",
    # ---- state values ----
    "SimAccountInfo": {"type": "struct", "type_mapping": [
        ["nonce", "u32"],
        ["free", "u128"],
    ]},
    "SimContractInfo": {"type": "struct", "type_mapping": [
        ["code_hash", "[u8; 32]"],
        ["storage_items", "u32"],
        ["storage_bytes", "u64"],
        ["deposit", "u128"],
        ["immutable_data", "HexBytes"],
    ]},
    "SimCodeInfo": {"type": "struct", "type_mapping": [
        ["owner", "[u8; 32]"],
        ["deposit", "u128"],
        ["code_len", "u32"],
    ]},
}


class CodecError(ValueError):
    """Bytes that do not decode as the named type (or a value that does not encode)."""


class Codec:
    """A type registry with encode/decode by type name."""

    def __init__(self) -> None:
        rc = RuntimeConfigurationObject()
        rc.update_type_registry(load_type_registry_preset("core"))
        rc.update_type_registry({"types": TYPES})
        self._rc = rc

    def encode(self, type_name: str, value: Any) -> bytes:
        try:
            return bytes(self._rc.create_scale_object(type_name).encode(value).data)
        except (ValueError, TypeError, KeyError, OverflowError, AttributeError) as exc:
            raise CodecError(f"cannot encode {type_name}: {exc}") from None

    def decode(self, type_name: str, data: bytes) -> Any:
        try:
            obj = self._rc.create_scale_object(type_name, data=ScaleBytes(bytearray(data)))
            return obj.decode(check_remaining=True)
        except Exception as exc:  # scalecodec raises many kinds (incl. plain Exception)
            raise CodecError(f"malformed {type_name} ({len(data)} bytes): "
                             f"{type(exc).__name__}: {exc}") from None


CODEC = Codec()
"""The chain's registry (separate from scalecodec's process-wide default)."""


def h(data: str | bytes) -> bytes:
    """Bytes from a decoded ``0x...`` field (or bytes as they are)."""
    if isinstance(data, bytes):
        return data
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)


def hx(data: bytes) -> str:
    """``0x`` hex, the form scalecodec takes for byte fields."""
    return "0x" + data.hex()

"""The chain's V14 runtime metadata, generated from one Python description
(:data:`PALLETS` and the types below) and encoded with scalecodec.

It describes what :mod:`chain_sim` really does, so a standard client
(py-substrate-interface, polkadot.js) needs no custom type registry:

* pallets ``System`` (0: storage ``Account``, ``Number``, ``Events``; the constant
  ``SS58Prefix``; events ``ExtrinsicSuccess``/``ExtrinsicFailed``), ``Timestamp`` (1:
  ``Now``), ``Balances`` (2: ``transfer_allow_death``, ``transfer_keep_alive``; the
  ``Transfer`` event), ``TransactionPayment`` (3: ``TransactionFeePaid``) and
  ``Revive`` (4: ``eth_transact``, ``call``, ``instantiate``,
  ``instantiate_with_code``, ``upload_code``; ``ContractEmitted``, ``Instantiated``,
  ``CodeStored``; the pallet's errors; its storage items) and ``Dev`` (5: the
  dev node's unsigned ``set_balance``, ``set_nonce``, ``set_code``, ``set_storage``,
  ``dispatch_as``, accepted on dev chains only);
* the v4 extrinsic with the signed extensions the chain checks (see
  :mod:`chain_sim.extrinsic`).

The storage value types are the chain's own layouts (``AccountInfo`` is
``{nonce: u32, data: {free: u128}}``, the 20 bytes :mod:`chain_sim.state` stores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from chain_sim.extrinsic import BALANCES_PALLET, DEV_PALLET, REVIVE_PALLET

SS58_PREFIX = 42
RUNTIME = "pvm_dev_runtime"

REVIVE_ERRORS = (
    "InvalidSchedule", "InvalidCallFlags", "OutOfGas", "TransferFailed",
    "MaxCallDepthReached", "ContractNotFound", "CodeNotFound", "CodeInfoNotFound",
    "OutOfBounds", "DecodingFailed", "ContractTrapped", "ValueTooLarge",
    "TerminatedWhileReentrant", "InputForwarded", "TooManyTopics", "DuplicateContract",
    "TerminatedInConstructor", "ReentranceDenied", "ReenteredPallet",
    "StateChangeDenied", "StorageDepositNotEnoughFunds", "StorageDepositLimitExhausted",
    "CodeInUse", "ContractReverted", "CodeRejected", "BlobTooLarge",
    "StaticMemoryTooLarge", "BasicBlockTooLarge", "InvalidInstruction",
    "MaxDelegateDependenciesReached", "DelegateDependencyNotFound",
    "DelegateDependencyAlreadyExists", "CannotAddSelfAsDelegateDependency",
    "OutOfTransientStorage", "InvalidSyscall", "InvalidStorageFlags", "ExecutionFailed",
    "BalanceConversionFailed", "InvalidImmutableAccess", "AccountUnmapped",
    "AccountAlreadyMapped", "InvalidGenericTransaction", "RefcountOverOrUnderflow",
    "UnsupportedPrecompileAddress", "CallDataTooLarge", "ReturnDataTooLarge",
)


class Registry:
    """A portable type registry: types get ids in the order they are first added
    (identical definitions share one id)."""

    def __init__(self) -> None:
        self.types: list[dict[str, Any]] = []
        self._ids: dict[str, int] = {}

    def add(self, definition: dict[str, Any], path: tuple[str, ...] = (),
            params: tuple[tuple[str, int | None], ...] = ()) -> int:
        key = repr((path, params, definition))
        got = self._ids.get(key)
        if got is not None:
            return got
        i = len(self.types)
        self._ids[key] = i
        self.types.append({"id": i, "type": {
            "path": list(path), "params": [{"name": n, "type": t} for n, t in params],
            "def": definition, "docs": []}})
        return i

    # shorthands
    def prim(self, name: str) -> int:
        return self.add({"primitive": name})

    def seq(self, of: int) -> int:
        return self.add({"sequence": {"type": of}})

    def array(self, n: int, of: int) -> int:
        return self.add({"array": {"len": n, "type": of}})

    def tup(self, *of: int) -> int:
        return self.add({"tuple": list(of)})

    def compact(self, of: int) -> int:
        return self.add({"compact": {"type": of}})

    def composite(self, path: tuple[str, ...], fields: list[tuple[str | None, int, str]],
                  params: tuple[tuple[str, int | None], ...] = ()) -> int:
        return self.add({"composite": {"fields": [
            {"name": n, "type": t, "typeName": tn, "docs": []} for n, t, tn in fields]}},
            path, params)

    def variant(self, path: tuple[str, ...],
                variants: list[tuple[str, int, list[tuple[str | None, int, str]]]],
                params: tuple[tuple[str, int | None], ...] = ()) -> int:
        return self.add({"variant": {"variants": [
            {"name": name, "index": index, "docs": [],
             "fields": [{"name": n, "type": t, "typeName": tn, "docs": []}
                        for n, t, tn in fields]}
            for name, index, fields in variants]}}, path, params)


@dataclass
class Pallet:
    name: str
    index: int
    storage: list[dict[str, Any]] = field(default_factory=list)
    calls: int | None = None
    event: int | None = None
    constants: list[dict[str, Any]] = field(default_factory=list)
    error: int | None = None


def _plain(name: str, ty: int, default: bytes, optional: bool = False) -> dict[str, Any]:
    return {"name": name, "modifier": "Optional" if optional else "Default",
            "type": {"Plain": ty}, "default": "0x" + default.hex(), "documentation": []}


def _map(name: str, hasher: str, key: int, value: int, default: bytes | None) -> dict[str, Any]:
    return {"name": name, "modifier": "Optional" if default is None else "Default",
            "type": {"Map": {"hashers": [hasher], "key": key, "value": value}},
            "default": "0x" + (default or b"\x00").hex(), "documentation": []}


def describe(ratio: int = 1) -> dict[str, Any]:
    """The ``MetadataV14`` value (as scalecodec encodes it)."""
    r = Registry()
    u8, u16, u32, u64, u128 = (r.prim(n) for n in ("u8", "u16", "u32", "u64", "u128"))
    unit = r.tup()
    bytes_ = r.seq(u8)
    h256 = r.composite(("primitive_types", "H256"), [(None, r.array(32, u8), "[u8; 32]")])
    h160 = r.composite(("primitive_types", "H160"), [(None, r.array(20, u8), "[u8; 20]")])
    account = r.composite(("sp_core", "crypto", "AccountId32"),
                          [(None, r.array(32, u8), "[u8; 32]")])
    c_u32, c_u64, c_u128 = r.compact(u32), r.compact(u64), r.compact(u128)
    address = r.variant(("sp_runtime", "multiaddress", "MultiAddress"), [
        ("Id", 0, [(None, account, "AccountId")]),
        ("Index", 1, [(None, r.compact(unit), "AccountIndex")]),
        ("Raw", 2, [(None, bytes_, "Vec<u8>")]),
        ("Address32", 3, [(None, r.array(32, u8), "[u8; 32]")]),
        ("Address20", 4, [(None, r.array(20, u8), "[u8; 20]")]),
    ], (("AccountId", account), ("AccountIndex", unit)))
    signature = r.variant(("sp_runtime", "MultiSignature"), [
        ("Ed25519", 0, [(None, r.array(64, u8), "[u8; 64]")]),
        ("Sr25519", 1, [(None, r.array(64, u8), "[u8; 64]")]),
        ("Ecdsa", 2, [(None, r.array(65, u8), "[u8; 65]")]),
    ])
    era = r.variant(("sp_runtime", "generic", "era", "Era"),
                    [("Immortal", 0, [])] + [(f"Mortal{i}", i, [(None, u8, "")])
                                             for i in range(1, 256)])
    weight = r.composite(("sp_weights", "weight_v2", "Weight"),
                         [("ref_time", c_u64, "u64"), ("proof_size", c_u64, "u64")])

    # ---- calls ----
    balances_call = r.variant(("pallet_balances", "pallet", "Call"), [
        ("transfer_allow_death", 0, [("dest", address, "AccountIdLookupOf<T>"),
                                     ("value", c_u128, "T::Balance")]),
        ("transfer_keep_alive", 3, [("dest", address, "AccountIdLookupOf<T>"),
                                    ("value", c_u128, "T::Balance")]),
    ])
    salt = r.variant(("Option",), [("None", 0, []), ("Some", 1, [(None, r.array(32, u8), "")])],
                     (("T", r.array(32, u8)),))
    revive_call = r.variant(("pallet_revive", "pallet", "Call"), [
        ("eth_transact", 0, [("payload", bytes_, "Vec<u8>")]),
        ("call", 1, [("dest", h160, "H160"), ("value", c_u128, "BalanceOf<T>"),
                     ("gas_limit", weight, "Weight"),
                     ("storage_deposit_limit", c_u128, "BalanceOf<T>"),
                     ("data", bytes_, "Vec<u8>")]),
        ("instantiate", 2, [("value", c_u128, "BalanceOf<T>"), ("gas_limit", weight, "Weight"),
                            ("storage_deposit_limit", c_u128, "BalanceOf<T>"),
                            ("code_hash", h256, "sp_core::H256"), ("data", bytes_, "Vec<u8>"),
                            ("salt", salt, "Option<[u8; 32]>")]),
        ("instantiate_with_code", 3, [("value", c_u128, "BalanceOf<T>"),
                                      ("gas_limit", weight, "Weight"),
                                      ("storage_deposit_limit", c_u128, "BalanceOf<T>"),
                                      ("code", bytes_, "Vec<u8>"), ("data", bytes_, "Vec<u8>"),
                                      ("salt", salt, "Option<[u8; 32]>")]),
        ("upload_code", 4, [("code", bytes_, "Vec<u8>"),
                            ("storage_deposit_limit", c_u128, "BalanceOf<T>")]),
    ])
    dev_call = r.variant(("pallet_dev", "pallet", "Call"), [
        ("set_balance", 0, [("who", account, "AccountId"), ("free", c_u128, "Balance"),
                            ("dust", c_u32, "u32")]),
        ("set_nonce", 1, [("who", account, "AccountId"), ("nonce", c_u32, "Nonce")]),
        ("set_code", 2, [("address", h160, "H160"), ("code", bytes_, "Vec<u8>")]),
        ("set_storage", 3, [("address", h160, "H160"), ("key", r.array(32, u8), "[u8; 32]"),
                            ("value", r.array(32, u8), "[u8; 32]")]),
        ("dispatch_as", 4, [("who", account, "AccountId"), ("nonce", c_u32, "Nonce"),
                            ("call", bytes_, "Vec<u8>"), ("dust", c_u32, "u32")]),
    ])
    runtime_call = r.variant((RUNTIME, "RuntimeCall"), [
        ("Balances", BALANCES_PALLET, [(None, balances_call, "")]),
        ("Revive", REVIVE_PALLET, [(None, revive_call, "")]),
        ("Dev", DEV_PALLET, [(None, dev_call, "")]),
    ])

    # ---- errors ----
    revive_error = r.variant(("pallet_revive", "pallet", "Error"),
                             [(n, i, []) for i, n in enumerate(REVIVE_ERRORS)])
    balances_error = r.variant(("pallet_balances", "pallet", "Error"), [
        ("VestingBalance", 0, []), ("LiquidityRestrictions", 1, []),
        ("InsufficientBalance", 2, []), ("ExistentialDeposit", 3, []),
        ("Expendability", 4, []), ("ExistingVestingSchedule", 5, []),
        ("DeadAccount", 6, []), ("TooManyReserves", 7, [])])
    system_error = r.variant(("frame_system", "pallet", "Error"), [
        ("InvalidSpecName", 0, []), ("SpecVersionNeedsToIncrease", 1, []),
        ("FailedToExtractRuntimeVersion", 2, []), ("NonDefaultComposite", 3, []),
        ("NonZeroRefCount", 4, []), ("CallFiltered", 5, [])])
    module_error = r.composite(("sp_runtime", "ModuleError"),
                               [("index", u8, "u8"), ("error", r.array(4, u8), "[u8; 4]")])
    dispatch_error = r.variant(("sp_runtime", "DispatchError"), [
        ("Other", 0, []), ("CannotLookup", 1, []), ("BadOrigin", 2, []),
        ("Module", 3, [(None, module_error, "ModuleError")]),
        ("ConsumerRemaining", 4, []), ("NoProviders", 5, []), ("TooManyConsumers", 6, []),
    ])

    # ---- events ----
    dispatch_class = r.variant(("frame_support", "dispatch", "DispatchClass"),
                               [("Normal", 0, []), ("Operational", 1, []),
                                ("Mandatory", 2, [])])
    pays = r.variant(("frame_support", "dispatch", "Pays"), [("Yes", 0, []), ("No", 1, [])])
    dispatch_info = r.composite(("frame_support", "dispatch", "DispatchInfo"), [
        ("weight", weight, "Weight"), ("class", dispatch_class, "DispatchClass"),
        ("pays_fee", pays, "Pays")])
    system_event = r.variant(("frame_system", "pallet", "Event"), [
        ("ExtrinsicSuccess", 0, [("dispatch_info", dispatch_info, "DispatchInfo")]),
        ("ExtrinsicFailed", 1, [("dispatch_error", dispatch_error, "DispatchError"),
                                ("dispatch_info", dispatch_info, "DispatchInfo")]),
        ("NewAccount", 3, [("account", account, "T::AccountId")]),
    ])
    balances_event = r.variant(("pallet_balances", "pallet", "Event"), [
        ("Transfer", 2, [("from", account, "T::AccountId"), ("to", account, "T::AccountId"),
                         ("amount", u128, "T::Balance")]),
    ])
    payment_event = r.variant(("pallet_transaction_payment", "pallet", "Event"), [
        ("TransactionFeePaid", 0, [("who", account, "T::AccountId"),
                                   ("actual_fee", u128, "BalanceOf<T>"),
                                   ("tip", u128, "BalanceOf<T>")]),
    ])
    revive_event = r.variant(("pallet_revive", "pallet", "Event"), [
        ("ContractEmitted", 0, [("contract", h160, "H160"), ("data", bytes_, "Vec<u8>"),
                                ("topics", r.seq(h256), "Vec<H256>")]),
        ("Instantiated", 1, [("deployer", h160, "H160"), ("contract", h160, "H160")]),
        ("CodeStored", 2, [("code_hash", h256, "H256"), ("deposit_held", u128, "BalanceOf<T>"),
                           ("uploader", h160, "H160")]),
    ])
    runtime_event = r.variant((RUNTIME, "RuntimeEvent"), [
        ("System", 0, [(None, system_event, "")]),
        ("Balances", BALANCES_PALLET, [(None, balances_event, "")]),
        ("TransactionPayment", 3, [(None, payment_event, "")]),
        ("Revive", REVIVE_PALLET, [(None, revive_event, "")]),
    ])
    phase = r.variant(("frame_system", "Phase"), [
        ("ApplyExtrinsic", 0, [(None, u32, "u32")]), ("Finalization", 1, []),
        ("Initialization", 2, [])])
    event_record = r.composite(("frame_system", "EventRecord"), [
        ("phase", phase, "Phase"), ("event", runtime_event, "E"),
        ("topics", r.seq(h256), "Vec<T>")], (("E", runtime_event), ("T", h256)))
    events = r.seq(event_record)

    # ---- storage values ----
    account_data = r.composite(("pallet_balances", "types", "AccountData"),
                               [("free", u128, "Balance")], (("Balance", u128),))
    account_info = r.composite(("frame_system", "AccountInfo"), [
        ("nonce", u32, "Nonce"), ("data", account_data, "AccountData")],
        (("Nonce", u32), ("AccountData", account_data)))
    contract_info = r.composite(("pallet_revive", "storage", "ContractInfo"), [
        ("code_hash", h256, "H256"), ("storage_items", u32, "u32"),
        ("storage_bytes", u64, "u64"), ("storage_deposit", u128, "BalanceOf<T>"),
        ("immutable_data", bytes_, "Vec<u8>")])
    code_info = r.composite(("pallet_revive", "wasm", "CodeInfo"), [
        ("owner", account, "AccountId"), ("deposit", u128, "BalanceOf<T>"),
        ("code_len", u32, "u32")])

    # ---- extrinsic ----
    def ext(name: str) -> int:
        return r.composite(("frame_system", "extensions", name), [])

    extensions = [
        ("CheckNonZeroSender", ext("CheckNonZeroSender"), unit),
        ("CheckSpecVersion", ext("CheckSpecVersion"), u32),
        ("CheckTxVersion", ext("CheckTxVersion"), u32),
        ("CheckGenesis", ext("CheckGenesis"), h256),
        ("CheckMortality", r.composite(("frame_system", "extensions", "CheckMortality"),
                                       [(None, era, "Era")]), h256),
        ("CheckNonce", r.composite(("frame_system", "extensions", "CheckNonce"),
                                   [(None, c_u32, "T::Nonce")]), unit),
        ("CheckWeight", ext("CheckWeight"), unit),
        ("ChargeTransactionPayment", r.composite(
            ("pallet_transaction_payment", "ChargeTransactionPayment"),
            [(None, c_u128, "BalanceOf<T>")]), unit),
    ]
    extra = r.tup(*(t for _, t, _ in extensions))
    unchecked = r.composite(("sp_runtime", "generic", "unchecked_extrinsic",
                             "UncheckedExtrinsic"), [(None, bytes_, "")],
                            (("Address", address), ("Call", runtime_call),
                             ("Signature", signature), ("Extra", extra)))
    runtime = r.composite((RUNTIME, "Runtime"), [])

    pallets = [
        Pallet("System", 0, storage=[
            _map("Account", "Blake2_128Concat", account, account_info, bytes(20)),
            _plain("Number", u32, bytes(4)),
            _plain("Events", events, b"\x00"),
        ], event=system_event, error=system_error, constants=[
            {"name": "SS58Prefix", "type": u16, "value": "0x" + SS58_PREFIX.to_bytes(
                2, "little").hex(), "documentation": []}]),
        Pallet("Timestamp", 1, storage=[_plain("Now", u64, bytes(8))]),
        Pallet("Balances", BALANCES_PALLET, calls=balances_call, event=balances_event,
               error=balances_error, constants=[
                   {"name": "ExistentialDeposit", "type": u128, "value": "0x" + bytes(16).hex(),
                    "documentation": []}]),
        Pallet("TransactionPayment", 3, event=payment_event),
        Pallet("Revive", REVIVE_PALLET, storage=[
            _map("OriginalAccount", "Identity", h160, account, None),
            _map("CodeInfoOf", "Identity", h256, code_info, None),
            _map("ContractInfoOf", "Identity", h160, contract_info, None),
            _map("AccountDust", "Identity", h160, u32, bytes(4)),
            _plain("ChainId", u64, bytes(8)),
        ], calls=revive_call, event=revive_event, error=revive_error, constants=[
            {"name": "NativeToEthRatio", "type": u32,
             "value": "0x" + ratio.to_bytes(4, "little").hex(), "documentation": [
                 " One native unit is this many wei (the Ethereum side's 18 decimals)."]}]),
        Pallet("Dev", DEV_PALLET, calls=dev_call),
    ]
    return {
        "types": {"types": r.types},
        "pallets": [{
            "name": p.name,
            "storage": None if not p.storage else {"prefix": p.name, "entries": p.storage},
            "calls": None if p.calls is None else {"ty": p.calls},
            "event": None if p.event is None else {"ty": p.event},
            "constants": p.constants,
            "error": None if p.error is None else {"ty": p.error},
            "index": p.index,
        } for p in pallets],
        "extrinsic": {"ty": unchecked, "version": 4, "signed_extensions": [
            {"identifier": n, "ty": t, "additional_signed": a} for n, t, a in extensions]},
        "runtime_type": runtime,
    }


@cache
def metadata_bytes(ratio: int = 1) -> bytes:
    """The SCALE-encoded ``RuntimeMetadataPrefixed`` (``meta`` magic, then V14)."""
    from scalecodec.base import RuntimeConfigurationObject
    from scalecodec.type_registry import load_type_registry_preset

    rc = RuntimeConfigurationObject()
    rc.update_type_registry(load_type_registry_preset("core"))
    obj = rc.create_scale_object("MetadataVersioned")
    return bytes(obj.encode(["0x6d657461", {"V14": describe(ratio)}]).data)

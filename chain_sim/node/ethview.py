"""The Ethereum view of an extrinsic: a ``Revive.eth_transact`` (the signed Ethereum
transaction it carries) or a ``Dev.dispatch_as`` (a transaction of an impersonated
account, identified by the extrinsic's blake2-256 hash).  Values are Ethereum values
(wei): a dispatched call's native value times the chain's ``ratio`` plus its dust."""

from __future__ import annotations

from functools import lru_cache

from chain_sim.ethtx import EthTx, EthTxError, decode_eth_tx
from chain_sim.extrinsic import (
    ContractCall,
    DevDispatchAs,
    EthTransact,
    InstantiateWithCode,
    InvalidTransaction,
    Transfer,
    Unsigned,
    decode_extrinsic,
    read_call,
)
from chain_sim.keys import to_address
from chain_sim.scale import Reader, ScaleError
from chain_sim.storage_keys import blake2_256


@lru_cache(maxsize=4096)
def eth_view(raw: bytes, ratio: int = 1) -> EthTx | None:
    """``raw``'s Ethereum transaction, or ``None`` for other extrinsics (cached)."""
    try:
        xt = decode_extrinsic(raw)
    except InvalidTransaction:
        return None
    if not isinstance(xt, Unsigned):
        return None
    call = xt.call
    if isinstance(call, EthTransact):
        try:
            return decode_eth_tx(call.payload)
        except EthTxError:
            return None
    if not isinstance(call, DevDispatchAs):
        return None
    try:
        inner = read_call(Reader(call.call, "dispatched call"))
    except ScaleError:
        return None
    sender = to_address(call.who)
    if isinstance(inner, ContractCall):
        to, value, gas, data = inner.dest, inner.value, inner.gas_limit, inner.data
    elif isinstance(inner, InstantiateWithCode):
        to, value, gas, data = None, inner.value, inner.gas_limit, inner.code + inner.data
    elif isinstance(inner, Transfer):
        to, value, gas, data = to_address(inner.dest), inner.value, 0, b""
    else:
        return None
    value = value * ratio + call.dust
    return EthTx(0, None, call.nonce, 0, 0, gas, to, value, data, 0, 0, 0, sender,
                 blake2_256(raw), raw)

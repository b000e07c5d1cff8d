"""Substrate JSON-RPC: what py-substrate-interface and polkadot.js call.

``System.Events`` is not kept in the chain's state: the node builds it for a block from
the block's receipts (a ``TransactionPayment.TransactionFeePaid`` and a
``System.ExtrinsicSuccess``/``ExtrinsicFailed`` per extrinsic, ``Revive``'s
``ContractEmitted``/``Instantiated``, ``Balances.Transfer``), encoded with the types
the metadata (:mod:`chain_sim.node.metadata`) declares.  Every other storage item is
read from the state, as of the block asked for (undo records walked back).
"""

from __future__ import annotations

import itertools
from typing import Any

from chain_sim import scale as S
from chain_sim import storage_keys as K
from chain_sim.block import Block, Header, Outcome
from chain_sim.extrinsic import (
    BALANCES_PALLET,
    REVIVE_PALLET,
    SPEC_VERSION,
    TRANSACTION_VERSION,
    Extrinsic,
    InvalidTransaction,
    Transfer,
    Unsigned,
    decode_extrinsic,
)
from chain_sim.keys import account_id_of, fallback_account_id, to_address
from chain_sim.node import params as P
from chain_sim.node.jsonrpc import Dispatcher, RpcError, Session
from chain_sim.node.metadata import REVIVE_ERRORS, SS58_PREFIX, metadata_bytes
from chain_sim.node.service import Node, eth_payload
from chain_sim.storage_keys import blake2_256

CHAIN_NAME = "PolkaVM Dev"   # not a type-registry preset name (see the research notes)
EVENTS_KEY = K.prefix("System", "Events")
INVALID_TX = 1010            # Substrate's "Invalid Transaction" error code
_SUB_IDS = itertools.count(1)


def h(b: bytes) -> str:
    return "0x" + b.hex()


def _dispatch_info(gas: int) -> bytes:
    return S.compact(gas) + S.compact(0) + b"\x00" + b"\x00"   # weight, Normal, Pays::Yes


def _error_index(error: str | None, outcome: Outcome) -> int:
    if outcome is Outcome.REVERTED:
        return REVIVE_ERRORS.index("ContractReverted")
    name = (error or "").split(":", 1)[0].strip()
    if name in REVIVE_ERRORS:
        return REVIVE_ERRORS.index(name)
    return REVIVE_ERRORS.index("ContractTrapped")


def encode_events(block: Block, signer_of: list[bytes]) -> bytes:
    """``Vec<EventRecord>`` of ``block`` (``signer_of[i]``: extrinsic i's payer)."""
    records: list[bytes] = []

    def record(i: int, pallet: int, event: int, body: bytes) -> None:
        records.append(b"\x00" + S.u32(i) + bytes([pallet, event]) + body + b"\x00")

    for i, (raw, rc) in enumerate(zip(block.extrinsics, block.receipts, strict=True)):
        who = signer_of[i]
        if rc.outcome is Outcome.SUCCESS:
            for ev in rc.events:
                record(i, REVIVE_PALLET, 0, ev.contract + S.enc_bytes(ev.data)
                       + S.enc_vec(list(ev.topics), lambda t: t))
            if rc.contract is not None:
                record(i, REVIVE_PALLET, 1, to_address(who) + rc.contract)
            xt = decode_extrinsic(raw)
            if isinstance(xt, Extrinsic) and isinstance(xt.call, Transfer):
                record(i, BALANCES_PALLET, 2, who + xt.call.dest + S.u128(xt.call.value))
        tip = 0
        xt = decode_extrinsic(raw)
        if isinstance(xt, Extrinsic):
            tip = xt.tip
        record(i, 3, 0, who + S.u128(rc.fee) + S.u128(tip))
        if rc.outcome is Outcome.SUCCESS:
            record(i, 0, 0, _dispatch_info(rc.gas_used))
        else:
            err = bytes([0x03, REVIVE_PALLET, _error_index(rc.error, rc.outcome), 0, 0, 0])
            record(i, 0, 1, err + _dispatch_info(rc.gas_used))
    return S.compact(len(records)) + b"".join(records)


def token_decimals(ratio: int) -> int:
    """The native token's decimals: 18 (the Ethereum side's) less the ratio's digits
    (a ratio that is not a power of ten: rounded down)."""
    return 18 - (len(str(ratio)) - 1)


def header_json(hd: Header) -> dict[str, Any]:
    return {"parentHash": h(hd.parent_hash), "number": hex(hd.number),
            "stateRoot": h(hd.state_root), "extrinsicsRoot": h(hd.extrinsics_root),
            "digest": {"logs": []}}


class SubstrateApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.chain = node.chain

    # ---- helpers (under the lock) ----
    def _number(self, block_hash: Any, name: str = "hash") -> int:
        if block_hash is None:
            return self.chain.head_number
        n = self.node.number_of_hash(P.hash32(block_hash, name))
        if n is None:
            raise RpcError(4003, f"unknown block {block_hash}")
        return n

    def _signer(self, raw: bytes) -> bytes:
        xt = decode_extrinsic(raw)
        if isinstance(xt, Extrinsic):
            return xt.signer
        payload = eth_payload(raw) if isinstance(xt, Unsigned) else None
        if payload is None:
            return bytes(32)
        from chain_sim.ethtx import decode_eth_tx

        sender = decode_eth_tx(payload).sender
        mapped = self.chain.db.get(K.original_account_key(sender))
        return mapped if mapped is not None else fallback_account_id(sender)

    def _storage(self, key: bytes, number: int) -> bytes | None:
        if key == EVENTS_KEY:
            block = self.node.block_of(number)
            return encode_events(block, [self._signer(x) for x in block.extrinsics])
        return self.chain.value_at(key, number)

    def _head_hash(self) -> bytes:
        return self.node.header_of(self.chain.head_number).hash

    async def _submit(self, raw: bytes) -> bytes:
        try:
            return await self.node.submit(raw)
        except InvalidTransaction as exc:
            raise RpcError(INVALID_TX, "Invalid Transaction", exc.reason) from None

    # ---- methods ----
    def register(self, d: Dispatcher) -> None:  # noqa: C901 - one table of small methods
        node, chain = self.node, self.chain

        def constant(value: Any) -> Any:
            async def fn(s: Session, p: Any) -> Any:
                return value
            return fn

        async def account_next_index(s: Session, p: Any) -> Any:
            who = P.one(p, "account")
            try:
                acct = account_id_of(who) if isinstance(who, str) else None
            except ValueError as exc:
                raise P.bad("account", str(exc)) from None
            if acct is None:
                raise P.bad("account", "expected an SS58 address or 0x account id")
            async with node.lock:
                n = chain.account(acct)[0]
            for pt in node.pending:
                try:
                    xt = decode_extrinsic(pt.raw)
                except InvalidTransaction:
                    continue
                if isinstance(xt, Extrinsic) and xt.signer == acct:
                    n += 1
            return n

        async def get_block_hash(s: Session, p: Any) -> Any:
            arg = P.first(p, "number")
            async with node.lock:
                head = chain.head_number

                def one(x: Any) -> Any:
                    n = head if x is None else P.quantity(x, "number")
                    return None if n > head else h(node.header_of(n).hash)

                if isinstance(arg, list):
                    return [one(x) for x in arg]
                return one(arg)

        async def get_head(s: Session, p: Any) -> Any:
            async with node.lock:
                return h(self._head_hash())

        async def get_header(s: Session, p: Any) -> Any:
            bh = P.first(p, "hash")
            async with node.lock:
                return header_json(node.header_of(self._number(bh)))

        async def get_block(s: Session, p: Any) -> Any:
            bh = P.first(p, "hash")
            async with node.lock:
                block = node.block_of(self._number(bh))
            return {"block": {"header": header_json(block.header),
                              "extrinsics": [h(x) for x in block.extrinsics]},
                    "justifications": None}

        def heads(notification: str) -> Any:
            async def subscribe(s: Session, p: Any) -> Any:
                if not s.can_subscribe or s.nursery is None:
                    raise RpcError(-32601, "subscriptions need a WebSocket connection")
                sid = f"{next(_SUB_IDS):016x}"
                s.check_room()
                recv = node.listen()

                async def pump() -> None:
                    async with node.lock:
                        first = header_json(node.header_of(chain.head_number))
                    await s.notify(notification, sid, first)
                    async for number in recv:
                        async with node.lock:
                            if number > chain.head_number:
                                continue
                            hd = header_json(node.header_of(number))
                        await s.notify(notification, sid, hd)

                s.subscribe(sid, recv.close)
                s.defer(pump)
                return sid
            return subscribe

        async def unsubscribe(s: Session, p: Any) -> Any:
            cancel = s.subscriptions.pop(str(P.one(p, "subscription")), None)
            if cancel is None:
                return False
            cancel()
            return True

        async def runtime_version(s: Session, p: Any) -> Any:
            return {"specName": "pvm-dev", "implName": "pvm-exec-node", "authoringVersion": 1,
                    "specVersion": SPEC_VERSION, "implVersion": 1, "apis": [],
                    "transactionVersion": TRANSACTION_VERSION, "stateVersion": 1}

        async def get_metadata(s: Session, p: Any) -> Any:
            return h(metadata_bytes(chain.ratio))

        async def get_storage(s: Session, p: Any) -> Any:
            key, bh = P.positional(p, ["key", "hash"], 1)
            k = P.data(key, "key")
            async with node.lock:
                v = self._storage(k, self._number(bh))
            return None if v is None else h(v)

        async def get_keys_paged(s: Session, p: Any) -> Any:
            prefix, count, start, bh = P.positional(p, ["prefix", "count", "startKey", "hash"],
                                                    2)
            pre = P.data(prefix, "prefix")
            n = P.quantity(count, "count")
            if n > 1000:
                raise P.bad("count", "at most 1000")
            after = None if start is None else P.data(start, "startKey")
            async with node.lock:
                if bh is not None and self._number(bh) != chain.head_number:
                    raise RpcError(-32000, "state_getKeysPaged serves the head's state only")
                out = []
                for k, _ in chain.db.scan(pre):
                    if after is not None and k <= after:
                        continue
                    out.append(h(k))
                    if len(out) >= n:
                        break
                return out

        async def submit(s: Session, p: Any) -> Any:
            return h(await self._submit(P.data(P.one(p, "extrinsic"), "extrinsic")))

        async def submit_and_watch(s: Session, p: Any) -> Any:
            raw = P.data(P.one(p, "extrinsic"), "extrinsic")
            if not s.can_subscribe or s.nursery is None:
                raise RpcError(-32601, "subscriptions need a WebSocket connection")
            s.check_room()          # before the extrinsic changes anything
            xt_hash = await self._submit(raw)
            sid = f"{next(_SUB_IDS):016x}"
            done: dict[str, bool] = {"cancelled": False}
            s.subscribe(sid, lambda: done.__setitem__("cancelled", True))

            async def updates() -> None:
                pending = next((pt for pt in node.pending if pt.hash == xt_hash), None)
                if pending is not None:
                    await s.notify("author_extrinsicUpdate", sid, "ready")
                    await pending.done.wait()
                    if isinstance(pending.result, str):
                        await s.notify("author_extrinsicUpdate", sid, "invalid")
                        return
                ref = node.xt_index.get(xt_hash)
                if ref is None:
                    await s.notify("author_extrinsicUpdate", sid, "dropped")
                    return
                async with node.lock:
                    bh = h(node.header_of(ref.number).hash)
                for update in ({"inBlock": bh}, {"finalized": bh}):
                    if done["cancelled"]:
                        return
                    await s.notify("author_extrinsicUpdate", sid, update)

            s.defer(updates)
            return sid

        async def health(s: Session, p: Any) -> Any:
            return {"peers": 0, "isSyncing": False, "shouldHavePeers": False}

        table = {
            "system_chain": constant(CHAIN_NAME), "system_name": constant("pvm-exec-node"),
            "system_version": constant("0.1.0"), "system_chainType": constant("Development"),
            "system_properties": constant({"ss58Format": SS58_PREFIX,
                                           "tokenDecimals": token_decimals(chain.ratio),
                                           "tokenSymbol": "UNIT"}),
            "system_health": health, "system_accountNextIndex": account_next_index,
            "chain_getBlockHash": get_block_hash, "chain_getHead": get_head,
            "chain_getFinalizedHead": get_head, "chain_getHeader": get_header,
            "chain_getBlock": get_block,
            "chain_subscribeNewHeads": heads("chain_newHead"),
            "chain_subscribeAllHeads": heads("chain_allHead"),
            "chain_subscribeFinalizedHeads": heads("chain_finalizedHead"),
            "chain_unsubscribeNewHeads": unsubscribe, "chain_unsubscribeAllHeads": unsubscribe,
            "chain_unsubscribeFinalizedHeads": unsubscribe,
            "state_getRuntimeVersion": runtime_version, "state_getMetadata": get_metadata,
            "state_getStorage": get_storage, "state_getStorageAt": get_storage,
            "state_getKeysPaged": get_keys_paged,
            "author_submitExtrinsic": submit, "author_submitAndWatchExtrinsic": submit_and_watch,
            "author_unwatchExtrinsic": unsubscribe,
        }
        for name, fn in table.items():
            d.add(name, fn)


__all__ = ["SubstrateApi", "blake2_256", "encode_events"]

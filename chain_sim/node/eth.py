"""Ethereum JSON-RPC (the method set of pallet-revive's eth-rpc) and the dev methods
Hardhat and Foundry test suites use.

Units, as pallet-revive's eth-rpc: values and balances are 18-decimal wei; the native
balance is ``native_to_eth_ratio`` (the chain's genesis parameter; the dev node's is
10^6, native 12 decimals, as pallet-revive's dev node) times coarser, and the part of
a balance below one native unit is the address's dust, kept by the chain
(:mod:`chain_sim.state`).  Gas is the chain's gas (PolkaVM gas as the runtime meters
it); its price in wei is ``Fees.gas_price`` (native per gas) times the ratio, so every
fee is a whole number of native units.  A deployment sends the ``.polkavm`` blob
followed by the constructor input.  Transactions are submitted as unsigned
``Revive.eth_transact`` extrinsics, as eth-rpc does.

Block parameters (``eth_call``, ``eth_getBalance``, ``eth_getCode``,
``eth_getStorageAt``, ``eth_getTransactionCount``, ...) are geth's: a number, a tag
(``latest``, ``pending``, ``safe``, ``finalized`` -- all the head on a dev chain, except
``pending`` nonces, which count the pool -- or ``earliest``), a 32-byte block hash or
an EIP-1898 object (``{"blockHash": ...}`` / ``{"blockNumber": ...}``).  A block
after the head answers ``header not found``, an unknown hash ``header for hash not
found`` (code -32000).  State reads of past blocks walk the undo records back;
``eth_call`` on a past block runs on a scratch copy of the state after that block.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from eth_utils.address import to_checksum_address as _to_checksum

from chain_sim import storage_keys as K
from chain_sim.block import Block, Outcome, Receipt
from chain_sim.chain import Chain, ChainError
from chain_sim.ethtx import EthTx, EthTxError, decode_eth_tx, split_code
from chain_sim.extrinsic import (
    ContractCall,
    DevCall,
    DevDispatchAs,
    DevSetBalance,
    DevSetCode,
    DevSetNonce,
    DevSetStorage,
    EthTransact,
    InstantiateWithCode,
    InvalidTransaction,
    Unsigned,
    encode_call,
)
from chain_sim.keys import fallback_account_id, to_address
from chain_sim.node import params as P
from chain_sim.node.ethview import eth_view
from chain_sim.node.jsonrpc import Dispatcher, RpcError, Session
from chain_sim.node.service import Node, TxRef
from chain_sim.state import decode_account
from chain_sim.storage_keys import blake2_256
from executor.linker import HostLayer
from executor.revive.runtime import ExecResult

T = TypeVar("T")

@lru_cache(maxsize=65536)
def to_checksum_address(address: bytes) -> str:
    """EIP-55 text of a 20-byte address (cached: a keccak each otherwise)."""
    return str(_to_checksum(address))


CLIENT_VERSION = "pvm-exec-node/0.1.0"
_U128 = (1 << 128) - 1
ZERO_HASH = "0x" + "00" * 32
EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"
EMPTY_BLOOM = "0x" + "00" * 256
HEAD_TAGS = ("latest", "pending", "safe", "finalized")
ERROR_SELECTOR = bytes.fromhex("08c379a0")
PANIC_SELECTOR = bytes.fromhex("4e487b71")

# geth's error codes
EXECUTION_REVERTED = 3
SERVER_ERROR = -32000


def h(b: bytes) -> str:
    return "0x" + b.hex()


def q(n: int) -> str:
    return hex(n)


def revert_message(output: bytes) -> str:
    """geth's message for reverted output (``execution reverted: <reason>``)."""
    if output[:4] == ERROR_SELECTOR and len(output) >= 68:
        try:
            from eth_abi.abi import decode

            (reason,) = decode(["string"], output[4:])
            return f"execution reverted: {reason}"
        except Exception:  # not a well-formed Error(string)
            pass
    if output[:4] == PANIC_SELECTOR and len(output) == 36:
        return f"execution reverted: panic code 0x{int.from_bytes(output[4:], 'big'):x}"
    return "execution reverted"


def exec_error(result: ExecResult) -> RpcError:
    if result.reverted:
        return RpcError(EXECUTION_REVERTED, revert_message(result.data), h(result.data))
    return RpcError(SERVER_ERROR, f"execution failed: {result.error}")


class EthApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.chain = node.chain
        self.ratio = node.chain.ratio
        self.gas_price = node.chain.fees.gas_price * self.ratio     # wei per gas

    def view(self, raw: bytes) -> EthTx | None:
        """The Ethereum transaction of extrinsic ``raw`` (values in wei), if any."""
        return eth_view(raw, self.ratio)

    # ---- helpers (call under the lock) ----
    def _block_number(self, tag: Any, name: str = "block") -> int:
        """The block a geth block parameter names (see the module's doc)."""
        head = self.chain.head_number
        if tag is None or tag in HEAD_TAGS:
            return head
        if tag == "earliest":
            return 0
        if isinstance(tag, dict):
            if tag.get("blockHash") is not None:
                return self._hash_number(P.hash32(tag["blockHash"], name + ".blockHash"))
            if tag.get("blockNumber") is not None:
                return self._block_number(tag["blockNumber"], name + ".blockNumber")
            raise P.bad(name, "expected 'blockHash' or 'blockNumber'")
        if isinstance(tag, str) and len(tag) == 66:
            return self._hash_number(P.hash32(tag, name))
        if isinstance(tag, str) and not tag.startswith(("0x", "0X")):
            raise P.bad(name, f"expected a block number, hash or tag (latest, earliest, "
                              f"pending, safe, finalized), got {tag!r:.80}")
        n = P.quantity(tag, name)
        if n > head:
            raise RpcError(SERVER_ERROR, "header not found")
        return n

    def _hash_number(self, block_hash: bytes) -> int:
        n = self.node.number_of_hash(block_hash)
        if n is None:
            raise RpcError(SERVER_ERROR, "header for hash not found")
        return n

    def _state_value(self, key: bytes, number: int) -> bytes | None:
        """A storage value as of block ``number`` (undo records walked back)."""
        return self.chain.value_at(key, number)

    def _account(self, address: bytes, number: int) -> tuple[int, int]:
        """``(nonce, balance in wei)`` of ``address`` as of block ``number``."""
        mapped = self._state_value(K.original_account_key(address), number)
        acct = mapped if mapped is not None else fallback_account_id(address)
        raw = self._state_value(K.account_key(acct), number)
        nonce, free = (0, 0) if raw is None else decode_account(raw)
        if self.ratio == 1:
            return nonce, free
        dust = self._state_value(K.account_dust_key(address), number)
        return nonce, free * self.ratio + (0 if dust is None else int.from_bytes(dust,
                                                                                 "little"))

    def _tx_fields(self, tx: EthTx, block: Block | None, index: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "hash": h(tx.hash), "nonce": q(tx.nonce), "from": to_checksum_address(tx.sender),
            "to": None if tx.to is None else to_checksum_address(tx.to),
            "value": q(tx.value), "gas": q(tx.gas), "input": h(tx.data),
            "type": q(tx.tx_type), "v": q(tx.v), "r": q(tx.r), "s": q(tx.s),
            "blockHash": None if block is None else h(block.hash),
            "blockNumber": None if block is None else q(block.number),
            "transactionIndex": None if index is None else q(index),
            "gasPrice": q(self.gas_price if tx.tx_type == 2 or not tx.gas_price
                          else tx.gas_price),
        }
        if tx.chain_id is not None:
            out["chainId"] = q(tx.chain_id)
        if tx.tx_type == 2:
            out["maxFeePerGas"] = q(tx.gas_price)
            out["maxPriorityFeePerGas"] = q(tx.max_priority_fee)
        if tx.tx_type in (1, 2):
            out["accessList"] = []
            out["yParity"] = q(tx.v)
        return out

    def _eth_txs(self, block: Block) -> list[tuple[int, EthTx]]:
        out = []
        for i, raw in enumerate(block.extrinsics):
            tx = self.view(raw)
            if tx is not None:
                out.append((i, tx))
        return out

    def _logs(self, block: Block, index: int, tx_hash: bytes, receipt: Receipt,
              first_log: int) -> list[dict[str, Any]]:
        return [{"address": to_checksum_address(e.contract), "topics": [h(t) for t in e.topics],
                 "data": h(e.data), "blockNumber": q(block.number), "blockHash": h(block.hash),
                 "transactionHash": h(tx_hash), "transactionIndex": q(index),
                 "logIndex": q(first_log + k), "removed": False}
                for k, e in enumerate(receipt.events)]

    def _block_json(self, number: int, full: bool) -> dict[str, Any]:
        block = self.node.block_of(number)
        hd = block.header
        txs = self._eth_txs(block)
        return {
            "number": q(number), "hash": h(block.hash), "parentHash": h(hd.parent_hash),
            "nonce": "0x0000000000000000", "sha3Uncles": EMPTY_UNCLES, "logsBloom": EMPTY_BLOOM,
            "transactionsRoot": h(hd.extrinsics_root), "stateRoot": h(hd.state_root),
            "receiptsRoot": h(hd.receipts_root),
            "miner": to_checksum_address(to_address(hd.author)), "difficulty": "0x0",
            "totalDifficulty": "0x0", "extraData": "0x", "size": q(len(hd.encode())),
            "gasLimit": q(hd.gas_limit), "gasUsed": q(hd.gas_used),
            "timestamp": q(hd.timestamp // 1000), "baseFeePerGas": q(self.gas_price),
            "mixHash": ZERO_HASH, "uncles": [], "withdrawals": [],
            "withdrawalsRoot": ZERO_HASH,
            "transactions": [self._tx_fields(tx, block, i) if full else h(tx.hash)
                             for i, tx in txs],
        }

    def _receipt_json(self, ref: TxRef) -> dict[str, Any]:
        block, raw, receipt = self.node.receipt_of(ref)
        tx = self.view(raw)
        assert tx is not None
        first_log = 0
        cumulative = 0
        for i in range(ref.index):
            first_log += len(block.receipts[i].events)
            cumulative += block.receipts[i].gas_used
        return {
            "transactionHash": h(tx.hash), "transactionIndex": q(ref.index),
            "blockHash": h(block.hash), "blockNumber": q(block.number),
            "from": to_checksum_address(tx.sender),
            "to": None if tx.to is None else to_checksum_address(tx.to),
            "cumulativeGasUsed": q(cumulative + receipt.gas_used),
            "gasUsed": q(receipt.gas_used),
            "effectiveGasPrice": q(self.gas_price),
            "contractAddress": (None if receipt.contract is None
                                else to_checksum_address(receipt.contract)),
            "logs": self._logs(block, ref.index, tx.hash, receipt, first_log),
            "logsBloom": EMPTY_BLOOM, "type": q(tx.tx_type),
            "status": "0x1" if receipt.outcome is Outcome.SUCCESS else "0x0",
        }

    def _call_args(self, obj: Any, name: str) -> tuple[bytes, bytes | None, bytes, int, int | None]:
        if not isinstance(obj, dict):
            raise P.bad(name, "expected a transaction object")
        origin = (bytes(20) if obj.get("from") is None
                  else P.address(obj["from"], name + ".from"))
        to = None if obj.get("to") is None else P.address(obj["to"], name + ".to")
        raw = obj.get("input", obj.get("data"))
        data = b"" if raw is None else P.data(raw, name + ".input")
        value = 0 if obj.get("value") is None else P.quantity(obj["value"], name + ".value")
        gas = None if obj.get("gas") is None else P.quantity(obj["gas"], name + ".gas")
        if to is None and not data:
            raise P.bad(name, "a call needs 'to' or deployment data")
        return origin, to, data, value, gas

    async def at_block(self, block: Any, fn: Callable[[Chain], T]) -> T:
        """``fn`` (chain work, under the lock) on the chain as of the block parameter
        ``block``: the node's chain for the head, else a scratch in-memory copy of the
        state after that block (console.log lines of a past block print nothing)."""
        def run() -> T:
            number = self._block_number(block)
            chain = self.chain
            if number == chain.head_number:
                return fn(chain)
            scratch = chain.before_block(number + 1,
                                         sandbox=chain.runtime.engine.config.sandbox)
            try:
                return fn(scratch)
            finally:
                scratch.close()
        return await self.node.run(run)

    async def dry_run(self, tx: Any, block: Any, *, quiet: bool = False,
                      layers: tuple[HostLayer, ...] = (),
                      gas_default: int | None = None) -> ExecResult:
        """A dry run of the call object ``tx`` on block ``block``'s state; ``quiet``:
        console.log prints nothing (a gas estimate: the transaction prints its lines
        when it is mined)."""
        origin, to, data, value, gas = self._call_args(tx, "transaction")

        def run(chain: Chain) -> ExecResult:
            muted = self.node.console_muted
            self.node.console_muted = muted or quiet
            try:
                return chain.dry_run(origin, to, data, value=value,
                                     gas_limit=gas or gas_default, layers=layers)
            except EthTxError as exc:
                raise RpcError(SERVER_ERROR, f"invalid deployment: {exc}") from None
            finally:
                self.node.console_muted = muted
        return await self.at_block(block, run)

    async def _dry_run(self, params: Any, *, quiet: bool = False) -> ExecResult:
        tx, block = P.positional(params, ["transaction", "block"], 1)
        return await self.dry_run(tx, block, quiet=quiet)

    def _next_nonce(self, address: bytes) -> int:
        """The nonce of ``address``'s next transaction (the pool's counted)."""
        n = self._account(address, self.chain.head_number)[0]
        for pt in self.node.pending:
            etx = self.view(pt.raw)
            if etx is not None and etx.sender == address:
                n += 1
        return n

    def _account_id(self, address: bytes) -> bytes:
        mapped = self.chain.db.get(K.original_account_key(address))
        return mapped if mapped is not None else fallback_account_id(address)

    async def _dev(self, call: DevCall) -> None:
        """Applies a Dev pallet call at once, in a block of its own."""
        result = await self.node.mine([Unsigned(call).encode()])
        if result.rejected:
            raise RpcError(SERVER_ERROR, result.rejected[0][1])

    async def _send_impersonated(self, sender: bytes, to: bytes | None, data: bytes,
                                 value: int, gas: int) -> str:
        inner: ContractCall | InstantiateWithCode
        native, dust = divmod(value, self.ratio)     # the wei below a native unit: dust
        if to is None:
            try:
                code, ctor = split_code(data)
            except EthTxError as exc:
                raise RpcError(SERVER_ERROR, f"invalid deployment: {exc}") from None
            inner = InstantiateWithCode(code, ctor, native, gas, _U128)
        else:
            inner = ContractCall(to, data, native, gas, _U128)
        async with self.node.chain_lock:
            who = self._account_id(sender)
            nonce = self._next_nonce(sender)
        raw = Unsigned(DevDispatchAs(who, nonce, encode_call(inner), dust)).encode()
        try:
            return h(await self.node.submit(raw))
        except InvalidTransaction as exc:
            raise RpcError(SERVER_ERROR, exc.reason) from None

    async def _send_raw(self, raw: bytes) -> str:
        try:
            tx = decode_eth_tx(raw)
        except EthTxError as exc:
            raise RpcError(SERVER_ERROR, f"invalid transaction: {exc}") from None
        xt = Unsigned(EthTransact(raw)).encode()
        try:
            await self.node.submit(xt)
        except InvalidTransaction as exc:
            raise RpcError(SERVER_ERROR, exc.reason) from None
        return h(tx.hash)

    # ---- methods ----
    def register(self, d: Dispatcher) -> None:  # noqa: C901 - one table of small methods
        node, chain = self.node, self.chain
        gas_price_wei = self.gas_price

        async def chain_id(s: Session, p: Any) -> Any:
            return q(chain.genesis.chain_id)

        async def net_version(s: Session, p: Any) -> Any:
            return str(chain.genesis.chain_id)

        async def true(s: Session, p: Any) -> Any:
            return True

        async def client_version(s: Session, p: Any) -> Any:
            return CLIENT_VERSION

        async def accounts(s: Session, p: Any) -> Any:
            return [to_checksum_address(a) for a in node.eth_keys]

        async def block_number(s: Session, p: Any) -> Any:
            async with node.chain_lock:
                return q(chain.head_number)

        async def get_balance(s: Session, p: Any) -> Any:
            a, block = P.address_and_block(p)
            async with node.chain_lock:
                return q(self._account(a, self._block_number(block))[1])

        async def get_tx_count(s: Session, p: Any) -> Any:
            a, block = P.address_and_block(p)
            async with node.chain_lock:
                if block == "pending":
                    return q(self._next_nonce(a))
                return q(self._account(a, self._block_number(block))[0])

        async def gas_price(s: Session, p: Any) -> Any:
            return q(gas_price_wei)

        async def max_priority(s: Session, p: Any) -> Any:
            return q(gas_price_wei // 5)

        async def fee_history(s: Session, p: Any) -> Any:
            count, newest, percentiles = P.positional(
                p, ["blockCount", "newestBlock", "rewardPercentiles"], 2)
            n = min(P.quantity(count, "blockCount"), 1024)
            async with node.chain_lock:
                last = self._block_number(newest, "newestBlock")
                oldest = max(0, last - n + 1)
                ratios = []
                for b in range(oldest, last + 1):
                    hd = chain.header(b)
                    ratios.append(hd.gas_used / hd.gas_limit if hd.gas_limit else 0.0)
            k = last - oldest + 1
            out: dict[str, Any] = {"oldestBlock": q(oldest),
                                   "baseFeePerGas": [q(gas_price_wei)] * (k + 1),
                                   "gasUsedRatio": ratios}
            if isinstance(percentiles, list):
                out["reward"] = [[q(gas_price_wei // 5)] * len(percentiles)] * k
            return out

        async def call(s: Session, p: Any) -> Any:
            r = await self._dry_run(p)
            if not r.success:
                raise exec_error(r)
            return h(r.data)

        async def estimate_gas(s: Session, p: Any) -> Any:
            r = await self._dry_run(p, quiet=True)
            if not r.success:
                raise exec_error(r)
            return q(r.gas_used)

        async def send_raw(s: Session, p: Any) -> Any:
            return await self._send_raw(P.data(P.one(p, "transaction"), "transaction"))

        async def send_tx(s: Session, p: Any) -> Any:
            obj = P.one(p, "transaction")
            if not isinstance(obj, dict) or obj.get("from") is None:
                raise P.bad("transaction", "expected an object with 'from'")
            sender = P.address(obj["from"], "transaction.from")
            key = node.eth_keys.get(sender)
            if key is None and sender not in node.impersonated:
                raise RpcError(SERVER_ERROR, f"unknown account 0x{sender.hex()} (neither an "
                                             f"unlocked dev account nor impersonated)")
            _, to, data, value, gas = self._call_args(obj, "transaction")
            async with node.chain_lock:
                nonce = self._next_nonce(sender)
            if obj.get("nonce") is not None:
                nonce = P.quantity(obj["nonce"], "transaction.nonce")
            if gas is None:
                r = await self._dry_run([{k: v for k, v in obj.items() if k != "gas"}],
                                        quiet=True)
                if not r.success:
                    raise exec_error(r)
                gas = r.gas_used
            if key is None:
                return await self._send_impersonated(sender, to, data, value, gas)
            from eth_account import Account as EthAccount

            fields: dict[str, Any] = {
                "type": 2, "chainId": chain.genesis.chain_id, "nonce": nonce, "gas": gas,
                "maxFeePerGas": gas_price_wei * 2, "maxPriorityFeePerGas": 0,
                "value": value, "data": data}
            if to is not None:
                fields["to"] = to_checksum_address(to)
            signed = EthAccount.sign_transaction(fields, key)
            return await self._send_raw(bytes(signed.raw_transaction))

        async def get_receipt(s: Session, p: Any) -> Any:
            ref = node.eth_index.get(P.hash32(P.one(p, "hash"), "hash"))
            if ref is None:
                return None
            async with node.chain_lock:
                return self._receipt_json(ref)

        async def get_tx(s: Session, p: Any) -> Any:
            ref = node.eth_index.get(P.hash32(P.one(p, "hash"), "hash"))
            if ref is None:
                return None
            async with node.chain_lock:
                block, raw, _ = node.receipt_of(ref)
            tx = self.view(raw)
            assert tx is not None
            return self._tx_fields(tx, block, ref.index)

        async def block_by_number(s: Session, p: Any) -> Any:
            tag, full = P.positional(p, ["block", "fullTransactions"], 1)
            async with node.chain_lock:
                try:
                    n = self._block_number(tag)
                except RpcError as exc:
                    if exc.code == SERVER_ERROR:
                        return None
                    raise
                return self._block_json(n, bool(full))

        async def block_by_hash(s: Session, p: Any) -> Any:
            bh, full = P.positional(p, ["hash", "fullTransactions"], 1)
            async with node.chain_lock:
                n = node.number_of_hash(P.hash32(bh, "hash"))
                return None if n is None else self._block_json(n, bool(full))

        async def tx_count_by_number(s: Session, p: Any) -> Any:
            async with node.chain_lock:
                return q(len(self._eth_txs(node.block_of(self._block_number(
                    P.one(p, "block"))))))

        async def tx_count_by_hash(s: Session, p: Any) -> Any:
            bh = P.hash32(P.one(p, "hash"), "hash")
            async with node.chain_lock:
                n = node.number_of_hash(bh)
                return None if n is None else q(len(self._eth_txs(node.block_of(n))))

        def tx_at(number: int | None, index: Any) -> Any:
            if number is None:
                return None
            i = P.quantity(index, "index")
            txs = self._eth_txs(node.block_of(number))
            if i >= len(txs):
                return None
            return self._tx_fields(txs[i][1], node.block_of(number), txs[i][0])

        async def tx_by_number_index(s: Session, p: Any) -> Any:
            tag, index = P.positional(p, ["block", "index"], 2)
            async with node.chain_lock:
                return tx_at(self._block_number(tag), index)

        async def tx_by_hash_index(s: Session, p: Any) -> Any:
            bh, index = P.positional(p, ["hash", "index"], 2)
            async with node.chain_lock:
                return tx_at(node.number_of_hash(P.hash32(bh, "hash")), index)

        async def get_code(s: Session, p: Any) -> Any:
            a, block = P.address_and_block(p)
            from chain_sim.state import StoredContract

            async with node.chain_lock:
                n = self._block_number(block)
                raw = self._state_value(K.contract_info_key(a), n)
                if raw is None:
                    return "0x"
                code = self._state_value(K.code_key(StoredContract.decode(raw).code_hash), n)
                return h(code or b"")

        async def get_storage_at(s: Session, p: Any) -> Any:
            addr, slot, block = P.positional(p, ["address", "slot", "block"], 2)
            a = P.address(addr, "address")
            key = P.word(slot, "slot")
            async with node.chain_lock:
                v = self._state_value(K.contract_storage_key(a, key, True),
                                      self._block_number(block))
            return h((v or b"").rjust(32, b"\0")[-32:])

        async def get_logs(s: Session, p: Any) -> Any:
            flt = P.one(p, "filter")
            if not isinstance(flt, dict):
                raise P.bad("filter", "expected an object")
            addrs: set[bytes] | None = None
            if flt.get("address") is not None:
                a = flt["address"]
                lst = a if isinstance(a, list) else [a]
                addrs = {P.address(x, "filter.address") for x in lst}
            topics = flt.get("topics") or []
            if not isinstance(topics, list):
                raise P.bad("filter.topics", "expected an array")
            want: list[set[bytes] | None] = []
            for i, t in enumerate(topics):
                if t is None:
                    want.append(None)
                else:
                    lst = t if isinstance(t, list) else [t]
                    want.append({P.hash32(x, f"filter.topics[{i}]") for x in lst})
            async with node.chain_lock:
                if flt.get("blockHash") is not None:
                    n = node.number_of_hash(P.hash32(flt["blockHash"], "filter.blockHash"))
                    if n is None:
                        raise RpcError(SERVER_ERROR, "unknown block")
                    first = last = n
                else:
                    first = self._block_number(flt.get("fromBlock", "latest"), "fromBlock")
                    last = self._block_number(flt.get("toBlock", "latest"), "toBlock")
                if last - first > 10_000:
                    raise RpcError(SERVER_ERROR, "block range too large (limit 10000)")
                out: list[dict[str, Any]] = []
                for n in range(first, last + 1):
                    block = node.block_of(n)
                    log_index = 0
                    for i, (raw, rc) in enumerate(zip(block.extrinsics, block.receipts,
                                                      strict=True)):
                        etx = self.view(raw)
                        tx_hash = blake2_256(raw) if etx is None else etx.hash
                        for log in self._logs(block, i, tx_hash, rc, log_index):
                            ev = rc.events[int(log["logIndex"], 16) - log_index]
                            if addrs is not None and ev.contract not in addrs:
                                continue
                            if any(w is not None and (k >= len(ev.topics) or ev.topics[k]
                                                      not in w)
                                   for k, w in enumerate(want)):
                                continue
                            out.append(log)
                        log_index += len(rc.events)
                return out

        async def syncing(s: Session, p: Any) -> Any:
            return False

        # ---- dev methods ----
        async def snapshot(s: Session, p: Any) -> Any:
            return q(await node.snapshot())

        async def revert(s: Session, p: Any) -> Any:
            return await node.revert(P.quantity(P.one(p, "snapshot"), "snapshot"))

        async def mine(s: Session, p: Any) -> Any:
            count = P.first(p, "blocks")
            n = 1 if count is None else P.quantity(count, "blocks")
            if n > 10_000:
                raise P.bad("blocks", "at most 10000 at once")
            for _ in range(max(1, n)):
                if node.block_time is not None:
                    await node.mine_pending()
                else:
                    await node.mine([])
            return "0x0"

        async def evm_mine(s: Session, p: Any) -> Any:
            ts = P.first(p, "timestamp")
            if ts is not None:
                node.next_timestamp_ms = P.quantity(ts, "timestamp") * 1000
            await (node.mine_pending() if node.block_time is not None else node.mine([]))
            return "0x0"

        async def set_next_ts(s: Session, p: Any) -> Any:
            t = P.quantity(P.one(p, "timestamp"), "timestamp") * 1000
            async with node.chain_lock:
                if t <= chain.head.timestamp:
                    raise RpcError(SERVER_ERROR, f"timestamp {t // 1000} is not after the "
                                                 f"head's {chain.head.timestamp // 1000}")
            node.next_timestamp_ms = t
            return None

        async def increase_time(s: Session, p: Any) -> Any:
            node.time_offset_ms += P.quantity(P.one(p, "seconds"), "seconds") * 1000
            return q(node.time_offset_ms // 1000)

        def set_account(name: str, make: Callable[[bytes, int], DevCall]) -> Any:
            """``hardhat_set<Name>(address, quantity)``: a Dev call on the account."""
            async def fn(s: Session, p: Any) -> Any:
                a, v = P.address_and_quantity(p, name)
                async with node.chain_lock:
                    who = self._account_id(a)
                await self._dev(make(who, v))
                return True
            return fn

        ratio = self.ratio
        account_setters = {
            # the balance in wei: native units and the dust below one
            "setBalance": set_account("balance", lambda who, v: DevSetBalance(
                who, *divmod(v, ratio))),
            "setNonce": set_account("nonce", DevSetNonce),
        }

        async def set_code(s: Session, p: Any) -> Any:
            addr, code = P.positional(p, ["address", "code"], 2)
            await self._dev(DevSetCode(P.address(addr, "address"), P.data(code, "code")))
            return True

        async def set_storage(s: Session, p: Any) -> Any:
            addr, slot, value = P.positional(p, ["address", "slot", "value"], 3)
            key = P.word(slot, "slot")
            word = P.data(value, "value")
            if len(word) > 32:
                raise P.bad("value", "more than 32 bytes")
            await self._dev(DevSetStorage(P.address(addr, "address"), key,
                                          word.rjust(32, b"\0")))
            return True

        async def impersonate(s: Session, p: Any) -> Any:
            node.impersonated.add(P.address(P.one(p, "address"), "address"))
            return True

        async def stop_impersonating(s: Session, p: Any) -> Any:
            node.impersonated.discard(P.address(P.one(p, "address"), "address"))
            return True

        table = {
            "eth_chainId": chain_id, "net_version": net_version, "net_listening": true,
            "web3_clientVersion": client_version, "eth_accounts": accounts,
            "eth_blockNumber": block_number, "eth_getBalance": get_balance,
            "eth_getTransactionCount": get_tx_count, "eth_gasPrice": gas_price,
            "eth_maxPriorityFeePerGas": max_priority, "eth_feeHistory": fee_history,
            "eth_call": call, "eth_estimateGas": estimate_gas,
            "eth_sendRawTransaction": send_raw, "eth_sendTransaction": send_tx,
            "eth_getTransactionReceipt": get_receipt, "eth_getTransactionByHash": get_tx,
            "eth_getBlockByNumber": block_by_number, "eth_getBlockByHash": block_by_hash,
            "eth_getBlockTransactionCountByNumber": tx_count_by_number,
            "eth_getBlockTransactionCountByHash": tx_count_by_hash,
            "eth_getTransactionByBlockNumberAndIndex": tx_by_number_index,
            "eth_getTransactionByBlockHashAndIndex": tx_by_hash_index,
            "eth_getCode": get_code, "eth_getStorageAt": get_storage_at,
            "eth_getLogs": get_logs, "eth_syncing": syncing,
        }
        # dev methods: only on a dev chain (the Dev pallet's; and snapshots rewind it)
        dev: dict[str, Any] = {
            "evm_snapshot": snapshot, "evm_revert": revert, "evm_mine": evm_mine,
            "hardhat_mine": mine, "anvil_mine": mine,
            "evm_setNextBlockTimestamp": set_next_ts, "evm_increaseTime": increase_time,
        }
        for prefix in ("hardhat_", "anvil_"):
            dev.update({prefix + name: fn for name, fn in account_setters.items()})
            dev.update({prefix + "setCode": set_code, prefix + "setStorageAt": set_storage,
                        prefix + "impersonateAccount": impersonate,
                        prefix + "stopImpersonatingAccount": stop_impersonating})
        if chain.genesis.dev:
            table.update(dev)
        for name, fn in table.items():
            d.add(name, fn)


__all__ = ["EthApi", "ChainError"]

"""The seeded sample workload: an ERC-20 token and a contract factory used by a set of
users, block after block.

Block 1 deploys the sample contracts from ``contracts/src`` (built by resolc): the
``Token`` (ERC-20), the ``Child`` code and the ``Factory`` that creates ``Child``
contracts.  Block 2 hands every user tokens.  Every later block holds transactions
drawn from ``random.Random(f"{seed}:{number}")``: token transfers (some larger than
the sender's balance, which revert with ``InsufficientBalance``), approvals and
``transferFrom`` spends, native balance transfers, factory ``make`` calls, and a few
invalid transactions (a wrong nonce, a bad signature, an unaffordable fee) that the
block builder must leave out.  Because each block's draw depends only on the seed and
the block number, running 10 blocks and then 10 more gives the same chain as running
20 at once.

:class:`TokenModel` is a plain-Python model of the token: every transaction is also
applied to it (the model predicts success or revert), and :meth:`Workload.check`
compares all balances, allowances and the total supply with the chain's.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from chain_sim.block import Block, Outcome
from chain_sim.chain import Chain, GenesisConfig
from chain_sim.extrinsic import (
    ContractCall,
    Extrinsic,
    InstantiateWithCode,
    Transfer,
    UploadCode,
)
from chain_sim.keys import Account
from contracts.abi import Abi, encode
from executor.revive.address import create1

DEPLOYER = "//Alice"
USER_BALANCE = 10**24
TOKEN_SUPPLY = 10**30
USER_GRANT = 10**21
GAS = 200_000_000             # gas limit of the workload's contract calls
INVALID: Any = object()       # marks a transaction the block builder must reject


class WorkloadError(RuntimeError):
    """The chain and the token model disagree, or the chain is not this workload's."""


@dataclass
class TokenModel:
    """ERC-20 balances and allowances, as the Token contract should keep them."""

    balances: dict[bytes, int] = field(default_factory=dict)
    allowances: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    total_supply: int = 0

    def transfer(self, sender: bytes, to: bytes, value: int) -> bool:
        if self.balances.get(sender, 0) < value:
            return False
        self.balances[sender] -= value
        self.balances[to] = self.balances.get(to, 0) + value
        return True

    def approve(self, owner: bytes, spender: bytes, value: int) -> bool:
        self.allowances[(owner, spender)] = value
        return True

    def transfer_from(self, spender: bytes, owner: bytes, to: bytes, value: int) -> bool:
        allowed = self.allowances.get((owner, spender), 0)
        if allowed < value or self.balances.get(owner, 0) < value:
            return False
        if allowed != (1 << 256) - 1:
            self.allowances[(owner, spender)] = allowed - value
        return self.transfer(owner, to, value)


@dataclass(frozen=True)
class Contracts:
    """The sample contracts (blob and ABI)."""

    token_blob: bytes
    token_abi: Abi
    factory_blob: bytes
    factory_abi: Abi
    child_blob: bytes

    @classmethod
    def build(cls) -> Contracts:
        """Builds (or takes from the cache) ``Token.sol`` and ``Factory.sol``."""
        from contracts.build import compiled

        token = compiled("Token")["Token"]
        factory = compiled("Factory")
        return cls(token.blob, Abi(token.abi), factory["Factory"].blob,
                   Abi(factory["Factory"].abi), factory["Child"].blob)


@dataclass(frozen=True)
class BlockSummary:
    """One line of ``chain run``."""

    number: int
    included: int
    rejected: int
    succeeded: int
    reverted: int
    failed: int
    gas_used: int
    state_root: bytes

    def line(self) -> str:
        return (f"block {self.number:5d}  txs {self.included:3d}  ok {self.succeeded:3d}  "
                f"reverted {self.reverted:2d}  failed {self.failed:2d}  rejected {self.rejected:2d}"
                f"  gas {self.gas_used:12,d}  state_root 0x{self.state_root.hex()}")


class Workload:
    """The sample workload over ``chain`` with ``users`` accounts ``//user/<i>``."""

    def __init__(self, chain: Chain, *, users: int = 16, txs_per_block: int = 24,
                 contracts: Contracts | None = None) -> None:
        self.chain = chain
        self.users = [Account.from_uri(f"//user/{i}") for i in range(users)]
        self.deployer = Account.from_uri(DEPLOYER)
        self.txs_per_block = txs_per_block
        self._contracts = contracts
        self.model = TokenModel()
        self._model_loaded = False

    @staticmethod
    def genesis(users: int = 16, **kw: Any) -> GenesisConfig:
        """A genesis endowing the deployer and ``users`` accounts."""
        accounts = [Account.from_uri(DEPLOYER)] + [Account.from_uri(f"//user/{i}")
                                                    for i in range(users)]
        return GenesisConfig(endowed=tuple((a.account_id, USER_BALANCE) for a in accounts),
                             **kw)

    @cached_property
    def contracts(self) -> Contracts:
        return self._contracts or Contracts.build()

    # ---- addresses (CREATE1 from the deployer's first nonces, block 1) ----
    @property
    def token(self) -> bytes:
        return create1(self.deployer.address, 0)

    @property
    def factory(self) -> bytes:
        return create1(self.deployer.address, 2)

    @property
    def deployed(self) -> bool:
        return self.chain.contract(self.token) is not None

    # ---- running ----
    def run(self, blocks: int, seed: int,
            on_block: Callable[[BlockSummary], None] | None = None) -> list[BlockSummary]:
        """Builds ``blocks`` more blocks; checks each receipt against the model."""
        out: list[BlockSummary] = []
        for _ in range(blocks):
            number = self.chain.head_number + 1
            xts: list[Extrinsic | bytes]
            expect: list[Any] | None
            if number == 1:
                xts, expect = list(self._deploy_block()), None
            elif number == 2:
                xts, expect = self._grant_block()
            else:
                xts, expect = self._random_block(random.Random(f"{seed}:{number}"))
            result = self.chain.build_block(xts)
            if number == 1:
                self._check_deploy(result.block)
            summary = self._summarise(result.block, len(result.rejected))
            if expect is not None:
                self._check_receipts(result.block, expect, [i for i, _ in result.rejected])
            out.append(summary)
            if on_block is not None:
                on_block(summary)
        return out

    def _sign(self, account: Account, call: Any, nonces: dict[bytes, int]) -> Extrinsic:
        n = nonces.get(account.account_id)
        if n is None:
            n = self.chain.nonce(account)
        nonces[account.account_id] = n + 1
        return self.chain.sign(account, call, nonce=n)

    def _call(self, abi: Abi, name: str, *args: Any) -> bytes:
        return abi.function(name).encode_call(list(args))

    def _deploy_block(self) -> list[Extrinsic]:
        c = self.contracts
        nonces: dict[bytes, int] = {}
        ctor = encode(c.token_abi.constructor_inputs, ["Sample Token", "SMPL", TOKEN_SUPPLY])
        return [
            self._sign(self.deployer, InstantiateWithCode(c.token_blob, ctor, gas_limit=GAS * 5),
                       nonces),
            self._sign(self.deployer, UploadCode(c.child_blob, 10**18), nonces),
            self._sign(self.deployer, InstantiateWithCode(c.factory_blob, b"",
                                                          gas_limit=GAS * 5), nonces),
        ]

    def _check_deploy(self, block: Block) -> None:
        for r in block.receipts:
            if not r.success:
                raise WorkloadError(f"deployment failed in block 1: {r.error} {r.output.hex()}")
        if self.chain.contract(self.token) is None or self.chain.contract(self.factory) is None:
            raise WorkloadError("the sample contracts are not at their expected addresses")
        self.model = TokenModel({self.deployer.address: TOKEN_SUPPLY}, {}, TOKEN_SUPPLY)
        self._model_loaded = True

    def load_model(self) -> None:
        """Reads the token's state for every workload account from the chain."""
        if not self.deployed:
            return
        accounts = [self.deployer] + self.users
        m = TokenModel(total_supply=self.token_call("totalSupply"))
        for a in accounts:
            m.balances[a.address] = self.token_call("balanceOf", a.address)
            for b in accounts:
                allowed = self.token_call("allowance", a.address, b.address)
                if allowed:
                    m.allowances[(a.address, b.address)] = allowed
        self.model = m
        self._model_loaded = True

    def _ensure_model(self) -> None:
        if not self._model_loaded:
            self.load_model()

    def _grant_block(self) -> tuple[list[Extrinsic | bytes], list[Any]]:
        self._ensure_model()
        nonces: dict[bytes, int] = {}
        xts: list[Extrinsic | bytes] = []
        expect: list[Any] = []
        for u in self.users:
            xts.append(self._sign(self.deployer, ContractCall(
                self.token, self._call(self.contracts.token_abi, "transfer", u.address,
                                       USER_GRANT), gas_limit=GAS), nonces))
            expect.append(self.model.transfer(self.deployer.address, u.address, USER_GRANT))
        return xts, expect

    def _random_block(self, rng: random.Random) -> tuple[list[Extrinsic | bytes], list[Any]]:
        """Transactions and, for each valid one, whether the token model expects
        success (``None`` entries: not token calls)."""
        self._ensure_model()
        abi = self.contracts.token_abi
        nonces: dict[bytes, int] = {}
        xts: list[Extrinsic | bytes] = []
        expect: list[Any] = []
        m = self.model
        for _ in range(self.txs_per_block):
            kind = rng.random()
            a, b = rng.sample(self.users, 2)
            if kind < 0.55:        # token transfer; 1 in 8 more than the balance
                bal = m.balances.get(a.address, 0)
                value = bal + rng.randint(1, 10**18) if rng.random() < 0.125 else \
                    rng.randint(0, max(bal // 4, 1))
                xts.append(self._sign(a, ContractCall(self.token, self._call(
                    abi, "transfer", b.address, value), gas_limit=GAS), nonces))
                expect.append(m.transfer(a.address, b.address, value))
            elif kind < 0.65:      # approve
                value = rng.randint(0, 10**20)
                xts.append(self._sign(a, ContractCall(self.token, self._call(
                    abi, "approve", b.address, value), gas_limit=GAS), nonces))
                expect.append(m.approve(a.address, b.address, value))
            elif kind < 0.78:      # transferFrom by a spender (often over the allowance)
                c = rng.choice(self.users)
                value = rng.randint(0, 10**20)
                xts.append(self._sign(b, ContractCall(self.token, self._call(
                    abi, "transferFrom", a.address, c.address, value), gas_limit=GAS), nonces))
                expect.append(m.transfer_from(b.address, a.address, c.address, value))
            elif kind < 0.88:      # native transfer
                xts.append(self._sign(a, Transfer(b.account_id, rng.randint(1, 10**18)),
                                      nonces))
                expect.append(None)
            elif kind < 0.96:      # factory: make a child
                xts.append(self._sign(a, ContractCall(self.factory, self._call(
                    self.contracts.factory_abi, "make", rng.randint(0, 1000)),
                    gas_limit=GAS * 4), nonces))
                expect.append(None)
            else:                  # invalid: the builder must leave these out
                xts.append(self._invalid(rng, a, b, nonces))
                expect.append(INVALID)
        return xts, expect

    def _invalid(self, rng: random.Random, a: Account, b: Account,
                 nonces: dict[bytes, int]) -> Extrinsic | bytes:
        n = nonces.get(a.account_id, self.chain.nonce(a))
        call = Transfer(b.account_id, 1)
        pick = rng.randrange(4)
        if pick == 0:      # a nonce from the future
            return self.chain.sign(a, call, nonce=n + 5)
        if pick == 1:      # signed by someone else
            xt = self.chain.sign(b, call, nonce=n)
            return Extrinsic(a.account_id, xt.signature, n, call)
        if pick == 2:      # more than the account has
            return self.chain.sign(a, Transfer(b.account_id, 10**30), nonce=n)
        return bytes([0x84]) + rng.randbytes(rng.randrange(0, 80))   # garbage

    def _check_receipts(self, block: Block, expect: list[Any], rejected: list[int]) -> None:
        invalid = [i for i, want in enumerate(expect) if want is INVALID]
        if rejected != invalid:
            raise WorkloadError(f"block {block.number}: transactions {rejected} were left out, "
                                f"the workload made {invalid} invalid")
        valid = [want for want in expect if want is not INVALID]
        if len(valid) != len(block.receipts):
            raise WorkloadError(f"block {block.number}: {len(block.receipts)} receipts for "
                                f"{len(valid)} valid transactions")
        for i, (r, want) in enumerate(zip(block.receipts, valid, strict=True)):
            if want is None:
                continue
            if r.success != want:
                raise WorkloadError(
                    f"block {block.number} tx {i}: the token model expected "
                    f"{'success' if want else 'a revert'}, the chain says {r.outcome.value}"
                    f" ({r.error or ''})")

    def _summarise(self, block: Block, rejected: int) -> BlockSummary:
        outcomes = [r.outcome for r in block.receipts]
        return BlockSummary(block.number, len(block.receipts), rejected,
                            outcomes.count(Outcome.SUCCESS), outcomes.count(Outcome.REVERTED),
                            outcomes.count(Outcome.FAILED), block.header.gas_used,
                            block.header.state_root)

    # ---- checking ----
    def token_call(self, name: str, *args: Any) -> Any:
        f = self.contracts.token_abi.function(name)
        r = self.chain.query(self.token, f.encode_call(list(args)))
        if not r.success:
            raise WorkloadError(f"{name}{args} failed: {r.error} 0x{r.data.hex()}")
        return f.decode_result(r.data)

    def check(self) -> int:
        """Compares every modelled balance and allowance with the chain; returns how
        many values were compared."""
        if not self.deployed:
            return 0
        self._ensure_model()
        m = self.model
        checked = 0
        if self.token_call("totalSupply") != m.total_supply:
            raise WorkloadError("totalSupply differs from the model")
        accounts = [self.deployer] + self.users
        for a in accounts:
            got = self.token_call("balanceOf", a.address)
            if got != m.balances.get(a.address, 0):
                raise WorkloadError(f"balanceOf({a.ss58}) = {got}, the model says "
                                    f"{m.balances.get(a.address, 0)}")
            checked += 1
        for (owner, spender), want in m.allowances.items():
            if self.token_call("allowance", owner, spender) != want:
                raise WorkloadError(f"allowance(0x{owner.hex()}, 0x{spender.hex()}) differs")
            checked += 1
        if sum(m.balances.values()) != m.total_supply:
            raise WorkloadError("the model's balances do not add up to the supply")
        return checked + 1

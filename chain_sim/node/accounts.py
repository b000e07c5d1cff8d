"""The dev node's accounts, funded at genesis: the Substrate dev keys (sr25519
``//Alice`` .. ``//Ferdie``) and the ten accounts of the standard Ethereum dev
mnemonic (the ones anvil and Hardhat print), each mapped to the account id
pallet-revive gives an Ethereum address (``H160 ++ 0xEE * 12``)."""

from __future__ import annotations

from dataclasses import dataclass

from chain_sim.keys import Account, fallback_account_id

SUBSTRATE_NAMES = ("Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie")
DEV_MNEMONIC = "test test test test test test test test test test test junk"
ETH_ACCOUNTS = 10
DEV_RATIO = 10**6
"""The dev chain's ``native_to_eth_ratio`` (pallet-revive's dev node's: native 12
decimals, Ethereum 18)."""
DEV_BALANCE_WEI = 10**22
"""What each dev account holds at genesis: 10,000 units (10^22 wei, as anvil's)."""
DEV_BALANCE = DEV_BALANCE_WEI // DEV_RATIO
"""The same in native units on a chain with the default ratio."""


@dataclass(frozen=True)
class EthDevAccount:
    address: bytes        # 20 bytes
    private_key: bytes    # 32 bytes

    @property
    def account_id(self) -> bytes:
        return fallback_account_id(self.address)

    @property
    def checksum(self) -> str:
        from eth_utils.address import to_checksum_address

        return str(to_checksum_address(self.address))


def substrate_accounts() -> list[Account]:
    return [Account.from_uri("//" + n) for n in SUBSTRATE_NAMES]


def eth_accounts(n: int = ETH_ACCOUNTS) -> list[EthDevAccount]:
    from eth_account import Account as EthAccount

    EthAccount.enable_unaudited_hdwallet_features()
    out = []
    for i in range(n):
        acct = EthAccount.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        out.append(EthDevAccount(bytes.fromhex(acct.address[2:]), bytes(acct.key)))
    return out

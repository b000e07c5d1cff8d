"""The gas a host function charges, in PolkaVM gas (the unit instructions are metered in).

pallet-revive meters Substrate weight (ref_time picoseconds) and converts PolkaVM fuel
to ref_time with a benchmarked ``ref_time_per_fuel``; its host-function weights are
per-runtime benchmark results (spec section 1.8).  This executor meters everything in
PolkaVM gas instead, so the table below is our own deterministic schedule: each number
is the Dec-2024 benchmark weight quoted in shared/research/revive-and-substrate.md 1.9
divided by a nominal ``10_000`` ps per gas and rounded, with per-byte slopes expressed
per started 32-byte word.  Entries without a benchmark figure were chosen in the same
range as similar functions.

Every host call pays ``host_fn`` first (the pallet's ``RuntimeCosts::HostFn``), then
its own entry.  Sub-calls and instantiations also pay ``code_load_per_word`` for the
callee's blob out of the gas given to the callee.

=========================  =====  ========  =================================================
entry                      base   per word  charged by
=========================  =====  ========  =================================================
host_fn                    17     -         every host call
getter                     20     -         address, caller, origin, value_transferred, now,
                                            block_number, block_author, chain_id, base_fee,
                                            gas_limit, gas_price, ref_time_left,
                                            call_data_size, return_data_size
balance                    100    -         balance
balance_of                 937    -         balance_of
block_hash                 300    -         block_hash
code_info                  900    -         code_hash, code_size
call_data_load             20     -         call_data_load
copy                       20     1         call_data_copy (out_len), return_data_copy,
                                            get_immutable_data, weight_to_fee
copy_to_contract           0      1         output of call/delegate_call/instantiate
copy_from_contract         0      1         input of call/delegate_call, seal_return data
get_storage                942    4         persistent get_storage (value length)
set_storage                977    6         persistent set_storage (new value length)
transient_storage          100    1         transient get/set
deposit_event              428    3         deposit_event, plus ``event_topic`` per topic
event_topic                20     -
hash_keccak_256            336    12        hash_keccak_256 (input length)
set_immutable_data         300    1         set_immutable_data
call                       4290   -         call (``transfer_surcharge`` more with value)
delegate_call              4000   -         delegate_call
transfer_surcharge         1000   -
instantiate                11500  13        instantiate (input length)
code_load_per_word         0      1         loading the callee's blob
precompiles                -      -         0x01..0x09: Ethereum gas x 2.5, see
                                            :mod:`executor.revive.precompiles`
=========================  =====  ========  =================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from executor.revive.precompiles import DEFAULT_PRECOMPILE_COSTS, PrecompileCosts


def words(n: int) -> int:
    """Started 32-byte words in ``n`` bytes."""
    return (n + 31) >> 5


@dataclass(frozen=True)
class CostTable:
    """Host-function costs in PolkaVM gas (see the module docstring for the table)."""

    host_fn: int = 17
    getter: int = 20
    balance: int = 100
    balance_of: int = 937
    block_hash: int = 300
    code_info: int = 900
    call_data_load: int = 20
    copy: int = 20
    copy_per_word: int = 1
    get_storage: int = 942
    get_storage_per_word: int = 4
    set_storage: int = 977
    set_storage_per_word: int = 6
    transient_storage: int = 100
    transient_storage_per_word: int = 1
    deposit_event: int = 428
    deposit_event_per_word: int = 3
    event_topic: int = 20
    hash_keccak_256: int = 336
    hash_keccak_256_per_word: int = 12
    set_immutable_data: int = 300
    call: int = 4290
    delegate_call: int = 4000
    transfer_surcharge: int = 1000
    instantiate: int = 11500
    instantiate_per_word: int = 13
    code_load_per_word: int = 1
    precompiles: PrecompileCosts = DEFAULT_PRECOMPILE_COSTS
    """The Ethereum precompiles at 0x01..0x09 (see :mod:`executor.revive.precompiles`)."""

    def copy_bytes(self, n: int) -> int:
        """A copy of ``n`` bytes into or out of guest memory (no base)."""
        return self.copy_per_word * words(n)

    def code_load(self, blob_len: int) -> int:
        return self.code_load_per_word * words(blob_len)


DEFAULT_COSTS = CostTable()

"""Substrate JSON-RPC (placeholder until the metadata lands)."""

from __future__ import annotations

from chain_sim.node.jsonrpc import Dispatcher
from chain_sim.node.service import Node


class SubstrateApi:
    def __init__(self, node: Node) -> None:
        self.node = node

    def register(self, d: Dispatcher) -> None:
        pass

"""Hand-written JSON ABIs of the sample contracts in shared/contracts-sample/src/
(what solc would emit for them), and the paths of their pre-compiled blobs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "contracts-sample" / "out"

Entry = dict[str, Any]


def _params(spec: str) -> list[Entry]:
    """``"uint256 v, address indexed to"`` -> JSON ABI parameters."""
    out: list[Entry] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        words = part.split()
        p: Entry = {"type": words[0], "name": words[-1] if len(words) > 1 else ""}
        if "indexed" in words[1:]:
            p["indexed"] = True
            if len(words) == 2:
                p["name"] = ""
        out.append(p)
    return out


def fn(name: str, inputs: str = "", outputs: str = "", mut: str = "nonpayable") -> Entry:
    return {"type": "function", "name": name, "inputs": _params(inputs),
            "outputs": _params(outputs), "stateMutability": mut}


def event(name: str, inputs: str) -> Entry:
    params = _params(inputs)
    for p in params:
        p.setdefault("indexed", False)
    return {"type": "event", "name": name, "inputs": params, "anonymous": False}


def error(name: str, inputs: str) -> Entry:
    return {"type": "error", "name": name, "inputs": _params(inputs)}


def constructor(inputs: str = "", mut: str = "nonpayable") -> Entry:
    return {"type": "constructor", "inputs": _params(inputs), "stateMutability": mut}


COUNTER_BLOB = SAMPLES / "Counter_sol_Counter.polkavm"
TOKEN_BLOB = SAMPLES / "Token_sol_Token.polkavm"
FACTORY_BLOB = SAMPLES / "Factory_sol_Factory.polkavm"
CHILD_BLOB = SAMPLES / "Factory_sol_Child.polkavm"
MISC_BLOB = SAMPLES / "Misc_sol_Misc.polkavm"

COUNTER_ABI = [
    fn("count", outputs="uint256", mut="view"),
    fn("inc"),
    fn("fib", "uint256 n", "uint256", mut="pure"),
    event("Incremented", "uint256 newCount"),
]

TOKEN_ABI = [
    constructor("string _name, string _symbol, uint256 initialSupply"),
    fn("name", outputs="string", mut="view"),
    fn("symbol", outputs="string", mut="view"),
    fn("decimals", outputs="uint8", mut="view"),
    fn("totalSupply", outputs="uint256", mut="view"),
    fn("owner", outputs="address", mut="view"),
    fn("balanceOf", "address", "uint256", mut="view"),
    fn("allowance", "address, address", "uint256", mut="view"),
    fn("transfer", "address to, uint256 value", "bool"),
    fn("approve", "address spender, uint256 value", "bool"),
    fn("transferFrom", "address from, address to, uint256 value", "bool"),
    fn("mint", "address to, uint256 value"),
    event("Transfer", "address indexed from, address indexed to, uint256 value"),
    event("Approval", "address indexed owner, address indexed spender, uint256 value"),
    error("InsufficientBalance", "uint256 available, uint256 required"),
]

CHILD_ABI = [
    constructor("uint256 v", mut="payable"),
    fn("value", outputs="uint256", mut="view"),
    fn("creator", outputs="address", mut="view"),
    fn("get", outputs="uint256", mut="view"),
    fn("add", "uint256 v", "uint256"),
    fn("fail", mut="pure"),
    event("Created", "address indexed creator, uint256 value"),
]

FACTORY_ABI = [
    fn("value", outputs="uint256", mut="view"),
    fn("lastChild", outputs="address", mut="view"),
    fn("make", "uint256 v", "address", mut="payable"),
    fn("make2", "uint256 v, bytes32 salt", "address"),
    fn("callGet", "address target", "uint256", mut="view"),
    fn("callAdd", "address target, uint256 v", "uint256"),
    fn("tryFail", "address target", "bool ok, string reason"),
    fn("lowLevel", "address target, bytes data", "bool, bytes"),
    fn("delegateAdd", "address impl, uint256 v", "uint256"),
    fn("codeInfo", "address target", "uint256 size, bytes32 hash", mut="view"),
    event("Deployed", "address child, bool viaCreate2"),
]

MISC_ABI = [
    {"type": "receive", "stateMutability": "payable"},
    fn("counter", outputs="uint256", mut="view"),
    fn("lastHash", outputs="bytes32", mut="view"),
    fn("hash", "bytes data", "bytes32 h"),
    fn("hashLoop", "uint256 n", "bytes32 h", mut="pure"),
    fn("context", outputs="uint256, uint256, address, address, uint256"),
    fn("moreContext", outputs="address, uint256, uint256, uint256, uint256, bytes32",
       mut="view"),
    fn("whoami", outputs="address self, address sender", mut="view"),
    fn("selfBalance", outputs="uint256", mut="view"),
    fn("balanceOfAddr", "address a", "uint256", mut="view"),
    fn("deposit", outputs="uint256", mut="payable"),
    fn("pay", "address to, uint256 amount"),
    fn("trySend", "address to, uint256 amount", "bool"),
    fn("sum", "uint256 n", "uint256 s", mut="pure"),
    fn("fail", "uint256 code", mut="pure"),
    fn("tstoreRoundTrip", "uint256 v", "uint256 r"),
    event("Paid", "address indexed from, uint256 amount"),
    event("Ctx", "uint256 number, uint256 timestamp, uint256 chainId, address origin"),
    error("TooSmall", "uint256 got, uint256 want"),
]

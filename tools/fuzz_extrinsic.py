#!/usr/bin/env python3
"""Fuzz campaign: mutated signed extrinsics and blocks through ``chain_sim``.

    .venv/bin/python tools/fuzz_extrinsic.py --seconds 600 [--asan] [--backend jit]

Two in-memory chains from one genesis (the sample ERC-20 and factory deployed in
blocks 1-2): the *builder* makes a block per input, the *importer* re-executes it.
Each input (a pure function of ``--seed``, its index and the chain history, so a
chunk replays exactly from its start) is one of:

* ``bytes``: 1-4 valid signed extrinsics (transfers, ERC-20 calls, code uploads,
  instantiations), each mutated at the byte level (flips, overwrites, inserts,
  deletes, truncation, splices), built into a block;
* ``fields``: calls with hostile field values (nonces, tips, gas limits, values,
  destinations, call data, mutated contract blobs, salts), *validly signed*, so they
  reach execution;
* ``block``: a valid block of the builder, mutated (header fields, extrinsic list,
  encoded header/body bytes) and offered to the importer.

The bar, per input: no crash, no hang, no *foreign* exception (only the package's
errors: ``PvmError``, ``ChainError``/``BlockError``, ``InvalidTransaction``,
``DBError``, the SCALE/codec errors); a block whose extrinsics were all rejected
changes no state but the block number and time (its undo record has no other key);
a rejected block leaves the importer's head and state root as they were; the
importer accepts every valid block of the builder with the same state root.

Inputs run in child processes that record the input they are on in a small file;
a child that dies (a C crash, an abort, a sanitizer report) or stops making progress
for ``--stall`` seconds is reported with the input, and the next child resumes after
it.  ``--asan`` runs the children against the AddressSanitizer/UBSan build in
build-asan/ (``make test-asan`` makes it).  The last line printed is
``inputs N, included X, rejected Y, package_errors Z, foreign_exceptions F,
invariant_violations V, crashes C, hangs H``.  Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import signal
import struct
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

DEFAULT_OUT = Path("/tmp/fuzz_extrinsic")
COUNTERS = ("inputs", "included", "rejected", "valid_mutants", "package_errors",
            "foreign_exceptions", "invariant_violations")
INTERESTING_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 0xFFFFFFFF, 1 << 32, (1 << 63) - 1,
                    1 << 63, (1 << 64) - 1, 1 << 64, (1 << 128) - 1, 10**18, 10**30)


# ---------------------------------------------------------------- mutation helpers


def mutate_bytes(data: bytes, rng: random.Random, pool: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:  # bit flip
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1 and b:  # overwrite a byte with an interesting value
            b[rng.randrange(len(b))] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2:  # insert bytes
            i = rng.randrange(len(b) + 1)
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 3 and b:  # delete a range
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 16)]
        elif op == 4 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif op == 5 and pool:  # splice with another input
            other = rng.choice(pool)
            i, j = rng.randrange(len(b) + 1), rng.randrange(len(other) + 1)
            b = b[:i] + other[j:]
        elif b:  # a compact length prefix at a random place set to a huge value
            i = rng.randrange(len(b))
            b[i:i + 1] = rng.choice((b"\x03\xff\xff\xff\xff", b"\x13" + b"\xff" * 8,
                                     b"\xff" * 5, b"\xfd\xff\xff\xff"))
    return bytes(b)


def pick_int(rng: random.Random, sensible: int) -> int:
    r = rng.random()
    if r < 0.4:
        return sensible
    if r < 0.7:
        return rng.choice(INTERESTING_INTS)
    return max(0, sensible + rng.randint(-3, 3))


# ---------------------------------------------------------------- the campaign


class Campaign:
    """The two chains and the input generator of one child process."""

    def __init__(self, seed: int, backend: str, sandbox: str | None) -> None:
        from chain_sim import Chain
        from chain_sim.workload import Workload

        self.seed = seed
        genesis = Workload.genesis(users=4)
        self.builder = Chain.create(genesis, None, backend=backend, sandbox=sandbox)
        self.importer = Chain.create(genesis, None, backend=backend, sandbox=sandbox)
        self.workload = Workload(self.builder, users=4, txs_per_block=8)
        self.workload.run(2, seed)  # block 1: deploy; block 2: token grants
        for n in (1, 2):
            self.importer.import_block(self.builder.block(n))
        self.accounts = [self.workload.deployer, *self.workload.users]
        self.contracts = self.workload.contracts
        self.pool: list[bytes] = []
        empty = self.builder.build_block([])
        self.importer.import_block(empty.block)
        self.quiet_keys = set(self.builder.db.undo(empty.block.number))

    # ---- valid material ----
    def valid_call(self, rng: random.Random) -> Any:
        from chain_sim.extrinsic import (
            ContractCall,
            Instantiate,
            InstantiateWithCode,
            Transfer,
            UploadCode,
        )
        from executor.revive import keccak256

        c = self.contracts
        users = self.workload.users
        kind = rng.randrange(6)
        if kind == 0:
            return Transfer(rng.choice(users).account_id, rng.randrange(1, 10**12))
        if kind in (1, 2):
            fn = rng.choice(("transfer", "approve"))
            data = c.token_abi.function(fn).encode_call(
                [rng.choice(users).address, rng.randrange(0, 1000)])
            return ContractCall(self.workload.token, data, gas_limit=rng.choice(
                (10**9, 10**8, 10**6)))
        if kind == 3:
            return UploadCode(c.child_blob, 10**18)
        if kind == 4:
            return Instantiate(keccak256(c.child_blob), b"", 0, 10**9, 10**18,
                               rng.randbytes(32) if rng.random() < 0.5 else None)
        return InstantiateWithCode(c.child_blob, b"", 0, 10**9, 10**18, rng.randbytes(32))

    def hostile_call(self, rng: random.Random) -> Any:
        """A call whose fields are mutated (it is signed validly afterwards)."""
        from dataclasses import fields, replace

        call = self.valid_call(rng)
        changes: dict[str, Any] = {}
        for f in fields(call):
            if rng.random() > 0.4:
                continue
            value = getattr(call, f.name)
            if isinstance(value, int):
                changes[f.name] = pick_int(rng, value)
            elif isinstance(value, bytes):
                if f.name == "code":
                    changes[f.name] = mutate_bytes(value, rng, [self.contracts.token_blob])
                elif f.name in ("dest", "code_hash", "salt") and rng.random() < 0.5:
                    changes[f.name] = rng.choice((bytes(len(value)), rng.randbytes(len(value)),
                                                  self.workload.token[:len(value)]))
                else:
                    changes[f.name] = mutate_bytes(value, rng, self.pool)
        return replace(call, **changes)

    def sign(self, rng: random.Random, call: Any, account: Any = None) -> bytes:
        from chain_sim.extrinsic import InvalidTransaction

        account = account or rng.choice(self.accounts)
        nonce = self.builder.nonce(account)
        if rng.random() < 0.15:
            nonce = pick_int(rng, nonce) & 0xFFFFFFFF
        tip = 0 if rng.random() < 0.7 else pick_int(rng, 0)
        try:
            return self.builder.sign(account, call, nonce=nonce, tip=tip).encode()
        except InvalidTransaction:  # a field the encoder refuses: sign a valid call
            return self.builder.sign(account, self.valid_call(rng)).encode()

    # ---- one input ----
    def run(self, index: int, counts: dict[str, int], report: Any) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        mode = rng.choices(("bytes", "fields", "block"), (4, 4, 2))[0]
        counts["inputs"] += 1
        if mode == "block":
            self.block_input(rng, counts, report)
            return
        xts: list[bytes] = []
        for _ in range(rng.randint(1, 4)):
            if mode == "bytes":
                raw = self.sign(rng, self.valid_call(rng))
                self.pool.append(raw)
                xts.append(mutate_bytes(raw, rng, self.pool))
            else:
                xts.append(self.sign(rng, self.hostile_call(rng)))
        del self.pool[:-64]
        self.build(xts, counts, report, f"{mode} input {index}")

    def build(self, xts: list[bytes], counts: dict[str, int], report: Any, what: str) -> None:
        before = self.builder.head_number
        try:
            result = self.builder.build_block(xts)
        except PACKAGE_ERRORS as exc:
            counts["package_errors"] += 1
            report("package_error", what, exc, xts)
            return
        rejected = len(result.rejected)
        counts["rejected"] += rejected
        counts["included"] += len(result.block.extrinsics)
        block = result.block
        if block.number != before + 1 or len(block.receipts) != len(block.extrinsics) or \
                len(block.extrinsics) + rejected != len(xts):
            counts["invariant_violations"] += 1
            report("invariant", what, f"block {block.number}: {len(block.extrinsics)} included"
                   f" + {rejected} rejected of {len(xts)}", xts)
        if not block.extrinsics:
            touched = set(self.builder.db.undo(block.number)) - self.quiet_keys
            if touched:
                counts["invariant_violations"] += 1
                report("invariant", what, f"a block of rejected extrinsics changed "
                       f"{len(touched)} state keys", xts)
        # the importer re-executes the valid block
        try:
            self.importer.import_block(block)
        except PACKAGE_ERRORS as exc:
            counts["invariant_violations"] += 1
            report("invariant", what, f"the importer rejected a valid block: {exc}", xts)
            raise SystemExit(4) from None  # the chains diverged: restart from scratch
        if self.importer.state_root != self.builder.state_root:
            counts["invariant_violations"] += 1
            report("invariant", what, "importer and builder state roots differ", xts)
            raise SystemExit(4)

    def block_input(self, rng: random.Random, counts: dict[str, int], report: Any) -> None:
        """The builder's next block (valid), mutated a few ways and offered to the
        importer, which must refuse each mutant unchanged; then the valid block."""
        from dataclasses import replace

        from chain_sim.block import Block, Header, decode_body, encode_body

        xts = [self.sign(rng, self.valid_call(rng)) for _ in range(rng.randint(0, 3))]
        head_before = self.builder.head_number
        result = self.builder.build_block(xts)
        good = result.block
        hd = good.header
        what = f"block input (block {good.number})"
        mutants: list[Block] = []
        for _ in range(3):
            m = rng.randrange(5)
            if m == 0:
                name = rng.choice(("parent_hash", "state_root", "extrinsics_root",
                                   "receipts_root", "author"))
                mutants.append(replace(good, header=replace(hd, **{name: mutate_bytes(
                    getattr(hd, name), rng, [])[:32].ljust(32, b"\0")})))
            elif m == 1:
                name = rng.choice(("number", "timestamp", "gas_limit", "gas_used"))
                mutants.append(replace(good, header=replace(
                    hd, **{name: pick_int(rng, getattr(hd, name)) & ((1 << 64) - 1)})))
            elif m == 2:
                ex = list(good.extrinsics)
                op = rng.randrange(4)
                if op == 0 and ex:
                    ex.pop(rng.randrange(len(ex)))
                elif op == 1 and ex:
                    ex.append(rng.choice(ex))
                elif op == 2 and ex:
                    i = rng.randrange(len(ex))
                    ex[i] = mutate_bytes(ex[i], rng, self.pool)
                else:
                    ex.insert(0, mutate_bytes(self.sign(rng, self.valid_call(rng)), rng,
                                              self.pool))
                mutants.append(replace(good, extrinsics=ex))
            else:  # through the wire formats
                raw_h, raw_b = hd.encode(), encode_body(list(good.extrinsics))
                if m == 3:
                    raw_h = mutate_bytes(raw_h, rng, [])
                else:
                    raw_b = mutate_bytes(raw_b, rng, self.pool)
                try:
                    mutants.append(Block(Header.decode(raw_h), decode_body(raw_b)))
                except PACKAGE_ERRORS:
                    counts["rejected"] += 1
                except Exception as exc:  # noqa: BLE001 - the finding this tool looks for
                    counts["foreign_exceptions"] += 1
                    report("foreign", what + " (decode)", exc, [raw_h, raw_b])
        for mutant in mutants:
            root, head = self.importer.state_root, self.importer.head_number
            if mutant.header == hd and list(mutant.extrinsics) == list(good.extrinsics):
                continue  # the mutation changed nothing
            try:
                self.importer.import_block(mutant)
            except PACKAGE_ERRORS:
                counts["rejected"] += 1
                if (self.importer.state_root, self.importer.head_number) != (root, head):
                    counts["invariant_violations"] += 1
                    report("invariant", what, "a rejected block changed the importer", [])
                continue
            except Exception as exc:  # noqa: BLE001 - the finding this tool looks for
                counts["foreign_exceptions"] += 1
                report("foreign", what, exc, list(mutant.extrinsics))
                raise SystemExit(4) from None
            # accepted: it re-executed to exactly its own header, so it is a valid block
            # too (another author of a block without fees); the chains now differ,
            # so this child ends and the next one starts from fresh chains
            diff = sorted(n for n in vars(hd) if getattr(hd, n) != getattr(mutant.header, n))
            counts["valid_mutants"] += 1
            same = list(mutant.extrinsics) == list(good.extrinsics)
            if not (diff == ["author"] and same and not good.extrinsics):
                counts["invariant_violations"] += 1  # only a fee-less block may change author
                report("invariant", what, f"the importer accepted a mutated block: header "
                       f"fields {diff}, extrinsics {'same' if same else 'changed'}",
                       list(mutant.extrinsics))
                raise SystemExit(4)
            report("valid_mutant", what, f"accepted a different valid block: header fields "
                   f"{diff}, extrinsics {'same' if same else 'changed'}",
                   list(mutant.extrinsics))
            raise SystemExit(5)
        assert self.builder.head_number == head_before + 1
        self.importer.import_block(good)
        counts["included"] += len(good.extrinsics)


def _package_errors() -> tuple[type[BaseException], ...]:
    from chain_sim.chain import ChainError
    from chain_sim.codec import CodecError
    from chain_sim.db import DBError
    from chain_sim.extrinsic import InvalidTransaction
    from chain_sim.scale import ScaleError
    from executor.errors import PvmError

    return (PvmError, ChainError, InvalidTransaction, DBError, ScaleError, CodecError)


PACKAGE_ERRORS: tuple[type[BaseException], ...] = ()


# ---------------------------------------------------------------- child process


def worker_main(args: argparse.Namespace) -> int:
    global PACKAGE_ERRORS
    PACKAGE_ERRORS = _package_errors()
    out = Path(args.out)
    with open(args.progress, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8 * (1 + len(COUNTERS)))
    campaign = Campaign(args.seed, args.backend, args.sandbox)
    counts = dict.fromkeys(COUNTERS, 0)

    def report(kind: str, what: str, detail: Any, inputs: list[bytes]) -> None:
        stem = out / f"{kind}-{args.seed}-{index}"
        text = detail if isinstance(detail, str) else "".join(
            traceback.format_exception(detail))
        stem.with_suffix(".txt").write_text(f"{what}\n{text}")
        stem.with_suffix(".json").write_text(json.dumps([x.hex() for x in inputs]))
        if kind not in ("package_error", "valid_mutant"):
            print(f"{kind.upper()} at input {index}: {what}: {text.splitlines()[-1]}",
                  file=sys.stderr, flush=True)

    deadline = time.monotonic() + args.seconds
    index = args.start
    while index < args.start + args.count and time.monotonic() < deadline:
        struct.pack_into("<q", mm, 0, index)
        try:
            campaign.run(index, counts, report)
        except PACKAGE_ERRORS as exc:
            counts["package_errors"] += 1
            report("package_error", "input", exc, [])
        except Exception as exc:  # noqa: BLE001 - the finding this tool looks for
            counts["foreign_exceptions"] += 1
            report("foreign", "input", exc, [])
        finally:  # also when a finding ends the child (SystemExit(4))
            struct.pack_into(f"<{len(COUNTERS)}q", mm, 8, *(counts[k] for k in COUNTERS))
        index += 1
    struct.pack_into("<q", mm, 0, -index - 1)  # done: -(next index) - 1
    mm.flush()
    return 0


# ---------------------------------------------------------------- parent


def child_env(asan: str | None) -> dict[str, str]:
    from fuzz_blob import child_env as blob_child_env

    return blob_child_env(asan)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=500, help="inputs per child process")
    ap.add_argument("--backend", default="both", choices=("both", "interpreter", "jit"),
                    help="'both' alternates chunks between the interpreter and the JIT")
    ap.add_argument("--sandbox", default=None, choices=(None, "linux"))
    ap.add_argument("--stall", type=float, default=120.0,
                    help="seconds without progress on one input that count as a hang")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="where findings are saved")
    ap.add_argument("--asan", nargs="?", const=str(ROOT / "build-asan"), metavar="DIR",
                    help="children use the AddressSanitizer/UBSan build in DIR")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--progress", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = child_env(args.asan)
    progress = out / f"progress-{args.seed}-{os.getpid()}.bin"
    totals = dict.fromkeys(COUNTERS, 0)
    crashes: list[tuple[int, str]] = []
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    pos = 0
    chunks = 0
    while time.monotonic() < deadline:
        backend = args.backend if args.backend != "both" else ("interpreter", "jit")[chunks % 2]
        chunks += 1
        progress.write_bytes(bytes(8 * (1 + len(COUNTERS))))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--seed",
               str(args.seed), "--start", str(pos), "--count", str(args.chunk), "--out",
               str(out), "--progress", str(progress), "--backend", backend,
               "--seconds", str(max(1.0, deadline - time.monotonic()))]
        if args.sandbox:
            cmd += ["--sandbox", args.sandbox]
        log = out / "child-stderr.txt"
        with open(log, "w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env,
                                    start_new_session=True)
            last, since = None, time.monotonic()
            kind = ""
            while proc.poll() is None:
                time.sleep(0.5)
                state = progress.read_bytes()[:8]
                if state != last:
                    last, since = state, time.monotonic()
                elif time.monotonic() - since > args.stall:
                    kind = "hang"
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        raw = progress.read_bytes()
        at = struct.unpack_from("<q", raw, 0)[0]
        counts = struct.unpack_from(f"<{len(COUNTERS)}q", raw, 8)
        for k, v in zip(COUNTERS, counts, strict=True):
            totals[k] += v
        rc = proc.returncode
        if not kind and at < 0 and rc == 0:
            pos = -at - 1
            continue
        if not kind:
            kind = f"signal {-rc}" if rc < 0 else f"exit status {rc}"
        if rc in (4, 5) and at >= 0:  # the child stopped after reporting a finding
            pos = at + 1
            continue
        stderr = log.read_text(errors="replace")[-8000:]
        saved = out / f"crash-{args.seed}-{at}.txt"
        saved.write_text(f"{kind}\nseed {args.seed} chunk start {pos} index {at}\n"
                         f"replay: --worker --start {pos} --count {at - pos + 1}\n"
                         f"--- stderr (tail) ---\n{stderr}")
        crashes.append((at, kind))
        print(f"CRASH ({kind}) at input {at}: {saved}", flush=True)
        totals["inputs"] += 1
        pos = max(at, pos) + 1
    progress.unlink(missing_ok=True)
    hangs = sum(1 for _, k in crashes if k == "hang")
    wall = time.monotonic() - t0
    print(", ".join(f"{k} {totals[k]}" for k in COUNTERS)
          + f", crashes {len(crashes) - hangs}, hangs {hangs}")
    print(f"wall {wall:.0f} s (seed {args.seed}, backend {args.backend}"
          f"{', sandbox ' + args.sandbox if args.sandbox else ''}"
          f"{', asan' if args.asan else ''}); findings under {out}")
    bad = totals["foreign_exceptions"] + totals["invariant_violations"] + len(crashes)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

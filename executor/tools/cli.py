"""The ``pvm-exec`` command line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from executor.errors import PvmError


def _read_text(path: str | Path, what: str) -> str:
    """The text of a user's file; a missing, unreadable or non-UTF-8 file is a
    :class:`PvmError` naming it (one line on the command line, no traceback)."""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise PvmError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PvmError(f"{path}: not a {what} (byte {exc.start} is not UTF-8 text)") from None


def _read_json(path: str | Path, what: str) -> Any:
    try:
        return json.loads(_read_text(path, what))
    except json.JSONDecodeError as exc:
        raise PvmError(f"{path}: not a {what} (bad JSON: {exc})") from None


def _load_blob(path: str) -> Any:
    """A .polkavm blob, the program of a JAM JSON vector (Latest64 numbering),
    or a spectool .txt source (assembled)."""
    from executor.blob import ProgramBlob

    if path.endswith(".json"):
        from executor.isa import InstructionSet

        try:
            program = _read_json(path, "JAM test vector")["program"]
            code = bytes(program)
        except (ValueError, KeyError, TypeError) as exc:
            raise PvmError(f"{path}: not a JAM test vector ({exc!r})") from exc
        return ProgramBlob.from_code_blob(code, InstructionSet.LATEST64)
    if path.endswith(".txt"):
        from executor.tools.spectool import load_test

        _read_text(path, "spectool source")  # a clear error for a missing or binary file
        return load_test(Path(path)).blob
    try:
        return ProgramBlob.load(path)
    except OSError as exc:
        raise PvmError(f"cannot read {path}: {exc.strerror}") from exc


def blob_info(blob: Any) -> dict[str, Any]:
    """The facts `pvm-exec info` reports about a blob."""
    from executor.raw import NativeProgram

    program = NativeProgram(blob, validate=False)
    return {
        "isa": blob.isa.key,
        "is_64_bit": blob.is_64_bit,
        "ro_data_size": blob.ro_data_size,
        "rw_data_size": blob.rw_data_size,
        "stack_size": blob.stack_size,
        "ro_data_payload": len(blob.ro_data),
        "rw_data_payload": len(blob.rw_data),
        "code_size": len(blob.code),
        "instructions": program.instruction_count,
        "basic_blocks": program.basic_block_count,
        "jump_table_entries": len(blob.jump_table),
        "imports": blob.import_names(),
        "exports": [{"name": e.name, "pc": e.pc} for e in blob.exports],
        "debug_sections": sorted(blob.debug_sections),
    }


def cmd_info(args: argparse.Namespace) -> int:
    info = blob_info(_load_blob(args.blob))
    if args.json:
        print(json.dumps(info))
        return 0
    width = max(len(k) for k in info)
    for k, v in info.items():
        if k == "exports":
            v = ", ".join(f"{e['name']}@{e['pc']}" for e in v)
        elif k == "imports":
            v = ", ".join(str(x) for x in v)
        print(f"{k:<{width}}  {v}")
    return 0


def cmd_disasm(args: argparse.Namespace) -> int:
    if args.native:
        from executor.tools.native_disasm import native_listing

        sys.stdout.write(native_listing(_load_blob(args.blob),
                                        metered=args.gas_metering == "sync", raw=args.raw))
        return 0
    from executor.tools.asm import disassemble

    sys.stdout.write(disassemble(_load_blob(args.blob), raw=args.raw))
    return 0


def cmd_asm(args: argparse.Namespace) -> int:
    from executor.tools.asm import assemble

    path = Path(args.source)
    blob = assemble(_read_text(path, "assembler source"), path=str(path))
    out = Path(args.output) if args.output else path.with_suffix(".polkavm")
    out.write_bytes(blob.to_bytes())
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


def cmd_vectors(args: argparse.Namespace) -> int:
    from executor.tools import vectors
    from executor.tools.vectors import collect, run_path

    vectors.SANDBOX = args.sandbox

    from executor.gas import cost_model_from_name

    try:
        cost_model = cost_model_from_name(args.cost_model)
    except ValueError as exc:
        raise PvmError(str(exc)) from None
    paths = collect(args.paths)
    passed = failed = 0
    results = []
    for p in paths:
        # .txt sources: `post: gas` lines are checked under a full model; JSON
        # vectors always run (and check) naive gas, as they are defined
        try:
            r = run_path(p, backend=args.backend, check_gas=cost_model is not None,
                         cost_model=cost_model)
        except OSError as exc:
            raise PvmError(f"cannot read vector {p}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise PvmError(f"{p}: not a test vector (byte {exc.start} is not UTF-8 text)") \
                from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            # the vector's own structure (run_path checks execution, not the file's shape)
            raise PvmError(f"{p}: not a test vector ({type(exc).__name__}: {exc})") from None
        results.append(r)
        if r.ok:
            passed += 1
        else:
            failed += 1
            if not args.json:
                print(r.line())
    if args.json:
        print(json.dumps({"passed": passed, "failed": failed,
                          "failures": [{"name": r.name, "path": r.path, "problems": r.problems}
                                       for r in results if not r.ok]}))
    else:
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


def _drop(data: bytes) -> None:
    pass


def _to_stderr(data: bytes) -> None:
    sys.stderr.buffer.write(data)


def cmd_doom(args: argparse.Namespace) -> int:
    import time

    from executor.tools.doom import DEFAULT_WAD, Doom, fnv1a64, parse_key_script, save_png

    wad = Path(args.wad) if args.wad else DEFAULT_WAD
    if not wad.exists():
        raise PvmError(f"WAD not found: {wad} (install Debian's freedoom package)")
    keys = parse_key_script(_read_text(args.keys, "key script")) if args.keys else {}
    ref = _read_json(args.reference, "DOOM reference") if args.reference else None
    frame_keys = ("gas", "crc32", "width", "height", "audio_samples")
    if ref is not None and not (isinstance(ref, dict) and isinstance(
            ref.get("ext_initialize_gas"), int) and isinstance(ref.get("frames"), list) and all(
            isinstance(r, dict) and all(k in r for k in frame_keys) for r in ref["frames"])):
        raise PvmError(f"{args.reference}: not a DOOM reference (expected ext_initialize_gas "
                       f"and frames of {', '.join(frame_keys)})")
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    d = Doom(Path(args.blob), wad.read_bytes(), gas_metering=args.gas_metering == "sync",
             backend=args.backend, sandbox=args.sandbox,
             stdout=_drop if args.quiet else _to_stderr)
    total_gas = d.initialize()
    mismatches = 0
    if ref and total_gas != ref["ext_initialize_gas"]:
        mismatches += 1
        print(f"ext_initialize gas {total_gas} != reference {ref['ext_initialize_gas']}")
    written = 0
    t0 = time.perf_counter()
    for k in range(args.frames):
        for code, pressed in keys.get(k, []):
            total_gas += d.key(code, pressed)
        f = d.tick()
        total_gas += f.gas
        if out and (k % args.every == 0 or k == args.frames - 1):
            save_png(f.frame, f.width, f.height, out / f"frame_{k:05d}.png")
            written += 1
        if ref and k < len(ref["frames"]):
            r = ref["frames"][k]
            got = (f.gas, f"{f.crc32:08x}", f.width, f.height, f.audio_samples)
            want = (r["gas"], r["crc32"], r["width"], r["height"], r["audio_samples"])
            if got != want:
                mismatches += 1
                print(f"frame {k}: {got} != reference {want}")
        if args.progress and k and k % 100 == 0:
            print(f"frame {k}/{args.frames}", file=sys.stderr, flush=True)
    dt = time.perf_counter() - t0
    if args.frames:
        print(f"{args.frames} frames in {dt:.3f} s: {args.frames / dt:.1f} frames/s, "
              f"{dt / args.frames * 1000:.3f} ms/frame")
    if out:
        print(f"wrote {written} PNG frames to {out}")
    if ref:
        n = min(args.frames, len(ref["frames"]))
        print(f"reference check: {n} frames, {mismatches} mismatches")
    print(f"gas {total_gas if args.gas_metering == 'sync' else 0}")
    print(f"checksum 0x{fnv1a64(d.frame):016x}")
    return 1 if mismatches else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from executor.tools.doctor import doctor

    report = doctor()
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"backends: {', '.join(report['backends'])}")
    print(f"linux sandbox: {'works' if report['sandbox_linux'] else 'unavailable'}")
    if report["reason"]:
        print(f"reason: {report['reason']}")
    w = report["worker"]
    if w:
        print(f"worker pid {w['pid']}: seccomp mode {w['seccomp_mode']}, no_new_privs "
              f"{w['no_new_privs']}, CapEff {w['cap_eff']}, isolated namespaces "
              f"{', '.join(w['namespaces_isolated'])}")
    return 0


PLUGIN_GROUP = "pvm_exec.commands"
"""The entry-point group of subcommands other packages add to ``pvm-exec``: each entry
point is ``add_parser(subparsers)`` (``chain_sim`` registers ``chain`` and ``node`` in
pyproject.toml), so the library and its tools never import those packages."""


def add_plugin_parsers(sub: Any) -> None:
    """Adds the subcommands registered under :data:`PLUGIN_GROUP`, in name order."""
    from importlib.metadata import entry_points

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        ep.load()(sub)


def build_parser() -> argparse.ArgumentParser:
    from executor.gas import COST_MODEL_NAMES

    ap = argparse.ArgumentParser(prog="pvm-exec", description="PolkaVM executor")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="describe a .polkavm blob")
    p.add_argument("blob")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("disasm", help="disassemble a .polkavm blob")
    p.add_argument("blob")
    p.add_argument("--raw", action="store_true", help="show instruction bytes")
    p.add_argument("--native", action="store_true",
                   help="each instruction with the x86-64 the JIT emits for it")
    p.add_argument("--gas-metering", default="sync", choices=["sync", "none"],
                   help="with --native: the code of this metering mode")
    p.set_defaults(func=cmd_disasm)

    p = sub.add_parser("asm", help="assemble a source in the spectool text syntax")
    p.add_argument("source")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_asm)

    p = sub.add_parser("vectors", help="run conformance vectors (.json, .txt, or folders)")
    p.add_argument("paths", nargs="+")
    p.add_argument("--backend", default="interpreter", choices=["interpreter", "jit"])
    p.add_argument("--cost-model", default="naive", choices=COST_MODEL_NAMES,
                   help="gas model for .txt sources (full = full-l2-hit, as the reference's "
                        "spectool; their post: gas lines are checked unless naive); "
                        "JSON vectors always use naive gas")
    p.add_argument("--sandbox", choices=["linux", "none"], default=None,
                   help="run JIT code inside Linux sandbox workers")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_vectors)

    p = sub.add_parser("doctor", help="which backends and sandboxes work here")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    from executor.tools.cli_run import add_run_parser

    add_run_parser(sub)

    add_plugin_parsers(sub)

    p = sub.add_parser("doom", help="run doom.polkavm")
    p.add_argument("--blob", default=str(_shared() / "blobs" / "doom.polkavm"))
    p.add_argument("--wad")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--backend", default="interpreter", choices=["interpreter", "jit"])
    p.add_argument("--gas-metering", default="sync", choices=["sync", "none"])
    p.add_argument("--sandbox", choices=["linux", "none"], default=None)
    p.add_argument("--out", help="folder for PNG frames")
    p.add_argument("--every", type=int, default=35, help="write every K-th frame (with --out)")
    p.add_argument("--keys", help="key script: lines 'FRAME KEY down|up'")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--reference", help="doom-reference-100.json to compare gas and frames")
    p.add_argument("--quiet", action="store_true", help="drop the guest's stdout")
    p.set_defaults(func=cmd_doom)
    return ap


def _shared() -> Path:
    """The team's shared/ folder next to the checkout (for default data paths)."""
    here = Path(__file__).resolve().parents[2]
    return here.parent / "shared"


_EXTRAS = {"chain": "chain", "node": "node", "doom": "doom"}
"""The pyproject extra each subcommand with optional dependencies needs."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except PvmError as exc:
        print(f"pvm-exec: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as exc:  # a command whose optional dependencies are missing
        print(f"pvm-exec: error: {args.command} needs the Python package {exc.name!r}, which "
              f"is not installed (pip install 'pvm-executor[{_EXTRAS.get(args.command, 'dev')}]')",
              file=sys.stderr)
        return 2
    except OSError as exc:  # an input or output file the command could not use
        where = f" {exc.filename}" if exc.filename else ""
        print(f"pvm-exec: error: cannot use{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

// @typeberry/lib's PVM interpreter (pure TypeScript) on the JAM v0.4 vectors or a timing loop.
//   node typeberry.mjs vectors DIR [SKIP]                 JSON lines: raw final states, then {"seconds": S}
//   node typeberry.mjs loop PROGRAM_HEX GAS [REPEATS]     runs one raw JAM program until it stops
// bench_peers.py checks the raw results (vectors.mjs says what is printed).
// @typeberry/lib 0.11.0 asks for @fluffylabs/anan-as ^1.4.0 and @typeberry/native 0.5.1, which the
// registry reachable here does not have; package.json overrides them with 1.2.0 and 0.5.1-4e90642.
// The modules used here (pvm-interpreter, pvm-interface) import neither: anan-as is only behind
// typeberry's separate pvm-interpreter-ananas module, the native one only behind its crypto and
// erasure-coding modules.
import { Interpreter, MemoryBuilder, Registers, tryAsMemoryIndex, tryAsSbrkIndex } from "@typeberry/lib/pvm-interpreter";
import { tryAsGas } from "@typeberry/lib/pvm-interface";
import { runVectors, timeLoop } from "./vectors.mjs";

const PAGE = 4096;

function memoryOf(v) {
  const b = new MemoryBuilder();
  let top = 16 * PAGE; // the first 16 pages are reserved (no vector maps them)
  for (const p of v["initial-page-map"]) {
    const start = tryAsMemoryIndex(p.address), end = tryAsMemoryIndex(p.address + p.length);
    if (p["is-writable"]) b.setWriteablePages(start, end); else b.setReadablePages(start, end);
    top = Math.max(top, p.address + p.length);
  }
  for (const c of v["initial-memory"]) {
    // setData takes at most one page at a time
    for (let off = 0; off < c.contents.length;) {
      const addr = c.address + off;
      const n = Math.min(c.contents.length - off, PAGE - (addr % PAGE));
      b.setData(tryAsMemoryIndex(addr), Uint8Array.from(c.contents.slice(off, off + n)));
      off += n;
    }
  }
  // an empty heap just above the mapped pages (the vectors do not call sbrk)
  return b.finalize(tryAsMemoryIndex(top), tryAsSbrkIndex(top));
}

function finalState(pvm) {
  const status = pvm.getStatus();
  return { status, pc: pvm.getPC(), gas: pvm.gas.get(), regs: pvm.registers.getAllU64(),
    fault: status === 2 ? pvm.getExitParam() : null };
}

const [mode, arg, third, fourth] = process.argv.slice(2);
if (mode === "vectors") {
  const pvm = Interpreter.new();
  runVectors(arg, (v) => {
    const regs = Registers.empty();
    v["initial-regs"].forEach((r, i) => regs.setU64(i, BigInt(r)));
    pvm.resetGeneric(Uint8Array.from(v.program), v["initial-pc"], tryAsGas(BigInt(v["initial-gas"])), regs, memoryOf(v));
    pvm.runProgram();
    const read = (address, length) => {
      const out = new Uint8Array(length);
      for (let a = address; a < address + length; a += PAGE) {
        const page = pvm.getMemoryPage(Math.floor(a / PAGE));
        if (page === null) return null;
        out.set(page.subarray(0, Math.min(PAGE, address + length - a)), a - address);
      }
      return out;
    };
    return { ...finalState(pvm), read };
  }, Number(third ?? 0));
} else if (mode === "loop") {
  const program = Uint8Array.from(Buffer.from(arg, "hex"));
  timeLoop(() => {
    const pvm = Interpreter.new();
    pvm.resetGeneric(program, 0, tryAsGas(BigInt(third))); // decodes the program
    return pvm;
  }, (pvm) => {
    pvm.runProgram();
    return finalState(pvm);
  }, Number(fourth ?? 1));
} else {
  console.error("usage: node typeberry.mjs vectors DIR [SKIP] | loop PROGRAM_HEX GAS [REPEATS]");
  process.exit(2);
}

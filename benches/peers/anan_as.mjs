// @fluffylabs/anan-as (its release-mini WebAssembly build) on the JAM v0.4 vectors or a timing loop.
//   node anan_as.mjs vectors DIR [SKIP]                 JSON lines: raw final states, then {"seconds": S}
//   node anan_as.mjs loop PROGRAM_HEX GAS [REPEATS]     runs one raw JAM program until it stops
// bench_peers.py checks the raw results (vectors.mjs says what is printed).
import * as pvm from "@fluffylabs/anan-as/release-mini";
import { runVectors, timeLoop } from "./vectors.mjs";

console.warn = () => {}; // the library's "Run out of pages" notices

const GENERIC = 0, NO_METADATA = 1;

function prepare(v) {
  const pages = v["initial-page-map"].map((p) => ({ address: p.address, length: p.length, access: p["is-writable"] ? 2 : 1 }));
  const chunks = v["initial-memory"].map((c) => ({ address: c.address, data: c.contents }));
  const regs = v["initial-regs"].map((r) => BigInt(r));
  return pvm.prepareProgram(GENERIC, NO_METADATA, v.program, regs, pages, chunks, [], 0);
}

const [mode, arg, third, fourth] = process.argv.slice(2);
if (mode === "vectors") {
  runVectors(arg, (v) => {
    // pvmStart/pvmResume keep the instance alive so that its memory can be read back
    const id = pvm.pvmStart(prepare(v), false);
    try {
      const out = pvm.pvmResume(id, BigInt(v["initial-gas"]), v["initial-pc"], false);
      if (out === null) throw new Error("pvmResume returned null");
      const mem = new Map(v["initial-page-map"].map((p) => [p.address, pvm.pvmReadMemory(id, p.address, p.length)]));
      return { status: out.status, pc: out.pc, gas: out.gas, regs: out.registers,
        fault: out.status === 2 ? out.exitCode : null, read: (a) => mem.get(a) };
    } finally {
      pvm.pvmDestroy(id);
    }
  }, Number(third ?? 0));
} else if (mode === "loop") {
  const v = { program: Array.from(Buffer.from(arg, "hex")), "initial-regs": Array(13).fill(0),
    "initial-page-map": [], "initial-memory": [] };
  timeLoop(() => prepare(v), (p) => {
    const out = pvm.runProgram(p, BigInt(third), 0, false, false, false);
    pvm.__collect(); // release-mini: the caller collects garbage between runs
    return { status: out.status, pc: out.pc, gas: out.gas, regs: out.registers };
  }, Number(fourth ?? 1));
} else {
  console.error("usage: node anan_as.mjs vectors DIR [SKIP] | loop PROGRAM_HEX GAS [REPEATS]");
  process.exit(2);
}

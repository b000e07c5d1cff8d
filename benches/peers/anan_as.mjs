// Runs JAM v0.4 JSON vectors (or a timing loop) on @fluffylabs/anan-as (release-mini)
// and prints one JSON line: {"passed": N, "failed": M, "failures": [...], "seconds": S}.
//   node anan_as.mjs vectors DIR
//   node anan_as.mjs loop PROGRAM_HEX GAS        (runs one program until it stops)
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import * as pvm from "@fluffylabs/anan-as/release-mini";

console.warn = () => {}; // the library's "Run out of pages" notices

const STATUS = { 0: "halt", 1: "panic", 2: "page-fault", 3: "host", 4: "out-of-gas" };
const GENERIC = 0, NO_METADATA = 1;

function run(v, gas) {
  const pages = v["initial-page-map"].map((p) => ({ address: p.address, length: p.length, access: p["is-writable"] ? 2 : 1 }));
  const chunks = v["initial-memory"].map((c) => ({ address: c.address, data: c.contents }));
  const regs = v["initial-regs"].map((r) => BigInt(r));
  const prog = pvm.prepareProgram(GENERIC, NO_METADATA, v.program, regs, pages, chunks, [], 0);
  return pvm.runProgram(prog, BigInt(gas), v["initial-pc"], false, false, true);
}

const [mode, arg, gasArg] = process.argv.slice(2);
if (mode === "vectors") {
  let passed = 0; const failures = [];
  const t0 = process.hrtime.bigint();
  for (const f of readdirSync(arg).filter((x) => x.endsWith(".json")).sort()) {
    // u64 registers do not fit a JS number: read long integers as strings
    const text = readFileSync(join(arg, f), "utf8").replace(/([:\[,]\s*)(\d{16,})/g, '$1"$2"');
    const v = JSON.parse(text);
    let ok = false;
    try {
      const out = run(v, v["initial-gas"]);
      ok = STATUS[out.status] === v["expected-status"] && out.pc === v["expected-pc"] &&
        BigInt(out.gas) === BigInt(v["expected-gas"]) &&
        out.registers.every((r, i) => BigInt(r) === BigInt(v["expected-regs"][i]));
    } catch (e) { ok = false; }
    if (ok) passed++; else failures.push(v.name);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ passed, failed: failures.length, failures, seconds }));
} else if (mode === "loop") {
  const program = Array.from(Buffer.from(arg, "hex"));
  const v = { program, "initial-regs": Array(13).fill(0), "initial-pc": 0, "initial-page-map": [], "initial-memory": [] };
  const t0 = process.hrtime.bigint();
  const out = run(v, gasArg);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ status: STATUS[out.status], gas: String(out.gas), pc: out.pc, seconds, registers: out.registers.map(String) }));
}

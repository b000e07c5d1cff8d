// Shared by the Node harnesses (anan_as.mjs, typeberry.mjs): reads the JAM v0.4 JSON
// vectors and prints what a peer produced, raw, for benches/bench_peers.py to check with
// the same rules as our own runner (executor/vectors.py): status, pc, gas, registers,
// page-fault address and the bytes of every mapped region.  No expectation is read here.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

// The status numbers both libraries use (the Gray Paper's order).
export const STATUS = { 0: "halt", 1: "panic", 2: "page-fault", 3: "ecalli", 4: "out-of-gas" };

export function loadVectors(dir) {
  return readdirSync(dir).filter((x) => x.endsWith(".json") && !x.startsWith("schema")).sort()
    .map((f) => {
      // u64 registers do not fit a JS number: read long integers as strings
      const text = readFileSync(join(dir, f), "utf8").replace(/([:\[,]\s*)(\d{16,})/g, '$1"$2"');
      return JSON.parse(text);
    });
}

const hex = (bytes) => (bytes == null ? null : Buffer.from(bytes).toString("hex"));

// Runs the vectors (after the first `skip`) through `runOne(v)`, which returns
// { status, pc, gas, regs, fault, read(address, length) -> Uint8Array | null },
// and prints one JSON line per vector, then {"seconds": S}.
export function runVectors(dir, runOne, skip = 0) {
  const vectors = loadVectors(dir).slice(skip);
  const t0 = process.hrtime.bigint();
  for (const v of vectors) {
    let line;
    try {
      const out = runOne(v);
      line = {
        name: v.name,
        status: STATUS[out.status] ?? `unknown(${out.status})`,
        pc: out.pc,
        gas: String(out.gas),
        regs: Array.from(out.regs, (r) => BigInt.asUintN(64, BigInt(r)).toString()),
        fault: out.fault,
        memory: v["initial-page-map"].map((p) => ({ address: p.address, hex: hex(out.read(p.address, p.length)) })),
      };
    } catch (e) {
      line = { name: v.name, error: String(e && e.stack ? e.stack.split("\n")[0] : e) };
    }
    console.log(JSON.stringify(line));
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ seconds }));
}

// Times `repeats` runs of a raw JAM program (no memory, registers zero; `prepare()` loads
// it outside the timed part, `run(prepared)` runs it until it stops) and prints one JSON
// line with the best time and the final state of the last run.
export function timeLoop(prepare, run, repeats = 1) {
  const runs = [];
  let out;
  while (runs.length < repeats && runs.reduce((a, b) => a + b, 0) < 30) {
    const p = prepare();
    const t0 = process.hrtime.bigint();
    out = run(p);
    runs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(JSON.stringify({ status: STATUS[out.status] ?? `unknown(${out.status})`, gas: String(out.gas), pc: out.pc,
    seconds: Math.min(...runs), runs, registers: Array.from(out.regs, (r) => BigInt.asUintN(64, BigInt(r)).toString()) }));
}

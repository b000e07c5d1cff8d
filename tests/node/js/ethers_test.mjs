// ethers v6 against pvm-exec node: node ethers_test.mjs HTTP_URL WS_URL BLOB_PATH ABI_PATH
// Deploys Token.sol's blob (ContractFactory appends the constructor arguments),
// transfers, reads balanceOf, parses the Transfer log, checks revert reasons (Error(string)
// and a custom error) and reads over WebSocket. Prints one JSON line; exit 1 on failure.
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";
import { ContractFactory, JsonRpcProvider, WebSocketProvider, Wallet, hexlify } from "ethers";

const [httpUrl, wsUrl, blobPath, abiPath] = process.argv.slice(2);
const DEV_KEYS = [
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
];

async function main() {
  const provider = new JsonRpcProvider(httpUrl, undefined, { pollingInterval: 50 });
  const net = await provider.getNetwork();
  assert.equal(net.chainId, 420420420n);
  const [a, b] = DEV_KEYS.map((k) => new Wallet(k, provider));
  assert.equal(a.address, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

  const abi = JSON.parse(readFileSync(abiPath, "utf8"));
  const blob = hexlify(readFileSync(blobPath));
  const token = await new ContractFactory(abi, blob, a).deploy("Tok", "TK", 1000n);
  await token.waitForDeployment();
  const address = await token.getAddress();
  assert.notEqual(await provider.getCode(address), "0x");
  assert.equal(await token.balanceOf(a.address), 1000n);

  const tx = await token.transfer(b.address, 25n);
  const receipt = await tx.wait();
  assert.equal(receipt.status, 1);
  const parsed = receipt.logs.map((l) => token.interface.parseLog(l));
  assert.equal(parsed[0].name, "Transfer");
  assert.equal(parsed[0].args.to, b.address);
  assert.equal(parsed[0].args.value, 25n);
  assert.equal(await token.balanceOf(b.address), 25n);
  const logs = await token.queryFilter(token.filters.Transfer(a.address, b.address), 0);
  assert.equal(logs.length, 1);

  // Error(string) revert, as ethers decodes it
  await assert.rejects(token.connect(b).transferFrom.staticCall(a.address, b.address, 1n),
    (e) => e.code === "CALL_EXCEPTION" && e.reason === "allowance too low");
  // a custom error
  await assert.rejects(token.connect(b).transfer.staticCall(a.address, 10n ** 9n),
    (e) => e.code === "CALL_EXCEPTION" && e.revert && e.revert.name === "InsufficientBalance"
      && e.revert.args[0] === 25n);

  // the same node over WebSocket
  const ws = new WebSocketProvider(wsUrl);
  try {
    // the head asked directly: provider.getBlockNumber() may answer from ethers' cache
    const head = Number(await provider.send("eth_blockNumber", []));
    assert.ok(head >= receipt.blockNumber);
    assert.equal(await ws.getBlockNumber(), head);
    assert.equal(await token.connect(ws).balanceOf(b.address), 25n);
  } finally {
    await ws.destroy();
  }
  provider.destroy();
  console.log(JSON.stringify({ ok: true, token: address, block: receipt.blockNumber }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

// SPDX-License-Identifier: MIT
// Calls the Ethereum precompiles 0x01..0x09 the way Solidity code does: through the
// builtins (ecrecover, sha256, ripemd160) and through raw staticcalls, plus calls and
// delegatecalls to addresses without code.
pragma solidity ^0.8.0;

contract Precompiles {
    event Recovered(address signer);

    function recover(bytes32 digest, uint8 v, bytes32 r, bytes32 s)
        external pure returns (address)
    {
        return ecrecover(digest, v, r, s);
    }

    // The EIP-2612 / ERC-1271 shape: reject signatures that do not recover to `who`.
    function checkSigner(bytes32 digest, uint8 v, bytes32 r, bytes32 s, address who)
        external returns (bool)
    {
        address signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "invalid signature");
        require(signer == who, "wrong signer");
        emit Recovered(signer);
        return true;
    }

    function sha(bytes calldata data) external pure returns (bytes32) {
        return sha256(data);
    }

    function ripemd(bytes calldata data) external pure returns (bytes20) {
        return ripemd160(data);
    }

    // Raw STATICCALL to any address: what precompile libraries (modexp, bn128,
    // blake2f, identity) do in assembly.
    function staticRaw(address to, bytes calldata data)
        external view returns (bool ok, bytes memory out)
    {
        (ok, out) = to.staticcall(data);
    }

    function callRaw(address to, bytes calldata data)
        external payable returns (bool ok, bytes memory out)
    {
        (ok, out) = to.call{value: msg.value}(data);
    }

    function delegateRaw(address to, bytes calldata data)
        external returns (bool ok, bytes memory out)
    {
        (ok, out) = to.delegatecall(data);
    }

    // A Merkle-proof-style fold over sha256: h = sha256(h ++ leaf) for every leaf.
    function shaChain(bytes32[] calldata leaves) external pure returns (bytes32 h) {
        for (uint256 i = 0; i < leaves.length; i++) {
            h = sha256(abi.encodePacked(h, leaves[i]));
        }
    }
}

// SPDX-License-Identifier: MIT
// A few console.log overloads, called the way Hardhat's and forge-std's console.sol
// call them: a STATICCALL to the console address with ABI-encoded arguments.
pragma solidity ^0.8.0;

library console {
    address constant CONSOLE_ADDRESS = 0x000000000000000000636F6e736F6c652e6c6f67;

    function _send(bytes memory payload) private view {
        (bool ok, ) = CONSOLE_ADDRESS.staticcall(payload);
        ok;
    }

    function log(string memory p0) internal view {
        _send(abi.encodeWithSignature("log(string)", p0));
    }

    function log(string memory p0, uint256 p1) internal view {
        _send(abi.encodeWithSignature("log(string,uint256)", p0, p1));
    }

    function log(string memory p0, address p1, uint256 p2) internal view {
        _send(abi.encodeWithSignature("log(string,address,uint256)", p0, p1, p2));
    }

    function log(bool p0) internal view {
        _send(abi.encodeWithSignature("log(bool)", p0));
    }

    function log(int256 p0) internal view {
        _send(abi.encodeWithSignature("log(int256)", p0));
    }

    function logBytes32(bytes32 p0) internal view {
        _send(abi.encodeWithSignature("logBytes32(bytes32)", p0));
    }

    // Hardhat's console.sol used the non-canonical "uint" in its selectors
    function logLegacyUint(uint256 p0) internal view {
        _send(abi.encodeWithSignature("log(uint)", p0));
    }
}

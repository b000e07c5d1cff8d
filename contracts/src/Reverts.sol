// SPDX-License-Identifier: MIT
// Every way a call can fail: require reasons, custom errors, panics, and a
// nested call whose revert must roll back the caller's state as well.
pragma solidity ^0.8.0;

contract Reverts {
    error NotAllowed(address who, uint256 code);

    uint256 public stored;

    function setThenRequire(uint256 v, bool ok) external {
        stored = v;
        require(ok, "require failed");
    }

    function customError(uint256 code) external view {
        revert NotAllowed(msg.sender, code);
    }

    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;            // Panic(0x12) when b == 0
    }

    function add(uint256 a, uint256 b) external pure returns (uint256) {
        return a + b;            // Panic(0x11) on overflow
    }

    function assertion(bool ok) external pure {
        assert(ok);              // Panic(0x01)
    }

    function index(uint256 i) external pure returns (uint256) {
        uint256[3] memory xs = [uint256(1), 2, 3];
        return xs[i];            // Panic(0x32) out of bounds
    }

    function nested(uint256 v) external {
        stored = v;
        this.setThenRequire(v + 1, false);   // reverts, and so does this call
    }

    function nestedCaught(uint256 v) external returns (bool) {
        stored = v;
        try this.setThenRequire(v + 1, false) {
            return true;
        } catch {
            return false;        // the inner write is undone, ours stays
        }
    }
}

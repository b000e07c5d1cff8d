// SPDX-License-Identifier: MIT
// console.log, the context cheatcodes change (sender, time, block, balances, storage),
// calls to a mockable oracle, and the pallet-revive limits (call depth, event size).
pragma solidity ^0.8.0;

import {console} from "./lib/Console.sol";

interface IOracle {
    function price() external view returns (uint256);
}

contract Cheats {
    uint256 public stored = 7;                  // slot 0
    mapping(address => uint256) public credit;  // slot 1

    event Big(bytes data);

    function hello(uint256 n) external returns (uint256) {
        console.log("hello", n);
        console.log("sender %s gave %d", msg.sender, n);
        console.log(true);
        console.log(int256(-5));
        console.logBytes32(bytes32(uint256(0xabcd)));
        console.logLegacyUint(n);
        credit[msg.sender] += n;
        return n + 1;
    }

    function fails() external view {
        console.log("about to fail");
        revert("nope");
    }

    function context() external view
        returns (address sender, address origin, uint256 time, uint256 number, uint256 balance)
    {
        return (msg.sender, tx.origin, block.timestamp, block.number, msg.sender.balance);
    }

    function askOracle(address oracle) external view returns (uint256) {
        return IOracle(oracle).price();
    }

    function askOracleTry(address oracle) external view returns (bool ok, uint256 price) {
        try IOracle(oracle).price() returns (uint256 p) {
            return (true, p);
        } catch {
            return (false, 0);
        }
    }

    function deep(uint256 n) external returns (uint256) {
        if (n == 0) return 0;
        return this.deep(n - 1) + 1;
    }

    function emitBig(uint256 len) external {
        emit Big(new bytes(len));
    }
}

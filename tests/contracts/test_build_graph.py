"""contracts.build: the cache key covers the whole import graph as resolved (remappings,
include paths), compile errors point at file:line:col, independent sources build in
parallel.  Sources are written to a temporary folder and built into a temporary cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import contracts.build as build_mod
from contracts.build import BuildError, Project, build_many, compiled, imports_of, resolve_graph
from contracts.harness import TestChain

needs_npm = pytest.mark.skipif(shutil.which("npm") is None or shutil.which("node") is None,
                               reason="npm/node are not installed")


def test_imports_are_parsed_like_solidity() -> None:
    text = '''
        import "./A.sol";
        import {B, C as D} from "../lib/B.sol";
        import * as E from '@scope/pkg/E.sol';
        import "F.sol" as F;
        // import "./commented.sol";
        /* import "./also-commented.sol"; */
        string constant s = "import \\"./not-an-import.sol\\";";
    '''
    assert [i for i, _ in imports_of(text)] == ["./A.sol", "../lib/B.sol", "@scope/pkg/E.sol",
                                                "F.sol"]


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


LIB = '''// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
library Twice { function twice(uint256 x) internal pure returns (uint256) { return 2 * x; } }
'''
MAIN = '''// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
import {Twice} from "@dep/Twice.sol";
import "./local/Base.sol";
contract Main is Base { function run(uint256 x) external pure returns (uint256) {
    return Twice.twice(x) + one(); } }
'''
BASE = '''// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract Base { function one() internal pure returns (uint256) { return 1; } }
'''


@pytest.fixture
def project(tmp_path: Path) -> Path:
    write(tmp_path, {"remappings.txt": "@dep/=vendor/dep/src/\n", "src/Main.sol": MAIN,
                     "src/local/Base.sol": BASE, "vendor/dep/src/Twice.sol": LIB,
                     "src/Unrelated.sol": BASE})
    return tmp_path


def test_graph_follows_remappings_and_relative_imports(project: Path) -> None:
    graph = resolve_graph(project / "src" / "Main.sol")
    assert sorted(graph.contents) == ["@dep/Twice.sol", "Main.sol", "local/Base.sol"]
    assert graph.files["@dep/Twice.sol"] == (project / "vendor/dep/src/Twice.sol").resolve()


def test_cache_key_covers_imported_files(project: Path) -> None:
    main = project / "src" / "Main.sol"
    key = resolve_graph(main).key()
    (project / "src" / "Unrelated.sol").write_text(BASE + "\n// changed\n")
    assert resolve_graph(main).key() == key
    (project / "vendor/dep/src/Twice.sol").write_text(LIB.replace("2 * x", "3 * x"))
    changed = resolve_graph(main).key()
    assert changed != key
    (project / "src/local/Base.sol").write_text(BASE.replace("return 1", "return 2"))
    assert resolve_graph(main).key() not in (key, changed)


def test_pyproject_table_configures_remappings(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": '[tool.pvm.contracts]\nremappings = ["@dep/=third/"]\n'
                     'include-paths = ["shared"]\n',
                     "src/Main.sol": MAIN.replace('"./local/Base.sol"', '"common/Base.sol"'),
                     "third/Twice.sol": LIB, "shared/common/Base.sol": BASE})
    project = Project.for_source(tmp_path / "src" / "Main.sol")
    assert project.root == tmp_path
    graph = resolve_graph(tmp_path / "src" / "Main.sol")
    assert graph.files["common/Base.sol"] == (tmp_path / "shared/common/Base.sol").resolve()
    assert graph.files["@dep/Twice.sol"] == (tmp_path / "third/Twice.sol").resolve()


def test_missing_import_names_the_line(project: Path) -> None:
    (project / "remappings.txt").write_text("")
    with pytest.raises(BuildError) as info:
        resolve_graph(project / "src" / "Main.sol")
    message = str(info.value)
    assert f"{project / 'src' / 'Main.sol'}:3:22: error: cannot find import \"@dep/Twice.sol\"" \
        in message
    assert 'import {Twice} from "@dep/Twice.sol";' in message


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "cache"
    monkeypatch.setattr(build_mod, "BUILD", out)
    return out


@needs_npm
def test_compile_error_shows_file_line_col(project: Path, cache: Path) -> None:
    bad = project / "src" / "Bad.sol"
    bad.write_text("// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
                   "contract Bad {\n    function f() external { uint256 x = true; }\n}\n")
    with pytest.raises(BuildError) as info:
        build_mod.build(bad)
    message = str(info.value)
    assert f"{bad}:4:29: error: Type bool is not implicitly convertible" in message
    assert "    function f() external { uint256 x = true; }" in message
    assert not any(cache.glob("Bad-*")) if cache.exists() else True


@needs_npm
def test_remapped_sources_compile_and_run(project: Path, cache: Path) -> None:
    # one compile (resolc takes tens of seconds), through build_many's pool
    outs = build_many([project / "src" / "Main.sol"], jobs=2)
    assert [Path(k).name for k in outs] == ["Main.sol"]
    main = compiled(project / "src" / "Main.sol")["Main"]
    chain = TestChain()
    c = chain.deploy(main.blob, main.abi)
    assert c.call("run", 20) == 41
    # cached: the same folder, not rebuilt
    stamp = (outs[str(project / "src" / "Main.sol")] / ".done").stat().st_mtime_ns
    assert build_mod.build(project / "src" / "Main.sol") == outs[str(project / "src" / "Main.sol")]
    assert (build_mod.build(project / "src" / "Main.sol") / ".done").stat().st_mtime_ns == stamp

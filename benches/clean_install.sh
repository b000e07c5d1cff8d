#!/bin/sh
# The core install on its own (issue 16): a fresh virtualenv, `pip install .` with no
# extras, then `pvm-exec run` on a blob and the README's hello-world embedding example,
# which must load none of the optional packages.  Prints the packages the install
# pulled and the seconds each step took; leaves nothing behind (a temporary folder).
#
#     sh benches/clean_install.sh [BLOB]      # default: ../shared/blobs/example-hello-world.polkavm
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BLOB=${1:-$ROOT/../shared/blobs/example-hello-world.polkavm}
BLOB=$(cd "$(dirname "$BLOB")" && pwd)/$(basename "$BLOB")
PYTHON=${PYTHON:-python3}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
now() { date +%s.%N; }

# the checkout's own files (tracked, or new and not ignored): no build products, no .venv
mkdir "$TMP/src"
(cd "$ROOT" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) | tar -xf - -C "$TMP/src"

t0=$(now)
"$PYTHON" -m venv "$TMP/venv"
"$TMP/venv/bin/pip" install -q "$TMP/src"
t1=$(now)
echo "pip install . (no extras), C core compiled: $(echo "$t1 - $t0" | bc) s"
echo "installed:"
"$TMP/venv/bin/pip" list --format=freeze | sed 's/^/  /'

cd "$TMP"   # not the checkout: the installed package is what runs
"$TMP/venv/bin/pvm-exec" run "$BLOB" --host get_third_number=100 --export add_numbers 1 10
"$TMP/venv/bin/python" - "$BLOB" <<'PY'
import sys
import time

t = time.perf_counter()
from executor import Config, Engine, Linker, Module

engine = Engine(Config())
module = Module(engine, sys.argv[1])
linker = Linker()

@linker.define("get_third_number")
def get_third_number(caller):
    return 100

instance = linker.instantiate(module)
assert instance.call("add_numbers", 1, 10) == 111
optional = ("eth_abi", "PIL", "substrateinterface", "chain_sim", "contracts", "coincurve",
            "py_ecc", "greenlet", "rlp", "hypercorn")
loaded = sorted({m.split(".")[0] for m in sys.modules} & set(optional))
print(f"hello-world embedding example: add_numbers(1, 10) = 111 in "
      f"{time.perf_counter() - t:.2f} s (import included); optional packages loaded: "
      f"{loaded or 'none'}")
sys.exit(1 if loaded else 0)
PY

# pvm-executor: `make demo` and `make test` set everything up themselves
# (virtualenv, Python packages, Debian packages, the C core) and are idempotent.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
NATIVE_SRC := $(wildcard native/*.c native/*.h native/*.def native/jit/*.[ch] native/sandbox/*.[ch]) executor/_build_native.py
WAD := /usr/share/games/doom/freedoom1.wad
# The tests run again against the ASan/UBSan build: those marked `asan` (the native
# core's tests, slow ones included).
ASAN_MARKS ?= asan
PYDEPS := setuptools>=77 wheel cffi>=1.16 trio>=0.22 scalecodec>=1.2 substrate-interface>=1.7 pycryptodome>=3.20 eth-abi>=5 pytest>=8 pytest-trio>=0.8 greenlet>=3 hypothesis>=6.100 mypy>=1.10 ruff>=0.5 pillow>=10 coincurve>=20 py-ecc>=7
# the dev node (pvm-exec node, the [node] extra) and its client tests
PYDEPS += h11>=0.14,<1 wsproto>=1.2,<2 eth-account==0.13.7 eth-utils==5.3.1 rlp>=4 web3==7.16.0 websocket-client>=1.6

.PHONY: all setup build build-testing build-asan contracts contracts-demo node-js demo test test-fast test-asan fuzz lint typecheck bench peers clean apt

all: build

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	touch $@

$(VENV)/.stamp-deps: $(VENV)/.stamp-venv Makefile
	$(PIP) install -q $(foreach d,$(PYDEPS),"$(d)")
	touch $@

# The C core is compiled by cffi during the (editable) install.
$(VENV)/.stamp-build: $(VENV)/.stamp-deps $(NATIVE_SRC) pyproject.toml setup.py
	$(PIP) install -q --no-build-isolation -e ".[dev,node,node-test]"
	touch $@

setup: $(VENV)/.stamp-deps
build: $(VENV)/.stamp-build

# Debian packages: freedoom (the WAD doom.polkavm plays).
apt:
	@if [ ! -f $(WAD) ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq freedoom; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq freedoom; fi; \
	fi

# Solidity sources -> .polkavm with npm @parity/resolc 0.3.0 + solc 0.8.30 (cached by source hash).
contracts/node_modules/.bin/resolc: contracts/package.json
	cd contracts && (npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent)
	touch $@

contracts: build contracts/node_modules/.bin/resolc
	$(PY) -m contracts.build

# Only what the demo's chain runs (Token.sol, Factory.sol), compiled in parallel.
contracts-demo: build contracts/node_modules/.bin/resolc
	$(PY) -m contracts.build Token Factory

# The main job last: a fresh chain (demo-chain.db), the ERC-20 and the factory deployed,
# a seeded random workload block by block, token balances checked against a Python
# model, then every block re-executed on the interpreter; ends with 'state_root 0x...'.
DEMO_DB ?= demo-chain.db
DEMO_BLOCKS ?= 30
DEMO_SEED ?= 42
demo: build apt contracts-demo
	$(VENV)/bin/pvm-exec info ../shared/blobs/example-hello-world.polkavm
	$(VENV)/bin/pvm-exec vectors ../shared/vectors/jam-v0.4
	$(VENV)/bin/pvm-exec doom --frames 100 --quiet --reference ../shared/blobs/doom-reference-100.json
	$(VENV)/bin/pvm-exec chain init --db $(DEMO_DB) --force
	$(VENV)/bin/pvm-exec chain run --db $(DEMO_DB) --blocks $(DEMO_BLOCKS) --seed $(DEMO_SEED)
	$(VENV)/bin/pvm-exec chain verify --db $(DEMO_DB) --backend interpreter

# The whole suite, then the native-core tests again against the sanitizer build.
test: build apt build-testing contracts node-js
	PVM_TESTING_BUILD=$(CURDIR)/build-testing $(VENV)/bin/pytest -q -p no:cacheprovider
	$(MAKE) --no-print-directory test-asan

# ethers v6 for tests/node/test_ethers.py (skipped, saying why, without node/npm).
node-js:
	@if command -v npm >/dev/null 2>&1; then \
	  [ tests/node/js/node_modules/.stamp -nt tests/node/js/package.json ] || \
	  (cd tests/node/js && (npm ci --no-audit --no-fund --silent || npm install --no-audit --no-fund --silent) && touch node_modules/.stamp); \
	else echo "npm not found: tests/node/test_ethers.py will be skipped"; fi

# The test-only build of the native core (tests/sandbox: raw code in a worker).
build-testing: $(VENV)/.stamp-build
	rm -rf build-testing && mkdir -p build-testing
	cd build-testing && PVM_NATIVE_MODULE=_pvm_native_testing PVM_SANDBOX_TESTING=1 \
	  ../$(PY) -c "import sys; sys.path.insert(0, '..'); from executor._build_native import ffibuilder; ffibuilder.compile(verbose=False)"

test-fast: build
	$(VENV)/bin/pytest -q -x -p no:cacheprovider -m "not slow"

# The C core built with AddressSanitizer and UBSan (in build-asan/).
build-asan: $(VENV)/.stamp-build
	rm -rf build-asan && mkdir -p build-asan
	cd build-asan && PVM_NATIVE_MODULE=_pvm_native_asan \
	PVM_EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -O1" \
	PVM_EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	  ../$(PY) -c "import sys; sys.path.insert(0, '..'); from executor._build_native import ffibuilder; ffibuilder.compile(verbose=False)"

# The same tests against a build with AddressSanitizer and UBSan.
test-asan: build-asan apt
	LD_PRELOAD="$$(gcc -print-file-name=libasan.so) $$(gcc -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1:handle_segv=0:handle_sigbus=0 \
	PYCRYPTODOME_DISABLE_DEEPBIND=1 \
	PVM_NATIVE_MODULE=_pvm_native_asan PYTHONPATH=build-asan \
	  $(VENV)/bin/pytest -q -p no:cacheprovider -m "$(ASAN_MARKS)"

# Fuzz campaigns (not CI): the blob-mutation fuzzer and the chain_sim extrinsic/block
# fuzzer, each for FUZZ_SECONDS on the normal build and again on the ASan/UBSan build
# (4 x FUZZ_SECONDS in all, one core).  Each prints inputs tried and the crashes, hangs
# and foreign exceptions found, and fails if there is any; findings go to FUZZ_OUT.
FUZZ_SECONDS ?= 300
FUZZ_OUT ?= /tmp/pvm-fuzz
fuzz: build contracts build-asan
	$(PY) tools/fuzz_blob.py --seconds $(FUZZ_SECONDS) --jobs 1 --chunk 2000 --out $(FUZZ_OUT)/blob
	$(PY) tools/fuzz_blob.py --seconds $(FUZZ_SECONDS) --jobs 1 --chunk 500 --out $(FUZZ_OUT)/blob-asan --asan
	$(PY) tools/fuzz_extrinsic.py --seconds $(FUZZ_SECONDS) --out $(FUZZ_OUT)/extrinsic
	$(PY) tools/fuzz_extrinsic.py --seconds $(FUZZ_SECONDS) --out $(FUZZ_OUT)/extrinsic-asan --asan

# Benchmarks: rewrite benches/RESULTS.md (long: DOOM runs 1000 frames per backend).
BENCH_FRAMES ?= 1000
bench: build apt contracts
	$(PY) benches/bench_chain.py --write
	$(PY) benches/bench_vm.py --frames $(BENCH_FRAMES) --repeats 3 --write
	$(PY) benches/bench_sandbox.py --write
	$(PY) benches/bench_api.py --write
	$(PY) benches/bench_gas.py --write
	@if [ -f benches/bench_aio.py ]; then $(PY) benches/bench_aio.py --write; fi
	$(MAKE) --no-print-directory peers || echo "make peers failed: bench_peers.py reports what is missing"
	$(PY) benches/bench_peers.py --write

# Other PVM implementations for benches/bench_peers.py: npm anan-as and typeberry,
# tsrkit-pvm in benches/peers/.venv312 (needs Python 3.12).
peers:
	sh benches/peers/setup.sh

lint: $(VENV)/.stamp-deps
	$(VENV)/bin/ruff check executor chain_sim contracts tests tools benches
typecheck: build
	$(VENV)/bin/mypy executor contracts chain_sim

clean:
	rm -rf build build-asan *.egg-info demo-chain.db* executor/_native*.so executor/_native.c $(VENV)

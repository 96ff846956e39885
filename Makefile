# Zoned qcow2 for QEMU: fetch the pinned QEMU, apply the series, build, test.
#   make              everything needed, then a short demo
#   make check        every suite; ends with "N passed, N failed, N skipped"
#   make check-bisect build the tree at every patch of the series
SHELL := /bin/bash
TOP := $(CURDIR)
OBJ := $(TOP)/build/obj

.PHONY: all deps source tree build demo check check-harness check-checkpatch \
	check-unit check-spec check-iotests check-reliability check-guest check-asan \
	check-bisect \
	bench soak iotests-baseline clean distclean

all: build demo

deps:
	@scripts/deps

source: deps
	@scripts/get-qemu

# build/qemu is the developer's working tree: created once from patches/,
# never overwritten here (scripts/pq import does that on request).
tree: source
	@if [ ! -d build/qemu/.git ]; then scripts/pq import; fi

build: tree
	@scripts/build

demo: build
	@scripts/demo

# Each suite records its results under build/results; tests/summary prints
# the closing line and fails when anything failed.
check: tree
	@rm -rf build/results && mkdir -p build/results
	@if scripts/build > build/results/build.log 2>&1; then \
		echo "PASS build/qemu" > build/results/build.txt; \
		echo "== harness"; tests/harness.sh; \
		echo "== checkpatch"; tests/checkpatch.sh; \
		echo "== unit"; tests/unit.sh; \
		echo "== spec"; tests/spec.sh; \
		echo "== iotests"; tests/iotests.sh; \
		echo "== asan"; tests/asan.sh; \
		echo "== reliability"; tests/reliability.sh; \
		echo "== guest"; tests/guest.sh; \
	else \
		tail -n 40 build/results/build.log; \
		echo "FAIL build/qemu build failed (build/results/build.log)" > build/results/build.txt; \
	fi
	@tests/summary

check-harness check-checkpatch check-unit check-spec check-iotests \
	check-reliability check-guest check-asan: tree build
	@mkdir -p build/results && tests/$(patsubst check-%,%,$@).sh && \
		tests/summary $(patsubst check-%,%,$@)

# Long form of the reliability suite: SOAK_KILLS kills (default 1000) and
# SOAK_IMAGES hostile images (default 10000), or SOAK_SECONDS of each
soak: build
	@mkdir -p build/results && RELIABILITY_KILLS=$${SOAK_KILLS:-1000} \
		RELIABILITY_SECONDS=$${SOAK_SECONDS:-0} \
		POWERLOSS_SECONDS=$${SOAK_SECONDS:-900} \
		ZONE_FUZZ_SEQUENCES=0 ZONE_FUZZ_SECONDS=$${SOAK_SECONDS:-1200} \
		FUZZ_IMAGES=$${SOAK_IMAGES:-10000} FUZZ_SECONDS=$${SOAK_SECONDS:-0} \
		tests/reliability.sh && \
		tests/summary reliability

# Builds every commit of the series in its own worktree and build directory
# (incremental from one patch to the next, ccache when present).
check-bisect: tree
	@scripts/bisect-build

# Benchmarks (ratios measured side by side in one run; not a test)
bench: build
	@scripts/bench

# Regenerates the list of iotests that fail or are not run on this machine
# without the series (builds 'upstream' in build/obj-base).
iotests-baseline: tree
	@scripts/iotests-baseline

clean:
	rm -rf build/obj build/results

distclean:
	rm -rf build

#!/bin/sh
# Runs every libFuzzer target for a while (what `make fuzz` calls):
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS] [JOBS]
#
# BUILD_DIR holds the fuzz_* binaries (build/fuzz). Each target runs for
# SECONDS (FUZZ_SECONDS, default 60), JOBS of them at a time (FUZZ_JOBS,
# default 2: one per core here), with its seed corpus from tests/data and
# a working corpus kept in BUILD_DIR/corpus/<target> between runs.
# A crash, a leak, a timeout (an input taking over 10 s), an out-of-memory
# or any sanitizer report fails the target; its input is saved under
# BUILD_DIR/artifacts/ and the end of its log is printed. Ends with
#   fuzz: N passed, N failed
set -u
cd "$(dirname "$0")/../.."

build=${1:-build/fuzz}
seconds=${2:-${FUZZ_SECONDS:-60}}
jobs=${3:-${FUZZ_JOBS:-2}}

# target -> seed directories (read only; new inputs go to the working corpus)
seeds_of() {
	case "$1" in
	fuzz_request) echo "$build/seeds/request" ;;
	fuzz_octopus_rates | fuzz_octopus_account) echo tests/data/octopus ;;
	fuzz_tibber) echo tests/data/tibber ;;
	fuzz_watttime) echo tests/data/watttime ;;
	fuzz_aemo) echo tests/data/aemo ;;
	fuzz_energycharts) echo tests/data/energycharts ;;
	fuzz_jwt) echo tests/fuzz/seeds/jwt ;;
	fuzz_config) echo tests/data/config ;;
	*) echo tests/fuzz/seeds ;;
	esac
}

targets=""
for b in "$build"/fuzz_*; do
	[ -x "$b" ] && targets="$targets ${b##*/}"
done
if [ -z "$targets" ]; then
	echo "fuzz: no fuzz_* binaries in $build (run make fuzz)" >&2
	echo "fuzz: 0 passed, 1 failed"
	exit 1
fi

mkdir -p "$build/logs" "$build/artifacts" "$build/seeds/request"
python3 tests/fuzz/make_request_seeds.py "$build/seeds/request" >/dev/null || exit 1

# ASan/UBSan settings of tests/run.sh; leaks are checked by libFuzzer itself.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

run_one() {
	t=$1
	corpus="$build/corpus/$t"
	mkdir -p "$corpus"
	# -dict: JSON tokens help every target but the JWT one, which is
	# base64 text.
	dict="-dict=tests/fuzz/json.dict"
	[ "$t" = fuzz_jwt ] && dict=""
	# shellcheck disable=SC2046,SC2086
	# FUZZ_SEED (CI sets it) makes a run repeat the same inputs, so CI
	# judges the code, not the luck of the draw; unset, each run explores
	# anew.
	seed=""
	[ -n "${FUZZ_SEED:-}" ] && seed="-seed=$FUZZ_SEED"
	"$build/$t" $seed -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" $dict \
		"$corpus" $(seeds_of "$t") </dev/null >"$build/logs/$t.log" 2>&1
	echo $? >"$build/logs/$t.rc"
}

start=$(date +%s)
set -- $targets
while [ $# -gt 0 ]; do
	pids=""
	n=0
	while [ $# -gt 0 ] && [ "$n" -lt "$jobs" ]; do
		echo "fuzz: $1 for ${seconds}s"
		run_one "$1" &
		pids="$pids $!"
		n=$((n + 1))
		shift
	done
	for p in $pids; do
		wait "$p"
	done
done

passed=0
failed=0
for t in $targets; do
	rc=$(cat "$build/logs/$t.rc" 2>/dev/null || echo 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/logs/$t.log" | tail -n 1)
	cov=$(sed -n 's/^#[0-9]*.*DONE *cov: \([0-9]*\).*/\1/p' "$build/logs/$t.log" | tail -n 1)
	if [ "$rc" = 0 ]; then
		passed=$((passed + 1))
		echo "fuzz: $t ok: ${runs:-?} inputs, coverage ${cov:-?} edges"
	else
		failed=$((failed + 1))
		echo "fuzz: $t FAILED (exit $rc); log $build/logs/$t.log; input in $build/artifacts/:" >&2
		tail -n 40 "$build/logs/$t.log" >&2
	fi
done
echo "fuzz: total $(($(date +%s) - start))s for $(echo $targets | wc -w) targets, $jobs at a time"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/sh
# The project's one test command (README, .ci/run):
#
#   tests/run.sh
#
# Installs missing Debian packages (deploy/install-deps.sh --test), then
# builds with -Werror and runs the unit and integration tests twice: a
# normal build (build/) and one with AddressSanitizer + UBSan (build/asan/)
# where any sanitizer report fails the run. Ends with one line
#   tests: N passed, N failed
# summed over both passes, and exits non-zero on any failure.
set -eu
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
deploy/install-deps.sh --test

# Any report is a failure: stop at the first error, leaks included.
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:print_stacktrace=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

jobs=$(nproc 2>/dev/null || echo 2)
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

total_passed=0
total_failed=0
status=0

# Adds what one pass's log reports to the totals: the unit runner's
# "unit: N passed, N failed", and the integration runner's
# "integration: N passed, N failed" (or, failing that, the summary of
# Python's unittest: "Ran N tests" and "FAILED (failures=F, errors=E)").
count() {
	log=$1
	u=$(sed -n 's/^unit: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	i=$(sed -n 's/^integration: \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1 \2/p' "$log" | tail -n 1)
	if [ -z "$i" ]; then
		ran=$(sed -n 's/^Ran \([0-9][0-9]*\) tests\{0,1\} in .*/\1/p' "$log" | tail -n 1)
		if [ -n "$ran" ]; then
			summary=$(grep -E '^(OK|FAILED)( \(|$)' "$log" | tail -n 1 || true)
			f=$(printf '%s' "$summary" | sed -n 's/.*failures=\([0-9]*\).*/\1/p')
			e=$(printf '%s' "$summary" | sed -n 's/.*errors=\([0-9]*\).*/\1/p')
			s=$(printf '%s' "$summary" | sed -n 's/.*skipped=\([0-9]*\).*/\1/p')
			bad=$((${f:-0} + ${e:-0}))
			i="$((ran - bad - ${s:-0})) $bad"
		fi
	fi
	for pair in "$u" "$i"; do
		[ -n "$pair" ] || continue
		total_passed=$((total_passed + ${pair% *}))
		total_failed=$((total_failed + ${pair#* }))
	done
	if [ -z "$u" ]; then
		echo "tests/run.sh: $2: the unit tests reported nothing" >&2
		total_failed=$((total_failed + 1))
	fi
	if [ -z "$i" ]; then
		echo "tests/run.sh: $2: the integration tests reported nothing" >&2
		total_failed=$((total_failed + 1))
	fi
}

# One pass: build everything first (in parallel), then run the tests one
# after the other (`make -k` so that failing unit tests do not skip the
# integration tests).
pass() {
	name=$1
	shift
	echo "== tests/run.sh: $name: make $*"
	if ! make -j"$jobs" "$@" tools; then
		echo "tests/run.sh: $name: the build failed" >&2
		status=1
		total_failed=$((total_failed + 1))
		return 0
	fi
	{
		rc=0
		make -k "$@" test || rc=$?
		echo "$rc" >"$logdir/$name.rc"
	} 2>&1 | tee "$logdir/$name.log"
	[ "$(cat "$logdir/$name.rc")" = 0 ] || status=1
	count "$logdir/$name.log" "$name"
}

pass plain WERROR=1
pass sanitize SANITIZE=1 WERROR=1

echo "tests: $total_passed passed, $total_failed failed"
if [ "$status" -ne 0 ] || [ "$total_failed" -ne 0 ] || [ "$total_passed" -eq 0 ]; then
	exit 1
fi

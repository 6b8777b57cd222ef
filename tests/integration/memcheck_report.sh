#!/bin/sh
# Reads the valgrind reports `make memcheck` left (one file per process,
# tests/integration/harness.py with RATEPOOL_VALGRIND_DIR) and fails when
# any holds an error or a definite leak. Prints the reports that do, and
#   memcheck: N processes, N with errors
dir=${1:-build/memcheck}
n=0
bad=0
for f in "$dir"/valgrind-*.log; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	# --quiet: a clean process leaves an empty file.
	if grep -q "==[0-9]*== [A-Z]" "$f"; then
		bad=$((bad + 1))
		echo "== $f"
		cat "$f"
	fi
done
echo "memcheck: $n processes, $bad with errors"
[ "$n" -gt 0 ] && [ "$bad" -eq 0 ]

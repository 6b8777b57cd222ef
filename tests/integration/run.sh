#!/bin/sh
# Integration tests: each tests/integration/test_*.py, in its own process,
# two files at a time (run_parallel.py), against real mosquitto brokers and
# the fake upstream. Ends with "integration: N passed, N failed".
set -e
cd "$(dirname "$0")/../.."
exec python3 tests/integration/run_parallel.py

#!/bin/sh
# Integration tests: each tests/integration/test_*.py against a real mosquitto and the fake upstream.
set -e
cd "$(dirname "$0")/../.."
exec python3 -m unittest discover -s tests/integration -p "test_*.py" -v

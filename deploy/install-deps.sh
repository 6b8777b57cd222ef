#!/bin/sh
# Installs the Debian packages ratepool needs (Debian 12; Ubuntu 22.04+ too).
#
#   deploy/install-deps.sh           to build, and to run deploy/run-local.sh
#   deploy/install-deps.sh --demo    also python3, for deploy/run-local.sh --demo
#   deploy/install-deps.sh --test    also what tests/run.sh needs
#   deploy/install-deps.sh --fuzz    also clang and its libFuzzer/sanitizer runtime (make fuzz)
#   deploy/install-deps.sh --build   only what building needs (a Docker build stage)
#
# Only missing packages are installed, and `apt-get update` runs only then,
# so a second run does nothing. Runs apt-get through sudo when not root.
set -eu

# To build: compiler and make, pkg-config, and the four libraries ratepool
# links (MQTT client, HTTP client, JSON, the LMDB store).
build_pkgs="build-essential pkg-config libpaho-mqtt-dev libcurl4-openssl-dev libjansson-dev liblmdb-dev"
# To run beside a local broker, and watch it with mosquitto_sub.
run_pkgs="mosquitto mosquitto-clients"
# The offline demo runs the fake upstream (Python standard library only).
demo_pkgs="python3"
# The tests: cmocka unit tests, a real broker, the fake upstream, valgrind,
# YAML for checking deploy/docker-compose.yml, mdb_copy for the backup test.
test_pkgs="libcmocka-dev lmdb-utils mosquitto mosquitto-clients python3 python3-yaml valgrind"

# Fuzzing (make fuzz, CI): clang with libFuzzer and the sanitizer runtimes.
fuzz_pkgs="clang libclang-rt-14-dev"

want_run=1
want_demo=0
want_test=0
want_fuzz=0
for arg in "$@"; do
	case "$arg" in
	--build) want_run=0 ;;
	--demo) want_demo=1 ;;
	--test) want_test=1 ;;
	--fuzz) want_fuzz=1 ;;
	-h | --help)
		sed -n '2,/^$/s/^# \{0,1\}//p' "$0"
		exit 0
		;;
	*)
		echo "install-deps: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

pkgs=$build_pkgs
[ "$want_run" = 1 ] && pkgs="$pkgs $run_pkgs"
[ "$want_demo" = 1 ] && pkgs="$pkgs $demo_pkgs"
[ "$want_test" = 1 ] && pkgs="$pkgs $test_pkgs"
[ "$want_fuzz" = 1 ] && pkgs="$pkgs $fuzz_pkgs"

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	echo "install-deps: this script is for Debian and Ubuntu (no dpkg-query/apt-get here)." >&2
	echo "install-deps: install the equivalents of: $pkgs" >&2
	exit 1
fi

missing=""
for p in $pkgs; do
	case " $missing " in *" $p "*) continue ;; esac
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
if [ -z "$missing" ]; then
	echo "install-deps: all needed Debian packages are installed"
	exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
	# Without a terminal nobody can type a password: fail clearly instead of hanging.
	if [ ! -t 0 ] && ! sudo -n true 2>/dev/null; then
		echo "install-deps: missing packages:$missing" >&2
		echo "install-deps: installing them needs root: run as root, or with sudo from a terminal" >&2
		exit 1
	fi
else
	echo "install-deps: missing packages:$missing" >&2
	echo "install-deps: installing them needs root, and sudo is not installed: run this script as root" >&2
	exit 1
fi

echo "install-deps: installing:$missing"
# shellcheck disable=SC2086 # word splitting of the package list is intended
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing

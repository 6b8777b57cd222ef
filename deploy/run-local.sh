#!/bin/bash
# Builds ratepool and runs it on this machine beside a local mosquitto.
#
#   deploy/run-local.sh          real upstream APIs (needs the internet)
#   deploy/run-local.sh --demo   offline: every upstream is the fake one from
#                                tests/fake_upstream, with its test credentials
#
# It installs missing Debian packages (deploy/install-deps.sh), runs make,
# starts mosquitto with deploy/mosquitto.conf unless something already
# listens on the broker address, and runs `build/ratepool run`. Ctrl-C stops
# ratepool and whatever this script started.
#
# Settings come from the environment as usual (docs/configuration.md). Unset
# ones get these defaults here:
#   RATEPOOL_MQTT_URL  tcp://127.0.0.1:1883
#   RATEPOOL_SERIES    energycharts/DE-LU,octopus/E-1R-AGILE-24-10-01-C
#   RATEPOOL_STORE     ./var/ratepool   (./var/demo/ratepool with --demo, so
#                      fake prices never mix with real ones)
set -eu
cd "$(dirname "$0")/.."

demo=0
for arg in "$@"; do
	case "$arg" in
	--demo) demo=1 ;;
	-h | --help)
		sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p}' "$0"
		exit 0
		;;
	*)
		echo "run-local: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

say() { echo "run-local: $*" >&2; }

if [ "$demo" = 1 ]; then
	deploy/install-deps.sh --demo
else
	deploy/install-deps.sh
fi
make -j"$(nproc 2>/dev/null || echo 2)"

export RATEPOOL_MQTT_URL="${RATEPOOL_MQTT_URL:-tcp://127.0.0.1:1883}"
export RATEPOOL_SERIES="${RATEPOOL_SERIES:-energycharts/DE-LU,octopus/E-1R-AGILE-24-10-01-C}"
if [ "$demo" = 1 ]; then
	export RATEPOOL_STORE="${RATEPOOL_STORE:-./var/demo/ratepool}"
else
	export RATEPOOL_STORE="${RATEPOOL_STORE:-./var/ratepool}"
fi
mkdir -p var

# Processes this script started; stopped when it exits.
started=()
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	local p
	for p in "${started[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${started[@]}"; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

# Is something accepting TCP connections on host:port?
listening() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# --- the broker -----------------------------------------------------------------
url=$RATEPOOL_MQTT_URL
scheme=${url%%://*}
rest=${url#*://}
authority=${rest%%/*}
case "$authority" in
\[*\]:*) host=${authority%%]:*}; host=${host#[}; port=${authority##*]:} ;;
\[*\]) host=${authority#[}; host=${host%]}; port="" ;;
*:*) host=${authority%%:*}; port=${authority##*:} ;;
*) host=$authority; port="" ;;
esac
if [ -z "$port" ]; then
	case "$scheme" in
	ssl | mqtts) port=8883 ;;
	ws) port=80 ;;
	wss) port=443 ;;
	*) port=1883 ;;
	esac
fi

if listening "$host" "$port"; then
	say "using the MQTT broker already listening on $host:$port"
	say "(for fast request round trips it should have set_tcp_nodelay true, as deploy/mosquitto.conf does)"
else
	case "$scheme:$host" in
	tcp:127.* | tcp:localhost | tcp:::1 | mqtt:127.* | mqtt:localhost | mqtt:::1)
		command -v mosquitto >/dev/null 2>&1 || PATH="$PATH:/usr/sbin"
		mkdir -p var/mosquitto
		bind=$host
		[ "$host" = localhost ] && bind=127.0.0.1
		conf=deploy/mosquitto.conf
		if [ "$port" != 1883 ] || [ "$bind" != 127.0.0.1 ]; then
			conf=var/mosquitto/mosquitto.conf
			sed "s/^listener 1883 127.0.0.1\$/listener $port $bind/" deploy/mosquitto.conf >"$conf"
		fi
		# Started as root, mosquitto drops to its own user, which must be
		# able to write its persistence file.
		if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
			chown mosquitto var/mosquitto
		fi
		mosquitto -c "$conf" >>var/mosquitto/mosquitto.log 2>&1 &
		started+=($!)
		for _ in $(seq 50); do
			listening "$bind" "$port" && break
			if ! kill -0 "${started[-1]}" 2>/dev/null; then
				say "mosquitto did not start; its log (var/mosquitto/mosquitto.log) ends:"
				tail -n 5 var/mosquitto/mosquitto.log >&2
				exit 1
			fi
			sleep 0.1
		done
		say "started mosquitto on $bind port $port (log: var/mosquitto/mosquitto.log)"
		;;
	*)
		say "nothing listens on $host:$port yet; ratepool will keep trying to connect"
		;;
	esac
fi

# --- the fake upstream (--demo) ----------------------------------------------------
if [ "$demo" = 1 ]; then
	mkdir -p var/demo
	rm -f var/demo/fake_upstream.port
	python3 tests/fake_upstream/fake_upstream.py --port 0 --port-file var/demo/fake_upstream.port \
		>>var/demo/fake_upstream.log 2>&1 &
	started+=($!)
	for _ in $(seq 100); do
		[ -s var/demo/fake_upstream.port ] && break
		if ! kill -0 "${started[-1]}" 2>/dev/null; then
			say "the fake upstream did not start; its log (var/demo/fake_upstream.log) ends:"
			tail -n 5 var/demo/fake_upstream.log >&2
			exit 1
		fi
		sleep 0.1
	done
	fake="http://127.0.0.1:$(cat var/demo/fake_upstream.port)"
	export RATEPOOL_OCTOPUS_URL=$fake RATEPOOL_TIBBER_URL=$fake RATEPOOL_WATTTIME_URL=$fake \
		RATEPOOL_AEMO_URL=$fake RATEPOOL_ENERGYCHARTS_URL=$fake
	# The fake's test credentials (tests/fake_upstream/README.md), replacing
	# any real ones: nothing leaves this machine in the demo.
	unset RATEPOOL_OCTOPUS_API_KEY_FILE RATEPOOL_TIBBER_TOKEN_FILE RATEPOOL_WATTTIME_PASSWORD_FILE
	export RATEPOOL_OCTOPUS_API_KEY=sk_test_fake RATEPOOL_TIBBER_TOKEN=tibber-test-token \
		RATEPOOL_WATTTIME_USERNAME=ratepool RATEPOOL_WATTTIME_PASSWORD=fake-password
	say "demo: every upstream is the fake one at $fake (log: var/demo/fake_upstream.log)"
fi

prefix=${RATEPOOL_TOPIC_PREFIX:-ratepool}
say "store $RATEPOOL_STORE, series $RATEPOOL_SERIES"
say "watch it:  mosquitto_sub -h $host -p $port -v -t '$prefix/#'"

# --- ratepool ---------------------------------------------------------------------------
if [ ${#started[@]} -eq 0 ]; then
	trap - EXIT
	exec build/ratepool run
fi
# Something to stop afterwards: run ratepool as a child and pass Ctrl-C
# and SIGTERM on to it (a background job ignores SIGINT itself).
build/ratepool run &
rp=$!
trap 'kill -TERM "$rp" 2>/dev/null || true' INT TERM
status=0
wait "$rp" || status=$?
while kill -0 "$rp" 2>/dev/null; do
	status=0
	wait "$rp" || status=$?
done
exit "$status"

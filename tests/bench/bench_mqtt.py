#!/usr/bin/env python3
"""bench_mqtt.py - the daemon's benchmarks (issue 6), run against a real
mosquitto on loopback (set_tcp_nodelay true) and the fake upstream, with
the processes of tests/integration/harness.py.

    tests/bench/bench_mqtt.py [--build DIR] [--seconds S] [--herd N]
                              [--keep-callgrind DIR] [BENCH ...]

BENCH is any of roundtrip, herd, economy, coldstart, memory, cost (default:
all, in that order). Every result is printed as "key: value" lines (the
format of tests/bench/run.sh); docs/benchmarks.md quotes them. Every
benchmark is bounded in time and stops by itself; a missed target is
printed (target_...: MISSED), not failed. The exit status is non-zero only
when a benchmark could not run (a process failed, a wrong answer).

Environment (as tests/bench/run.sh):
    RATEPOOL_BENCH_RUNS=3       timed runs per round-trip figure (median)
    RATEPOOL_BENCH_CALLGRIND=1  0: skip the cost benchmark (valgrind)
"""

import argparse
import calendar
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

import harness  # noqa: E402
from harness import FakeUpstream, Mosquitto, Ratepool, wait_until  # noqa: E402

AGILE = "octopus/E-1R-AGILE-24-10-01-C"
RUNS = int(os.environ.get("RATEPOOL_BENCH_RUNS", "3") or 3)
OPTS = argparse.Namespace(seconds=3.0, herd=10000, keep_callgrind=None)  # set by main()
CALLGRIND = os.environ.get("RATEPOOL_BENCH_CALLGRIND", "1") != "0"


# A broker setting that lets paho keep more than 20 QoS 1 messages
# unacknowledged (docs/benchmarks.md, "paho and the broker's Receive Maximum").
UNLIMITED_INFLIGHT = "max_inflight_messages 0"


class BenchError(Exception):
    pass


def say(key, value):
    print("%s: %s" % (key, value), flush=True)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def day_request(now):
    """A one-day request (UTC midnight to midnight) for the day of `now`:
    covered once the series was fetched, whatever the hour."""
    start = int(now // 86400 * 86400)
    return json.dumps({"from": rfc3339(start), "to": rfc3339(start + 86400)}, separators=(",", ":"))


class Tools:
    def __init__(self, build):
        b = Path(build)
        if not b.is_absolute():
            b = REPO / b
        self.build = b
        self.ratepool = str(b / "ratepool")
        self.loadgen = str(b / "bench" / "loadgen")
        self.echo = str(b / "bench" / "echo")
        for p in (self.ratepool, self.loadgen, self.echo):
            if not os.path.exists(p):
                raise BenchError("%s is not built (make BUILD=%s bench)" % (p, build))

    def loadgen_run(self, broker, prefix, series=(AGILE,), topics=(), payload="", timeout=120, **opts):
        """Runs loadgen once; returns its JSON result (dict)."""
        cmd = [self.loadgen, "--url", broker.url, "--prefix", prefix]
        for s in series:
            cmd += ["--series", s]
        for t in topics:
            cmd += ["--topic", t]
        if payload:
            cmd += ["--payload", payload]
        for k, v in opts.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0 or not r.stdout.strip():
            raise BenchError("loadgen failed (%d): %s %s" % (r.returncode, r.stderr.strip(), " ".join(cmd)))
        return json.loads(r.stdout.strip().splitlines()[-1])


def quiet_ratepool(tools, fake, broker, **kw):
    """The daemon at log level info (the harness's debug would log every
    reply)."""
    env = dict(kw.pop("env", {}) or {})
    env.setdefault("RATEPOOL_LOG_LEVEL", "info")
    return Ratepool(None, fake=fake, broker=broker, env=env, binary=tools.ratepool, **kw)


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB, from /proc."""
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def stop_all(*procs):
    for p in procs:
        if p is None:
            continue
        try:
            p.stop()
        except Exception:  # noqa: BLE001 - best effort at the end of a benchmark
            pass


# ---------------------------------------------------------------------------
# Round trip

def bench_roundtrip(tools):
    """loadgen -> mosquitto -> ratepool (a covered one-day request) and the
    same loadgen -> the same mosquitto -> echo, alternating, at 1, 8 and 64
    requests in flight on one connection."""
    fake = FakeUpstream(None, log=False).start()
    broker = Mosquitto(None).start()
    daemon = echo = None
    try:
        daemon = quiet_ratepool(tools, fake, broker, series=[AGILE]).start()
        payload = day_request(time.time())
        # Warm: the first requests fetch the series; wait until one is ok.
        def primed():
            r = tools.loadgen_run(broker, "ratepool", payload=payload, requests=5, timeout_ms=3000)
            return r if r["status"].get("ok") == 5 else None
        first = wait_until(primed, timeout=30, interval=0.2, message="ratepool answering ok")
        size = int(round(first["reply_bytes_mean"]))
        say("roundtrip_request", payload)
        say("roundtrip_ratepool_reply_bytes", size)
        ready = os.path.join(daemon.dir, "echo.ready")
        echo = subprocess.Popen([tools.echo, "--url", broker.url, "--prefix", "echo", "--size",
                                         str(size), "--ready-file", ready],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        harness._track(echo)
        wait_until(lambda: os.path.exists(ready) or echo.poll() is not None, timeout=10, message="echo ready")
        if echo.poll() is not None:
            raise BenchError("echo exited: %s" % echo.stderr.read())
        # Warm the echo path too (connections, caches).
        tools.loadgen_run(broker, "echo", payload=payload, requests=200, inflight=8)
        tools.loadgen_run(broker, "ratepool", payload=payload, requests=200, inflight=8)
        results = {}
        for k in (1, 8, 64):
            runs = {"echo": [], "ratepool": []}
            for _ in range(RUNS):
                for who in ("echo", "ratepool"):
                    r = tools.loadgen_run(broker, who, payload=payload, inflight=k, duration=OPTS.seconds,
                                          timeout_ms=5000)
                    bad = r["sent"] - r["status"].get("ok", 0)
                    if r["timeouts"] or bad:
                        raise BenchError("%s at %d in flight: %d timeouts, statuses %s"
                                         % (who, k, r["timeouts"], r["status"]))
                    runs[who].append(r)
            results[k] = runs
            for who in ("echo", "ratepool"):
                rs = runs[who]
                for f in ("p50", "p90", "p99", "max"):
                    say("roundtrip_%s_inflight%d_%s_us_runs" % (who, k, f),
                        " ".join("%.0f" % r["latency_us"][f] for r in rs))
                say("roundtrip_%s_inflight%d_rps_runs" % (who, k),
                    " ".join("%.0f" % r["throughput_rps"] for r in rs))
            med = {who: {f: statistics.median(r["latency_us"][f] for r in runs[who]) for f in ("p50", "p99")}
                   for who in runs}
            rps = {who: statistics.median(r["throughput_rps"] for r in runs[who]) for who in runs}
            p50 = med["ratepool"]["p50"] / med["echo"]["p50"]
            p99 = med["ratepool"]["p99"] / med["echo"]["p99"]
            thr = rps["ratepool"] / rps["echo"]
            say("roundtrip_inflight%d_median" % k,
                "echo p50 %.0f us p99 %.0f us %.0f/s; ratepool p50 %.0f us p99 %.0f us %.0f/s"
                % (med["echo"]["p50"], med["echo"]["p99"], rps["echo"], med["ratepool"]["p50"],
                   med["ratepool"]["p99"], rps["ratepool"]))
            say("roundtrip_inflight%d_ratio" % k, "p50 %.2fx p99 %.2fx throughput %.0f%%" % (p50, p99, thr * 100))
            say("target_roundtrip_inflight%d" % k,
                "met" if p50 <= 1.3 and p99 <= 1.3 and thr >= 0.8 else
                "MISSED (p50 %.2fx, p99 %.2fx of echo, want <= 1.3x; throughput %.0f%%, want >= 80%%)"
                % (p50, p99, thr * 100))
        echo.terminate()
        out, _ = echo.communicate(timeout=10)
        say("roundtrip_echo_counts", out.strip())
        daemon.assert_clean()
    finally:
        if echo is not None and echo.poll() is None:
            echo.kill()
            echo.wait()
        stop_all(daemon, broker, fake)


# ---------------------------------------------------------------------------
# Herd

HERD_CONNECTIONS = 200


def upstream_calls(fake, endpoints):
    c = fake.calls()
    return sum(c.get(e, 0) for e in endpoints)


def herd_once(tools, name, processes, series, endpoints, payload, clock=None, env=None, expire=None, qos=0,
              broker_conf="", herd=None):
    """OPTS.herd requests over HERD_CONNECTIONS connections at once, spread over
    `processes` daemons sharing one store (prefixes rp0, rp1, ...; each
    request goes to one of them). expire(fake, daemons) runs first and
    returns when the series is about to expire. Prints the upstream calls
    the herd caused and what the requesters got."""
    herd = herd or OPTS.herd
    fake = FakeUpstream(None, log=False, clock=clock).start()
    broker = Mosquitto(None, extra_conf=broker_conf).start()
    store = tempfile.mkdtemp(prefix="ratepool-bench-store-")
    daemons = []
    try:
        for i in range(processes):
            e = dict(env or {})
            e["RATEPOOL_TOPIC_PREFIX"] = "rp%d" % i
            e["RATEPOOL_DISCOVERY_PREFIX"] = ""
            d = quiet_ratepool(tools, fake, broker, store=store, env=e)
            d.start(wait_log=r"mqtt_connected", timeout=20)
            daemons.append(d)
        if expire:
            expire(fake, daemons, broker)
        before = upstream_calls(fake, endpoints)
        topics = ["rp%d/request/%s" % (i, series) for i in range(processes)]
        r = tools.loadgen_run(broker, "rp0", series=(), topics=topics, payload=payload, herd=herd,
                              connections=min(HERD_CONNECTIONS, herd), timeout_ms=60000, timeout=180, qos=qos)
        after = upstream_calls(fake, endpoints)
        calls = after - before
        say("herd_%s_requests" % name, "%d at QoS %d over %d connections to %d process(es)%s"
            % (r["sent"], qos, r["connections"], processes, "; broker: " + broker_conf if broker_conf else ""))
        say("herd_%s_upstream_calls" % name, calls)
        say("herd_%s_replies" % name, "%d, timeouts %d, statuses %s, errors %s"
            % (r["replies"], r["timeouts"], json.dumps(r["status"], sort_keys=True),
               json.dumps(r["error_codes"], sort_keys=True)))
        say("herd_%s_latency_ms" % name, "p50 %.0f p90 %.0f p99 %.0f max %.0f (send to reply, all sent at once)"
            % tuple(r["latency_us"][f] / 1000 for f in ("p50", "p90", "p99", "max")))
        say("herd_%s_seconds_to_last_reply" % name, "%.2f" % r["elapsed_s"])
        ok = r["replies"] == r["sent"] and r["timeouts"] == 0
        say("target_herd_%s_one_upstream_call" % name,
            "met" if calls == 1 and ok else "MISSED (%d upstream calls, %d of %d answered)"
            % (calls, r["replies"], r["sent"]))
        for d in daemons:
            d.assert_clean()
    finally:
        stop_all(*daemons)
        stop_all(broker, fake)
        harness.shutil.rmtree(store, True)


def bench_herd(tools):
    """OPTS.herd requesters ask for one series at the moment it must be fetched:
    one upstream call, whatever the number of requesters or processes."""
    now = time.time()
    payload = day_request(now)

    def slow_upstream(fake, daemons, broker):
        # The fetch takes a second, so every request arrives while it is
        # in flight (otherwise the later ones would just hit the store).
        fake.fault("octopus_rates", "slow", delay_s=1)

    # A series nobody asked for yet: the store holds nothing for it.
    herd_once(tools, "cold_1_process", 1, AGILE, ["octopus_rates"], payload, expire=slow_upstream)
    herd_once(tools, "cold_4_processes", 4, AGILE, ["octopus_rates"], payload, expire=slow_upstream)

    # QoS 1 requests get QoS 1 replies: paho may have only as many
    # unacknowledged as the broker's Receive Maximum (mosquitto:
    # max_inflight_messages, 20) and then waits up to a second per round.
    for conf, label in (("", "default_broker"), (UNLIMITED_INFLIGHT, "unlimited_inflight")):
        herd_once(tools, "cold_qos1_1000_%s" % label, 1, AGILE, ["octopus_rates"], payload, expire=slow_upstream,
                  qos=1, broker_conf=conf, herd=1000)

    # A forecast at the moment its TTL runs out (no stale grace: every
    # request must wait for the refresh), on a clock 4x real time: the TTL
    # (60 s, the least allowed) takes 15 s, the herd well under 60 / 4.
    ttl = 60
    speed = 4
    env = {"RATEPOOL_FORECAST_TTL_S": ttl, "RATEPOOL_STALE_GRACE_S": 0}
    wt = "watttime/CAISO_NORTH"

    def expire_forecast(fake, daemons, broker):
        # Fetch it once, then wait (simulated time) until it expires.
        for i, _ in enumerate(daemons):
            r = tools.loadgen_run(broker, "rp%d" % i, series=(wt,), payload=hour, requests=1, timeout_ms=10000)
            if r["status"].get("ok", 0) + r["status"].get("partial", 0) != 1:
                raise BenchError("forecast not served: %s" % r)
        # It expires ttl after its fetch (the scheduler refreshes it then):
        # start the herd a second (simulated) before, so that it straddles
        # the expiry.
        fetched = [q["t"] for q in fake.requests("watttime_forecast")][-1]
        t0 = calendar.timegm(time.strptime(fetched[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + fetched[19:-1])
        fake.fault("watttime_forecast", "slow", delay_s=1)
        wait_until(lambda: fake.now() >= t0 + ttl - 1, timeout=ttl / speed + 10, interval=0.01,
                   message="forecast about to expire")

    # An hour of the forecast, 10 minutes ahead (12 five-minute points,
    # about 1 KB):
    # a whole day would be 48 KB per reply, 480 MB for the herd.
    start = int(now // 300 * 300)
    hour = json.dumps({"from": rfc3339(start + 600), "to": rfc3339(start + 4200)}, separators=(",", ":"))
    for n in (1, 4):
        herd_once(tools, "forecast_expiry_%d_process%s" % (n, "es" if n > 1 else ""), n, wt,
                  ["watttime_forecast"], hour, clock="%s,%d" % (rfc3339(now), speed), env=env,
                  expire=expire_forecast)


# ---------------------------------------------------------------------------
# Upstream economy over a simulated day

TIBBER = "tibber/" + harness.TIBBER_HOME
EC = "energycharts/DE-LU"
ECONOMY_SPEED = 1440  # a day in 60 s
ECONOMY_PROVIDERS = (
    ("agile", AGILE, ("octopus_rates", "octopus_standing_charges", "octopus_product", "octopus_account",
                      "octopus_other", "kraken_graphql")),
    ("tibber", TIBBER, ("tibber_graphql",)),
    ("energycharts", EC, ("energycharts_price",)),
)


def economy_days(tools, users, day="2026-11-23"):
    """Two simulated days (ECONOMY_SPEED x real time) from 23:00Z the
    evening before `day`, in which `users` users each ask ratepool for the
    three series every 30 minutes (paced evenly: users x 3 x 48 requests a
    day, the default range = yesterday through tomorrow). The first day
    starts with an empty store (a new installation); the second is a day
    like any other. Returns ([{provider: upstream calls}, one per day],
    loadgen's result)."""
    start = calendar.timegm(time.strptime(day, "%Y-%m-%d"))
    fake = FakeUpstream(None, log=False, clock="%s,%d" % (rfc3339(start - 3600), ECONOMY_SPEED)).start()
    broker = Mosquitto(None).start()
    daemon = None
    try:
        daemon = quiet_ratepool(tools, fake, broker, series=[x[1] for x in ECONOMY_PROVIDERS]).start()
        wait_until(lambda: fake.now() >= start, timeout=30, interval=0.005, message="the day to start")
        snaps = [fake.calls()]
        day_real = 86400.0 / ECONOMY_SPEED
        rate = users * 3 * 48 / day_real
        result = {}

        def load():
            result["r"] = tools.loadgen_run(broker, "ratepool", series=[x[1] for x in ECONOMY_PROVIDERS],
                                            rate="%.3f" % rate, duration="%.3f" % (2 * day_real), inflight=64,
                                            connections=min(users, 20), timeout_ms=10000,
                                            timeout=2 * day_real + 60)
        th = threading.Thread(target=load)
        th.start()
        for d in (1, 2):
            wait_until(lambda: fake.now() >= start + d * 86400, timeout=day_real + 30, interval=0.005,
                       message="day %d to end" % d)
            snaps.append(fake.calls())
        th.join()
        if "r" not in result:
            raise BenchError("loadgen did not finish")
        days = []
        for a, b in zip(snaps, snaps[1:]):
            days.append({name: sum(b.get(e, 0) - a.get(e, 0) for e in eps) for name, _, eps in ECONOMY_PROVIDERS})
        daemon.assert_clean()
        return days, result["r"]
    finally:
        stop_all(daemon, broker, fake)


def bench_economy(tools):
    """Upstream calls per series per day: ratepool (measured, whatever the
    number of users) against a naive client polling every 30 minutes per
    user (48 x users)."""
    for users in (1, 100, 1000):
        days, r = economy_days(tools, users)
        say("economy_users%d_requests" % users, "%d sent, %d answered (%s), %.0f/s for %.0f s (two simulated days)"
            % (r["sent"], r["replies"], json.dumps(r["status"], sort_keys=True), r["throughput_rps"],
               r["elapsed_s"]))
        for name, _, _ in ECONOMY_PROVIDERS:
            for i, label in ((0, "first_day"), (1, "second_day")):
                c = days[i][name]
                say("economy_users%d_%s_upstream_calls_%s" % (users, name, label),
                    "%d (naive: %d, %s)" % (c, 48 * users, "%.0fx fewer" % (48.0 * users / c) if c else "none"))


# ---------------------------------------------------------------------------
# A warm store of many series (cold start, memory, cost)

WARM_CLOCK = "2026-11-23T17:00:00Z"  # after Agile's 16:00 publication: tomorrow is held
_warm = {}


def agile_series(n):
    """n distinct Agile tariffs the fake knows (any product containing AGILE)."""
    return ["octopus/E-1R-AGILE-B%04d-C" % i for i in range(n)]


def warm_store(tools, n):
    """(fake, store directory, series) with n tracked series fetched from
    yesterday through tomorrow; built once per run by a daemon that was
    asked for each of them, then stopped. The fake keeps running on the
    simulated clock the store was built at."""
    if n in _warm:
        return _warm[n]
    fake = FakeUpstream(None, log=False, clock=WARM_CLOCK + ",1").start()
    broker = Mosquitto(None).start()
    store = tempfile.mkdtemp(prefix="ratepool-bench-warm-")
    series = agile_series(n)
    daemon = None
    try:
        daemon = quiet_ratepool(tools, fake, broker, store=store,
                                env={"RATEPOOL_NEW_SERIES_PER_MINUTE": 10000}).start(wait_log="mqtt_connected")
        t0 = time.monotonic()
        r = tools.loadgen_run(broker, "ratepool", series=series, requests=n, inflight=min(n, 64),
                              timeout_ms=60000, timeout=300)
        if r["status"].get("ok") != n:
            raise BenchError("building the warm store: %s" % json.dumps(r["status"]))
        say("warm_store_%d_series_built_seconds" % n, "%.1f" % (time.monotonic() - t0))
        daemon.assert_clean()
        broker.stop()
    except BaseException:
        stop_all(daemon, broker, fake)
        harness.shutil.rmtree(store, True)
        raise
    _warm[n] = (fake, store, series)
    return _warm[n]


def drop_warm_stores():
    for fake, store, _ in _warm.values():
        stop_all(fake)
        harness.shutil.rmtree(store, True)
    _warm.clear()


def total_calls(fake):
    return sum(fake.calls().values())


def coldstart_once(tools, name, broker_conf, wait_s):
    """A restart on a warm store of 1,000 series, against a broker that
    holds nothing: time from exec until every retained topic is out again,
    and not one upstream call. Waits at most wait_s for the price topics."""
    n = 1000
    fake, store, series = warm_store(tools, n)
    broker = Mosquitto(None, extra_conf=broker_conf).start()
    daemon = sub = None
    tmp = tempfile.mkdtemp(prefix="ratepool-bench-cold-")
    try:
        out = os.path.join(tmp, "sub.txt")
        with open(out, "w") as subf:
            sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-t", "ratepool/#",
                                    "-t", "homeassistant/#", "-F", "%U %t"], stdout=subf,
                                   stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        harness._track(sub)
        time.sleep(0.3)  # the subscription must be in place before the daemon starts
        calls0 = total_calls(fake)
        daemon = quiet_ratepool(tools, fake, broker, store=store)
        t0 = time.time()
        daemon.start()
        want = {"ratepool/prices/%s" % s for s in series} | {"ratepool/prices/%s/current" % s for s in series}

        def seen():
            first = {}
            with open(out) as f:
                for line in f:
                    ts, _, topic = line.strip().partition(" ")
                    if topic and topic not in first:
                        first[topic] = float(ts)
            return first
        try:
            wait_until(lambda: want <= set(seen()), timeout=wait_s, interval=0.1, message="every price topic")
            complete = True
        except TimeoutError:
            complete = False
        time.sleep(2)  # discovery and health, then count upstream calls
        first = seen()
        calls = total_calls(fake) - calls0
        got = want & set(first)
        say("coldstart_%s_broker" % name, broker_conf or "mosquitto defaults (max_inflight_messages 20)")
        say("coldstart_%s_price_topics" % name, "%d of %d (document and current of %d series)"
            % (len(got), len(want), n))
        if complete:
            prices = max(first[t] for t in want) - t0
            everything = max(first.values()) - t0
            say("coldstart_%s_seconds_to_every_price_topic" % name, "%.3f" % prices)
            say("coldstart_%s_seconds_to_every_retained_topic" % name,
                "%.3f (%d topics: prices, current, discovery, HA state, status, health)" % (everything, len(first)))
        else:
            everything = float("inf")
            say("coldstart_%s_seconds_to_every_price_topic" % name, "more than %.0f" % wait_s)
            say("coldstart_%s_topics_after_%.0fs" % (name, wait_s), len(first))
        say("coldstart_%s_upstream_calls" % name, calls)
        say("target_coldstart_%s_under_1s_zero_calls" % name,
            "met" if everything < 1.0 and calls == 0 else "MISSED (%.3f s, %d upstream calls)" % (everything, calls))
        daemon.assert_clean()
    finally:
        if sub is not None:
            sub.terminate()
            sub.wait()
        stop_all(daemon, broker)
        harness.shutil.rmtree(tmp, True)


def bench_coldstart(tools):
    coldstart_once(tools, "unlimited_inflight", UNLIMITED_INFLIGHT, 30)
    coldstart_once(tools, "default_broker", "", 20)


def bench_memory(tools):
    """Peak RSS of the daemon with 1,000 tracked series answering 100
    requests per second (round-robin over the series, default range)."""
    n, rate, seconds = 1000, 100, 30
    fake, store, series = warm_store(tools, n)
    broker = Mosquitto(None).start()
    daemon = None
    try:
        daemon = quiet_ratepool(tools, fake, broker, store=store).start(wait_log="mqtt_connected")
        time.sleep(1)
        result = {}
        samples = []

        def load():
            result["r"] = tools.loadgen_run(broker, "ratepool", series=series, rate=rate, duration=seconds,
                                            inflight=16, timeout_ms=10000, timeout=seconds + 60)
        th = threading.Thread(target=load)
        th.start()
        while th.is_alive():
            samples.append(rss_kib(daemon.pid))
            time.sleep(0.5)
        th.join()
        rss, hwm = rss_kib(daemon.pid)
        anon = file_ = 0
        with open("/proc/%d/status" % daemon.pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                elif line.startswith("RssFile:"):
                    file_ = int(line.split()[1])
        r = result["r"]
        say("memory_load", "%d series tracked, %d requests at %.0f/s for %.0f s, %s"
            % (n, r["sent"], r["throughput_rps"], r["elapsed_s"], json.dumps(r["status"], sort_keys=True)))
        say("memory_rss_kib_max_sampled", max(x[0] for x in samples))
        say("memory_rss_kib_end", "%d (anonymous %d, file-backed %d: the LMDB map and libraries)" % (rss, anon, file_))
        say("memory_peak_rss_kib", hwm)
        say("target_memory_under_32_mib", "met" if hwm < 32 * 1024 else "MISSED (%.1f MiB)" % (hwm / 1024.0))
        daemon.assert_clean()
    finally:
        stop_all(daemon, broker)


# ---------------------------------------------------------------------------
# Instructions per request (callgrind)

def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                return int(line.split()[1])
    raise BenchError("no totals in %s" % path)


def cost_once(tools, n_series, requests=2000, idle_s=5.0):
    """Instructions of the whole daemon process (every thread) per covered
    request: callgrind counters zeroed, N requests, dumped; minus what the
    same process does idle in the same time."""
    fake, store, series = warm_store(tools, n_series)
    broker = Mosquitto(None).start()
    daemon = None
    tmp = tempfile.mkdtemp(prefix="ratepool-bench-cg-")
    try:
        cg = os.path.join(tmp, "cg.out")
        daemon = quiet_ratepool(tools, fake, broker, store=store,
                                args=["run"], env={"RATEPOOL_LOG_LEVEL": "warn"})
        # Start it under valgrind: the harness runs `binary args`.
        daemon.binary = "/usr/bin/valgrind"
        daemon.args = ["--tool=callgrind", "--callgrind-out-file=" + cg, tools.ratepool, "run"]
        daemon.start()
        payload = day_request(fake.now())
        wait_until(lambda: tools.loadgen_run(broker, "ratepool", series=series[:1], payload=payload, requests=1,
                                             timeout_ms=20000)["status"].get("ok") == 1,
                   timeout=120, interval=0.5, message="ratepool under valgrind answering")
        tools.loadgen_run(broker, "ratepool", series=series, payload=payload, requests=200, inflight=8,
                          timeout_ms=30000, timeout=300)  # warm

        def dump():
            before = set(os.listdir(tmp))
            subprocess.run(["callgrind_control", "-d", str(daemon.pid)], capture_output=True, timeout=60)
            new = wait_until(lambda: set(os.listdir(tmp)) - before, timeout=60, message="callgrind dump")
            path = os.path.join(tmp, sorted(new)[-1])
            time.sleep(0.2)  # written completely
            return callgrind_total(path)

        dump()  # everything so far (start-up, warm-up)
        t = time.monotonic()
        time.sleep(idle_s)
        idle = dump()
        idle_rate = idle / (time.monotonic() - t)
        t = time.monotonic()
        r = tools.loadgen_run(broker, "ratepool", series=series, payload=payload, requests=requests, inflight=8,
                              timeout_ms=30000, timeout=600)
        busy = dump()
        elapsed = time.monotonic() - t
        if OPTS.keep_callgrind:
            keep = OPTS.keep_callgrind
            os.makedirs(keep, exist_ok=True)
            for f in os.listdir(tmp):
                harness.shutil.copy(os.path.join(tmp, f), os.path.join(keep, "%d-series-%s" % (n_series, f)))
        if r["status"].get("ok") != requests:
            raise BenchError("under callgrind: %s" % json.dumps(r["status"]))
        per = (busy - idle_rate * elapsed) / requests
        say("cost_%d_series_requests" % n_series, "%d one-day requests over %d series, %.1f s under callgrind"
            % (requests, len(series), elapsed))
        say("cost_%d_series_idle_instructions_per_second" % n_series, "%.0f" % idle_rate)
        say("cost_%d_series_instructions" % n_series, busy)
        say("cost_%d_series_instructions_per_request" % n_series, "%.0f" % per)
        daemon.stop(timeout=60)
    finally:
        stop_all(daemon, broker)
        harness.shutil.rmtree(tmp, True)


def cost_echo(tools, requests=2000):
    """The same measurement for echo: the instructions paho and the
    broker round trip cost a responder that does nothing."""
    broker = Mosquitto(None).start()
    tmp = tempfile.mkdtemp(prefix="ratepool-bench-cg-")
    echo = None
    try:
        cg = os.path.join(tmp, "cg.out")
        ready = os.path.join(tmp, "ready")
        echo = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg, tools.echo,
                                 "--url", broker.url, "--prefix", "echo", "--size", "3882", "--ready-file", ready],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        harness._track(echo)
        wait_until(lambda: os.path.exists(ready), timeout=60, message="echo under valgrind")
        tools.loadgen_run(broker, "echo", requests=200, inflight=8, timeout_ms=30000)
        subprocess.run(["callgrind_control", "-z", str(echo.pid)], capture_output=True, timeout=60)
        t = time.monotonic()
        r = tools.loadgen_run(broker, "echo", requests=requests, inflight=8, timeout_ms=30000, timeout=600)
        elapsed = time.monotonic() - t
        before = set(os.listdir(tmp))
        subprocess.run(["callgrind_control", "-d", str(echo.pid)], capture_output=True, timeout=60)
        new = wait_until(lambda: set(os.listdir(tmp)) - before - {"ready"}, timeout=60, message="callgrind dump")
        time.sleep(0.2)
        total = callgrind_total(os.path.join(tmp, sorted(new)[-1]))
        if r["replies"] != requests:
            raise BenchError("echo under callgrind: %d of %d replies" % (r["replies"], requests))
        say("cost_echo_requests", "%d requests, %.1f s under callgrind" % (requests, elapsed))
        say("cost_echo_instructions_per_request", "%.0f (idle not subtracted: echo does nothing idle)"
            % (total / requests))
    finally:
        if echo is not None and echo.poll() is None:
            echo.terminate()
            try:
                echo.wait(timeout=30)
            except subprocess.TimeoutExpired:
                echo.kill()
                echo.wait()
        stop_all(broker)
        harness.shutil.rmtree(tmp, True)


def bench_cost(tools):
    if not CALLGRIND:
        say("cost", "skipped (RATEPOOL_BENCH_CALLGRIND=0)")
        return
    if not harness.shutil.which("valgrind"):
        say("cost", "skipped (no valgrind)")
        return
    cost_echo(tools)
    cost_once(tools, 1)
    cost_once(tools, 1000)


BENCHES = {
    "roundtrip": bench_roundtrip,
    "herd": bench_herd,
    "economy": bench_economy,
    "coldstart": bench_coldstart,
    "memory": bench_memory,
    "cost": bench_cost,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--seconds", type=float, default=3.0, help="seconds per round-trip run (3)")
    ap.add_argument("--herd", type=int, default=10000, help="requesters in a herd (10000)")
    ap.add_argument("--keep-callgrind", metavar="DIR", help="copy the callgrind dumps of the cost benchmark here")
    ap.add_argument("benches", nargs="*", default=[])
    a = ap.parse_args()
    OPTS.seconds, OPTS.herd, OPTS.keep_callgrind = a.seconds, a.herd, a.keep_callgrind
    names = a.benches or list(BENCHES)
    for n in names:
        if n not in BENCHES:
            ap.error("unknown benchmark %s (one of %s)" % (n, ", ".join(BENCHES)))
    try:
        tools = Tools(a.build)
    except BenchError as e:
        print("bench_mqtt: %s" % e, file=sys.stderr)
        return 1
    status = 0
    for n in names:
        print("== %s" % n, flush=True)
        t0 = time.monotonic()
        try:
            BENCHES[n](tools)
        except (BenchError, RuntimeError, TimeoutError, subprocess.TimeoutExpired, AssertionError) as e:
            say("%s" % n, "FAILED: %s" % e)
            status = 1
        say("%s_seconds" % n, "%.1f" % (time.monotonic() - t0))
    drop_warm_stores()
    return status


if __name__ == "__main__":
    sys.exit(main())

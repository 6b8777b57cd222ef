"""Faults the daemon must ride out (issue 6), each under a minute: the
broker killed and restarted under request load, the upstream down for a
simulated day (accelerated clock), the store at its size bound, and the
disk full (a small tmpfs; skipped when mounting is not permitted).

Longer fault runs (kill -9 in a loop) are in tests/soak (`make soak`).

Each test starts its own fake upstream, mosquitto and ratepool
(RATEPOOL_BIN) on free loopback ports and ends with assert_clean(): the
daemon still stops with exit 0 and no sanitizer (or valgrind) report."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from harness import (FakeUpstream, Mosquitto, Ratepool, mqtt_retained, wait_until)
from mqtt5 import MqttClient, MqttError

AGILE = "E-1R-AGILE-24-10-01-C"
AGILE_REQ = "ratepool/request/octopus/" + AGILE
AGILE_DOC = "ratepool/prices/octopus/" + AGILE
AEMO_DOC = "ratepool/prices/aemo/NSW1"
DAY = 86400


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def parse_time(s):
    """RFC 3339 (the fake's request log, replies) to unix seconds."""
    import datetime
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def retained_json(port, topic):
    text = mqtt_retained(port, topic)
    return json.loads(text) if text else None


class Load(threading.Thread):
    """Requests in a loop over MQTT 5, one in flight at a time, through a
    client that reconnects whenever the broker goes away. Counts answers
    by status."""

    def __init__(self, port, topic, payload, interval=0.02):
        super().__init__(daemon=True)
        self.port = port
        self.topic = topic
        self.payload = payload
        self.interval = interval
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        self.answered = 0
        self.errors = 0  # lost connection or no answer in time

    def run(self):
        n = 0
        while not self.stopping.is_set():
            try:
                c = MqttClient(self.port, client_id="fault-load-%d" % os.getpid()).connect(timeout=2)
                c.subscribe("fault-replies/#", qos=1)
            except (OSError, MqttError):
                time.sleep(0.1)
                continue
            try:
                while not self.stopping.is_set():
                    n += 1
                    cd = b"load-%d" % n
                    c.publish(self.topic, self.payload, qos=1, response_topic="fault-replies/load", correlation=cd)
                    m = c.wait_for(lambda m, cd=cd: m.correlation == cd, timeout=5)
                    with self.lock:
                        st = m.json().get("status")
                        self.statuses[st] = self.statuses.get(st, 0) + 1
                        self.answered += 1
                    time.sleep(self.interval)
            except (OSError, MqttError, TimeoutError, ValueError):
                with self.lock:
                    self.errors += 1
            finally:
                c.close()

    def stop(self):
        self.stopping.set()
        self.join(timeout=10)


def ask(port, topic, payload, timeout=10.0):
    """One MQTT 5 request; the reply as a dict."""
    with MqttClient(port).connect() as c:
        c.subscribe("fault-replies/#", qos=1)
        c.publish(topic, payload, qos=1, response_topic="fault-replies/one", correlation=b"one")
        return c.wait_for(lambda m: m.correlation == b"one", timeout=timeout).json()


class BrokerRestart(unittest.TestCase):
    def test_broker_killed_under_load_ratepool_reconnects_republishes_and_answers(self):
        fake = FakeUpstream(self, clock="2026-11-21T12:34:56Z,1").start()
        broker = Mosquitto(self).start()  # no persistence: a restart loses every retained topic
        rp = Ratepool(self, fake=fake, broker=broker, series="octopus/" + AGILE)
        rp.start(wait_log=r"event=mqtt_connected")
        wait_until(lambda: mqtt_retained(broker.port, AGILE_DOC), timeout=15, message="the price document")
        # Held data (today's morning): answering it never needs the upstream.
        payload = json.dumps({"from": "2026-11-21T00:00:00Z", "to": "2026-11-21T12:00:00Z"}).encode()
        load = Load(broker.port, AGILE_REQ, payload)
        load.start()
        self.addCleanup(load.stop)
        wait_until(lambda: load.answered >= 20, timeout=15, message="answers before the fault")
        calls = fake.call_count("octopus_rates")

        broker.restart(kill=True, down_s=1.0)
        # Retained topics are back without anyone asking: ratepool
        # republished them on reconnecting.
        wait_until(lambda: mqtt_retained(broker.port, "ratepool/status") == "online", timeout=20,
                   message="ratepool/status online after the restart")
        doc = wait_until(lambda: retained_json(broker.port, AGILE_DOC), timeout=20,
                         message="the price document republished")
        self.assertFalse(doc["stale"])
        self.assertTrue(doc["rates"])
        self.assertIsNotNone(wait_until(lambda: mqtt_retained(broker.port, "ratepool/health"), timeout=20,
                                        message="health republished"))
        # ... and requests are answered again.
        before = load.answered
        wait_until(lambda: load.answered >= before + 20, timeout=20, message="answers after the restart")
        load.stop()
        self.assertEqual(set(load.statuses), {"ok"}, load.statuses)
        reply = ask(broker.port, AGILE_REQ, payload)
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(len(reply["rates"]), 24)
        # The store answered all of it: the broker's fault cost no upstream call.
        self.assertEqual(fake.call_count("octopus_rates"), calls)
        self.assertIn("mqtt", rp.log())
        rp.assert_clean()


class UpstreamDown(unittest.TestCase):
    SPEED = 4000  # a simulated day in 21.6 s

    def test_upstream_down_for_a_day_serves_stale_prices_degrades_backs_off_and_recovers(self):
        # 15:00 UK: today's Agile prices are out, tomorrow's come at 16:00.
        fake = FakeUpstream(self, clock="2026-11-21T15:00:00Z,%d" % self.SPEED).start()
        broker = Mosquitto(self).start()
        # One HTTP attempt per poll, so that upstream calls count polls.
        rp = Ratepool(self, fake=fake, broker=broker, series="octopus/%s,aemo/NSW1" % AGILE,
                      env={"RATEPOOL_RETRY_MAX_ATTEMPTS": 1,
                           # `ratepool health` calls a record older than 3 intervals stale;
                           # one loop tick (50 ms) is 200 simulated seconds here.
                           "RATEPOOL_HEALTH_INTERVAL_S": 3600})
        rp.start(wait_log=r"event=mqtt_connected")
        wait_until(lambda: mqtt_retained(broker.port, AGILE_DOC) and mqtt_retained(broker.port, AEMO_DOC),
                   timeout=15, message="both price documents")
        good = retained_json(broker.port, AGILE_DOC)

        for endpoint in ("octopus_rates", "aemo_5min"):
            fake.fault(endpoint, "status", times=-1, status=503)
        t_down = fake.now()
        held = json.dumps({"from": "2026-11-21T00:00:00Z", "to": "2026-11-21T12:00:00Z"}).encode()
        replies = []
        health_seen = None
        with MqttClient(broker.port).connect() as c:
            c.subscribe("fault-replies/#", qos=1)
            n = 0
            while fake.now() < t_down + DAY:
                n += 1
                cd = b"d-%d" % n
                c.publish(AGILE_REQ, held, qos=1, response_topic="fault-replies/down", correlation=cd)
                replies.append((fake.now(), c.wait_for(lambda m, cd=cd: m.correlation == cd, timeout=10).json()))
                h = retained_json(broker.port, "ratepool/health")
                if h and h.get("status") == "degraded":
                    health_seen = h
                    code = rp.cli("health").returncode
                time.sleep(0.25)
        calls = fake.calls()
        polls = {e: sorted(parse_time(r["t"]) for r in fake.requests(e)
                           if t_down <= parse_time(r["t"]) < t_down + DAY)
                 for e in ("octopus_rates", "aemo_5min")}
        fake.reset()  # the upstream is back
        t_up = fake.now()

        # Replies stayed stale with the last good prices, never an error.
        statuses = [r["status"] for _, r in replies]
        self.assertNotIn("error", statuses)
        self.assertIn("stale", statuses)
        last_good = [(x["start"], x["value"]) for x in good["rates"] if "2026-11-21T00" <= x["start"] < "2026-11-21T12"]
        self.assertEqual(len(last_good), 24)
        for _, r in replies:
            self.assertEqual([(x["start"], x["value"]) for x in r["rates"]], last_good, r)
        # Health said so, with a reason, and `ratepool health` exited 1.
        self.assertIsNotNone(health_seen, "health never degraded during a day without the upstream")
        self.assertTrue(any(i.startswith("octopus: ") and "consecutive failures" in i
                            for i in health_seen["issues"]), health_seen)
        self.assertTrue(any(i.startswith("aemo: ") for i in health_seen["issues"]), health_seen)
        self.assertEqual(code, 1)

        # Upstream calls follow the backoff: after N failures the next poll
        # is at least 5 s and at most min(30 min, 30 s * 2^(N-1)) later
        # (docs: sched.h). AEMO polls every 5 minutes when healthy and
        # at once when behind; without backoff a day of outage would cost
        # thousands of calls, with it about one per 15 minutes.
        for endpoint, most in (("aemo_5min", 150), ("octopus_rates", 100)):
            p = polls[endpoint]
            gaps = [b - a for a, b in zip(p, p[1:])]
            self.assertLessEqual(calls[endpoint], most + 2, (endpoint, calls))
            self.assertGreaterEqual(len(p), 30, (endpoint, "gave up polling", p))
            self.assertGreaterEqual(min(gaps), 4.0, (endpoint, gaps))
            # the cap, plus the poll's own jitter and one loop tick
            self.assertLessEqual(max(gaps[8:]), 1800 + 120 + 60 + 0.05 * self.SPEED * 3, (endpoint, gaps))

        # Back within one backoff window (30 min) of the upstream returning.
        def first_ok(endpoint):
            ok = [parse_time(r["t"]) for r in fake.requests(endpoint) if r["status"] == 200]
            return min(ok) if ok else None
        for endpoint in ("octopus_rates", "aemo_5min"):
            t = wait_until(lambda: first_ok(endpoint), timeout=10, message="a successful %s call" % endpoint)
            self.assertLessEqual(t - t_up, 1800 + 120 + 0.05 * self.SPEED * 3, endpoint)
        doc = wait_until(lambda: (lambda d: d if d and not d["stale"] and d["complete_until"] > "2026-11-22T12"
                                  else None)(retained_json(broker.port, AGILE_DOC)),
                         timeout=10, message="a fresh, complete price document")
        self.assertTrue(doc["rates"])
        # Health drops the failures. (Not "healthy" as a whole: AEMO never
        # has a price for the 5 minutes holding now - each interval is
        # published after it ends - so health always lists aemo/NSW1 as
        # "no price for the current slot"; reported, not ours to change.)
        def recovered():
            h = retained_json(broker.port, "ratepool/health") or {"issues": ["?"]}
            bad = [i for i in h["issues"] if not i.startswith("aemo/NSW1: no price for the current slot")]
            return h if not bad else None
        try:
            h = wait_until(recovered, timeout=10, message="health without failures")
        except TimeoutError:
            self.fail("health stayed %s" % retained_json(broker.port, "ratepool/health"))
        self.assertEqual(h["providers"]["octopus"]["consecutive_failures"], 0)
        self.assertEqual(h["providers"]["aemo"]["consecutive_failures"], 0)
        rp.assert_clean()


def can_mount_tmpfs():
    d = tempfile.mkdtemp(prefix="ratepool-tmpfs-probe-")
    try:
        if os.geteuid() != 0:
            return False
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d], capture_output=True)
        if r.returncode != 0:
            return False
        subprocess.run(["umount", d], capture_output=True)
        return True
    finally:
        shutil.rmtree(d, ignore_errors=True)


REGIONS = "ABCDEFGHJKLMNP"


def tariff(region, product="AGILE-24-10-01"):
    return "E-1R-%s-%s" % (product, region)


class StoreFull(unittest.TestCase):
    def weeks(self, port, asks, stop_after_errors=None):
        """Requests a week of Agile prices per (tariff, week start) in
        `asks` (each one fetch and one fetch group), one at a time; returns
        the replies. Stops `stop_after_errors` requests after the first
        error reply when given."""
        out = []
        with MqttClient(port).connect() as c:
            c.subscribe("fault-replies/#", qos=1)
            for i, (code, f) in enumerate(asks):
                body = json.dumps({"from": rfc3339(f), "to": rfc3339(f + 7 * DAY)}).encode()
                cd = b"w-%d" % i
                c.publish("ratepool/request/octopus/" + code, body, qos=1, response_topic="fault-replies/w",
                          correlation=cd)
                out.append(c.wait_for(lambda m, cd=cd: m.correlation == cd, timeout=15).json())
                errors = [k for k, r in enumerate(out) if r["status"] == "error"]
                if stop_after_errors is not None and errors and len(out) - errors[0] > stop_after_errors:
                    break
        return out

    def test_store_at_its_size_bound_reports_store_full_collects_garbage_and_goes_on(self):
        fake = FakeUpstream(self, clock="2026-11-21T12:34:56Z,1").start()
        broker = Mosquitto(self).start()
        # 1 MiB: the map may grow to 2 MiB.
        rp = Ratepool(self, fake=fake, broker=broker,
                      env={"RATEPOOL_STORE_MAX_BYTES": "1MiB", "RATEPOOL_NEW_SERIES_PER_MINUTE": 1000})
        rp.start(wait_log=r"event=mqtt_connected")
        # A past week of a new series per request (about 6 KiB each, and
        # the series' first poll adds its recent days): a series whose
        # fetch failed backs off, the new ones go on filling the store.
        t0 = parse_time("2020-01-04T00:00:00Z")
        asks = [(tariff(REGIONS[i % len(REGIONS)], "AGILE-X%03d" % (i // len(REGIONS))), t0 + i * 7 * DAY)
                for i in range(340)]
        replies = self.weeks(broker.port, asks, stop_after_errors=5)
        full = [r for r in replies if r["status"] == "error"]
        self.assertTrue(full, "%d weeks fitted in a 1 MiB store" % len(replies))
        # A clear error, naming the cause.
        self.assertIn("store full", full[0]["error"]["message"], full[0])
        self.assertRegex(rp.log(), r"level=error event=store_full")
        # Garbage collection ran at once and made room: the service goes on
        # (a new series, so no backoff from the failures above applies).
        rp.wait_for_log(r"event=store_gc groups=[1-9]")
        flex = tariff("C", "AGILE-FLEX-22-11-25")
        after = self.weeks(broker.port, [(flex, parse_time("2026-10-03T00:00:00Z") + k * 7 * DAY)
                                         for k in range(3)])
        self.assertEqual([r["status"] for r in after], ["ok"] * 3, after)
        self.assertTrue(rp.running())
        rp.assert_clean()

    @unittest.skipUnless(can_mount_tmpfs(), "mounting a tmpfs needs root (mount -t tmpfs)")
    def test_disk_full_degrades_health_and_service_resumes_when_space_returns(self):
        mnt = tempfile.mkdtemp(prefix="ratepool-tmpfs-")
        self.addCleanup(shutil.rmtree, mnt, True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt], check=True)
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        fake = FakeUpstream(self, clock="2026-11-21T12:34:56Z,1").start()
        broker = Mosquitto(self).start()
        rp = Ratepool(self, fake=fake, broker=broker, store=os.path.join(mnt, "store"),
                      series="octopus/" + AGILE)
        rp.start(wait_log=r"event=mqtt_connected")
        wait_until(lambda: mqtt_retained(broker.port, AGILE_DOC), timeout=15, message="the price document")
        # Fill the disk to the last byte.
        filler = os.path.join(mnt, "filler")
        for chunk in (65536, 1):
            try:
                with open(filler, "ab", buffering=0) as f:
                    while True:
                        f.write(b"\0" * chunk)
            except OSError:
                pass
        # Old weeks of other tariffs: the upstream answers, the store cannot
        # keep it. Each is a failed octopus fetch: health degrades.
        t0 = parse_time("2025-01-04T00:00:00Z")
        replies = self.weeks(broker.port, [(tariff(r), t0) for r in "ABDE"])
        self.assertEqual([r["status"] for r in replies], ["error"] * 4, replies)
        self.assertIn("store full", replies[0]["error"]["message"], replies[0])
        h = wait_until(lambda: (lambda h: h if h and h["status"] == "degraded" else None)(
            retained_json(broker.port, "ratepool/health")), timeout=10, message="degraded health")
        self.assertTrue(any(i.startswith("octopus: ") and "store full" in i for i in h["issues"]), h)
        self.assertEqual(rp.cli("health").returncode, 1)
        # Held prices are still served.
        held = json.dumps({"from": "2026-11-21T00:00:00Z", "to": "2026-11-21T12:00:00Z"}).encode()
        self.assertEqual(len(ask(broker.port, AGILE_REQ, held)["rates"]), 24)

        os.unlink(filler)  # space returns
        replies = self.weeks(broker.port, [(tariff(r), t0) for r in "FGH"])
        self.assertEqual([r["status"] for r in replies], ["ok"] * 3, replies)
        wait_until(lambda: not any(i.startswith("octopus: ") for i in
                                   (retained_json(broker.port, "ratepool/health") or {"issues": ["octopus: ?"]})
                                   ["issues"]),
                   timeout=10, message="the octopus failure gone from health")
        rp.assert_clean()


if __name__ == "__main__":
    unittest.main()

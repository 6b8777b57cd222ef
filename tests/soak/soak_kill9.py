"""Soak (make soak, not part of the test command): ratepool killed with
SIGKILL 50 times in a loop while it writes fetch groups and answers
requests. Every time the store must open again, no fetch group a client
saw committed may be lost (asked again, it is served with the same
fetched_at, from the store), and subscribers must see P/status go
"offline" (the broker's will for the dead session) then "online".

About 2 minutes. SOAK_KILLS changes the number of kills."""

import json
import os
import random
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

from harness import FakeUpstream, Mosquitto, MqttWatcher, Ratepool, make_tempdir  # noqa: E402
from mqtt5 import MqttClient, MqttError  # noqa: E402

AGILE = "E-1R-AGILE-24-10-01-C"
TOPIC = "ratepool/request/octopus/" + AGILE
DAY = 86400
WEEK0 = 1578096000  # 2020-01-04T00:00:00Z
KILLS = int(os.environ.get("SOAK_KILLS", "50"))


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def week_body(k):
    return json.dumps({"from": rfc3339(WEEK0 + k * 7 * DAY), "to": rfc3339(WEEK0 + (k + 1) * 7 * DAY)}).encode()


class Writer(threading.Thread):
    """Asks for new past weeks one after another (each a fetch and a fetch
    group); records the weeks answered in full with their fetched_at."""

    def __init__(self, port, first_week, committed):
        super().__init__(daemon=True)
        self.port = port
        self.week = first_week
        self.committed = committed
        self.stopping = threading.Event()

    def run(self):
        try:
            with MqttClient(self.port, client_id="soak-writer-%d" % self.week).connect(timeout=5) as c:
                c.subscribe("soak/w", qos=1)
                while not self.stopping.is_set():
                    k = self.week
                    self.week += 1
                    c.publish(TOPIC, week_body(k), qos=1, response_topic="soak/w", correlation=b"%d" % k)
                    r = c.wait_for(lambda m, k=k: m.correlation == b"%d" % k, timeout=2).json()
                    if r["status"] == "ok" and len(r["rates"]) == 336:
                        self.committed[k] = r["fetched_at"]
        except (OSError, MqttError, TimeoutError, ValueError):
            pass  # the daemon died under us: that is the point


class Reader(threading.Thread):
    """Asks for held data in a loop; counts answers."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.answered = 0
        self.stopping = threading.Event()

    def run(self):
        n = 0
        body = json.dumps({"from": "2026-11-21T00:00:00Z", "to": "2026-11-21T12:00:00Z"}).encode()
        try:
            with MqttClient(self.port, client_id="soak-reader").connect(timeout=5) as c:
                c.subscribe("soak/r", qos=1)
                while not self.stopping.is_set():
                    n += 1
                    c.publish(TOPIC, body, qos=1, response_topic="soak/r", correlation=b"%d" % n)
                    c.wait_for(lambda m, n=n: m.correlation == b"%d" % n, timeout=2)
                    self.answered += 1
        except (OSError, MqttError, TimeoutError, ValueError):
            pass


class KillNine(unittest.TestCase):
    def test_kill_9_in_a_loop_loses_no_committed_fetch_group(self):
        # 600x: the "gap just fetched" pause (60 s) between two request
        # fetches of one series passes in 0.1 s.
        fake = FakeUpstream(self, clock="2026-11-21T12:34:56Z,600").start()
        broker = Mosquitto(self).start()
        store = os.path.join(make_tempdir(self), "store")
        rp = Ratepool(self, fake=fake, broker=broker, store=store, series="octopus/" + AGILE)
        status = MqttWatcher(self, broker.port, "ratepool/status").start()
        committed = {}
        week = 0
        rng = random.Random(6)
        for i in range(KILLS):
            onlines = len([m for m in status.messages() if m[1] == "online"])
            rp.start(wait_log=r"event=store_opened", timeout=20)
            status.wait_for(lambda m: m[1] == "online", count=onlines + 1, timeout=20)
            # What was committed before the last kill is still there.
            before = dict(committed)
            self.check_committed(broker.port, before, sample=None if i == KILLS - 1 else 20, rng=rng)
            writer = Writer(broker.port, week, committed)
            reader = Reader(broker.port)
            writer.start()
            reader.start()
            time.sleep(rng.uniform(0.3, 1.2))
            rc = rp.kill()
            self.assertEqual(rc, -9, "ratepool died on its own (exit %s):\n%s" % (rc, rp.log()[-3000:]))
            writer.stopping.set()
            reader.stopping.set()
            writer.join(15)
            reader.join(15)
            week = writer.week + 1
            offlines = len([m for m in status.messages() if m[1] == "offline"])
            self.assertGreaterEqual(offlines, i + 1, "no offline after kill %d" % (i + 1))
        self.assertGreater(len(committed), KILLS, "too few fetch groups written to prove anything")
        onlines = len([m for m in status.messages() if m[1] == "online"])
        rp.start(wait_log=r"event=store_opened", timeout=20)
        status.wait_for(lambda m: m[1] == "online", count=onlines + 1, timeout=20)
        self.check_committed(broker.port, committed, sample=None, rng=rng)
        seq = [m[1] for m in status.messages()]
        # online, offline, online, offline, ... : never two onlines without an offline between
        for a, b in zip(seq, seq[1:]):
            self.assertNotEqual((a, b), ("online", "online"), seq)
        rp.assert_clean()

    def check_committed(self, port, committed, sample, rng):
        """Every (or `sample` of the) week(s) a client saw answered in full
        comes back from the store: the same fetched_at, all 336 slots."""
        weeks = sorted(committed)
        if sample is not None and len(weeks) > sample:
            weeks = rng.sample(weeks, sample)
        with MqttClient(port, client_id="soak-check").connect(timeout=5) as c:
            c.subscribe("soak/c", qos=1)
            for k in weeks:
                c.publish(TOPIC, week_body(k), qos=1, response_topic="soak/c", correlation=b"c%d" % k)
                r = c.wait_for(lambda m, k=k: m.correlation == b"c%d" % k, timeout=10).json()
                self.assertEqual(len(r["rates"]), 336, (k, r))
                self.assertEqual(r["fetched_at"], committed[k], "week %d was fetched again: lost" % k)


if __name__ == "__main__":
    unittest.main()

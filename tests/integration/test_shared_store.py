"""Two ratepool processes on one LMDB store (issue 4): the refresh lease and
the shared poll marker make one upstream call where a single process would
make one, whether the fetch comes from a herd of requests or from a
scheduled publication poll.

The two daemons use different topic prefixes on one broker, so each gets
its own requests; both are configured with the same Agile tariff and run
on the fake upstream's accelerated clock (the harness gives each the fake's
current instant, so all three agree on "now").
"""

import datetime
import json
import os
import threading
import unittest

from harness import FakeUpstream, Mosquitto, Ratepool, make_tempdir, mqtt_retained, mqtt_rr, wait_until

TARIFF = "E-1R-AGILE-24-10-01-C"
SERIES = "octopus/" + TARIFF
PREFIXES = ("rpa", "rpb")


def ts(text):
    """RFC 3339 (Z or offset, optional fraction) -> unix seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class SharedStore(unittest.TestCase):
    def start_pair(self, clock, env=None, fake_config=None, faults=()):
        self.fake = FakeUpstream(self, clock=clock).start()
        self.fake.config(octopus_day_end_hour=23, **(fake_config or {}))
        for f in faults:
            self.fake.fault(**f)
        self.broker = Mosquitto(self).start()
        store = os.path.join(make_tempdir(self), "store")
        self.daemons = {}
        for prefix in PREFIXES:
            e = dict(env or {}, RATEPOOL_TOPIC_PREFIX=prefix)
            self.daemons[prefix] = Ratepool(self, fake=self.fake, broker=self.broker, store=store, series=[SERIES],
                                            env=e).start()
        for prefix in PREFIXES:
            # "online" is published after the request subscription, so a
            # request sent from now on is received.
            wait_until(lambda: mqtt_retained(self.broker.port, prefix + "/status") == "online", 10,
                       message="%s/status online" % prefix)

    def doc(self, prefix):
        raw = mqtt_retained(self.broker.port, "%s/prices/%s" % (prefix, SERIES))
        return json.loads(raw) if raw else None

    def logged_calls(self):
        """Upstream calls each daemon says it made (its fetch_done lines)."""
        total = 0
        for d in self.daemons.values():
            for line in d.log().splitlines():
                if "event=fetch_done series=" in line:
                    total += int(line.split(" calls=")[1].split()[0])
        return total

    def fetch_lines(self):
        return "\n".join("%s %s" % (p, line) for p, d in self.daemons.items() for line in d.log().splitlines()
                         if "fetch_" in line or "lease" in line)

    def tearDown(self):
        for d in getattr(self, "daemons", {}).values():
            d.assert_clean()

    def test_herd_at_both_processes_makes_one_upstream_call(self):
        # The first upstream answer is slow (2 real seconds), so that the
        # herd arrives at both processes while one of them fetches; the
        # other waits on the lease, then finds the store filled. The part
        # of the default range that is not published yet (tomorrow, before
        # 16:00) must not make the second process ask again.
        self.start_pair("2026-11-21T11:00:00Z,10", env={"RATEPOOL_REQUEST_WAIT_MS": "60000"},
                        faults=[dict(endpoint="octopus_rates", kind="slow", delay_s=2.0)])
        wait_until(lambda: self.fake.call_count("octopus_rates") >= 1, 10, message="the first fetch in flight")
        replies = []
        lock = threading.Lock()

        def ask(prefix, i):
            r = mqtt_rr(self.broker.port, "%s/request/%s" % (prefix, SERIES), "it/shared/%s/%d" % (prefix, i), "",
                        timeout=15)
            with lock:
                replies.append((prefix, r))

        threads = [threading.Thread(target=ask, args=(p, i)) for p in PREFIXES for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(replies), 16)
        for prefix, raw in replies:
            self.assertIsNotNone(raw, "no reply from %s" % prefix)
            r = json.loads(raw)
            # Today is held; tomorrow is not published yet (docs/topics.md:
            # "ok" with the rest under missing).
            self.assertIn(r["status"], ("ok", "partial"), raw[:300])
            self.assertTrue(r["rates"])
            self.assertEqual(r["missing"][0]["from"], "2026-11-21T23:00:00Z")
        for prefix in PREFIXES:
            wait_until(lambda: self.doc(prefix), 10, message="%s price document" % prefix)
        self.assertEqual(self.fake.call_count("octopus_rates"), 1, self.fake.requests("octopus_rates"))
        self.assertEqual(self.logged_calls(), 1)

    def test_publication_polls_make_one_upstream_call_per_poll(self):
        # Agile publishes tomorrow at 16:20 today instead of 16:00, so both
        # processes poll through the window (16:00 + jitter, then about
        # every 5 minutes) until it appears. Each poll must be one call in
        # all, never one per process.
        publish = "2026-11-21T16:20:00Z"
        self.start_pair("2026-11-21T15:58:00Z,300", fake_config={"publish_at": {"octopus": publish}})
        for prefix in PREFIXES:
            wait_until(lambda: (self.doc(prefix) or {}).get("complete_until") == "2026-11-22T23:00:00Z", 40,
                       interval=0.2, message="%s gets tomorrow's prices" % prefix)
        calls = [ts(r["t"]) for r in self.fake.requests("octopus_rates")]
        polls = [t for t in calls if t >= ts("2026-11-21T16:00:00Z")]
        # Startup (today's prices) and at least the 16:00 poll plus the one
        # that found the publication.
        self.assertGreaterEqual(len(calls), 3, calls)
        self.assertLessEqual(len(polls), 6, polls)
        for a, b in zip(polls, polls[1:]):
            # Polls are about 5 minutes apart; two calls close together
            # would be both processes asking for the same poll.
            self.assertGreater(b - a, 150, "two calls %.0f s apart: %s\n%s" % (b - a, polls, self.fetch_lines()))
        self.assertGreaterEqual(polls[-1], ts(publish))
        self.assertEqual(self.logged_calls(), len(calls))


if __name__ == "__main__":
    unittest.main()

"""Scheduling on the accelerated clock (issue 4): refreshes follow Agile's
publication window instead of a fixed interval, the current price moves at
every slot boundary without asking the upstream (and expires with its
slot), and a series nobody asks for any more is let go.

Times are 2026-11-21/22, when Europe/London is UTC, so London wall times
and the UTC instants below are the same.
"""

import datetime
import json
import subprocess
import threading
import unittest

from harness import (FakeUpstream, Mosquitto, MqttWatcher, Ratepool, add_cleanup, mqtt_pub, mqtt_retained,
                     mqtt_sub, wait_until)

TARIFF = "E-1R-AGILE-24-10-01-C"
SERIES = "octopus/" + TARIFF
DOC = "ratepool/prices/" + SERIES
CURRENT = DOC + "/current"


def ts(text):
    """RFC 3339 (Z or offset, optional fraction) -> unix seconds."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class V5Watcher:
    """mosquitto_sub -V 5 in the background, keeping each message with its
    retain flag and Message Expiry Interval (None when absent), and the
    fake's clock when it arrived."""

    def __init__(self, test, port, topic, fake):
        self.fake = fake
        self.msgs = []
        self.lock = threading.Lock()
        cmd = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-V", "5", "-q", "1", "-t", topic,
               "-F", "%r\t%E\t%x"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True)
        add_cleanup(test, self.stop)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            retain, expiry, hexpayload = line.rstrip("\n").split("\t")
            now = self.fake.now()
            with self.lock:
                self.msgs.append({"retain": retain == "1", "expiry": int(expiry) if expiry else None,
                                  "payload": bytes.fromhex(hexpayload).decode(), "at": now})

    def messages(self):
        with self.lock:
            return list(self.msgs)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(5)
        self.proc.stdout.close()


class Schedule(unittest.TestCase):
    def start(self, clock, series=(SERIES,), env=None, fake_config=None):
        self.fake = FakeUpstream(self, clock=clock).start()
        self.fake.config(octopus_day_end_hour=23, **(fake_config or {}))
        self.broker = Mosquitto(self).start()
        self.daemon = Ratepool(self, fake=self.fake, broker=self.broker, series=list(series), env=env).start()
        wait_until(lambda: mqtt_retained(self.broker.port, "ratepool/status") == "online", 10,
                   message="ratepool/status online")

    def tearDown(self):
        # Exit 0 on SIGTERM and no sanitizer report, whatever the test did.
        d = getattr(self, "daemon", None)
        if d is not None and d.running():
            d.assert_clean()
        elif d is not None:
            self.assertEqual(d.sanitizer_reports(), [])

    def doc(self):
        raw = mqtt_retained(self.broker.port, DOC)
        return json.loads(raw) if raw else None

    def rates_calls(self):
        return [ts(r["t"]) for r in self.fake.requests("octopus_rates")]

    def test_a_day_fetches_agile_after_publication_not_every_half_hour(self):
        # 15:00 to about 16:05 the next day, 3000 times real time (30 s).
        # Today's publication is late (16:10), tomorrow's on time (16:00).
        publish = "2026-11-21T16:10:00Z"
        self.start("2026-11-21T15:00:00Z,3000", fake_config={"publish_at": {"octopus": publish}})
        watcher = MqttWatcher(self, self.broker.port, DOC).start()

        def docs():
            return [json.loads(m[1]) for m in watcher.messages() if m[1]]

        wait_until(lambda: any(d["complete_until"] == "2026-11-23T23:00:00Z" for d in docs()), 60, interval=0.2,
                   message="the document to hold the day after tomorrow")
        calls = self.rates_calls()
        # Startup, the polls from 16:00 until 16:10's publication, the one
        # next day at 16:00: a handful, against 48 for a 30-minute poller.
        self.assertLessEqual(len(calls), 6, self.fake.requests("octopus_rates"))
        day1 = [c for c in calls if ts("2026-11-21T16:00:00Z") <= c < ts("2026-11-21T17:00:00Z")]
        day2 = [c for c in calls if c >= ts("2026-11-22T15:00:00Z")]
        self.assertGreaterEqual(len(day1), 2, "at least one poll before the publication and one after")
        self.assertTrue(any(c < ts(publish) for c in day1), "a poll before the late publication")
        self.assertEqual(len(day2), 1, "one call next day: tomorrow's publication on time")
        # Between the windows it rests: nothing from 17:00 to 16:00 next day.
        self.assertEqual(len(calls), 1 + len(day1) + len(day2), calls)
        # Tomorrow's slots reach the document soon after publication
        # (fetched_at is when the poll started; at this speed a poll that
        # starts a little before the publication can be answered after it).
        fetched = {}
        for d in docs():
            fetched.setdefault(d["complete_until"], ts(d["fetched_at"]))
        self.assertLess(abs(fetched["2026-11-22T23:00:00Z"] - ts(publish) - 3 * 60), 9 * 60, fetched)
        self.assertLess(abs(fetched["2026-11-23T23:00:00Z"] - ts("2026-11-22T16:00:00Z") - 3 * 60), 9 * 60, fetched)

    def test_current_price_moves_at_each_slot_boundary_without_upstream_call(self):
        # 1200 times real time: a half-hour slot lasts 1.5 s.
        speed = 1200
        self.start("2026-11-21T10:20:00Z,%d" % speed)
        wait_until(self.doc, 10, message="the price document")
        watcher = V5Watcher(self, self.broker.port, CURRENT, self.fake)

        def live():
            return [m for m in watcher.messages() if not m["retain"]]

        # Two boundaries crossed while watching (10:30 and 11:00, or later
        # ones on a slow machine).
        wait_until(lambda: len({json.loads(m["payload"])["start"] for m in live()}) >= 2, 15,
                   message="two slot boundaries")
        live = live()
        rates = {r["start"]: r for r in self.doc()["rates"]}
        starts = sorted({json.loads(m["payload"])["start"] for m in live})
        for a, b in zip(starts, starts[1:]):
            self.assertEqual(ts(b) - ts(a), 1800, "one message per slot, in order: %s" % starts)
        for m in live:
            cur = json.loads(m["payload"])
            rate = rates[cur["start"]]
            self.assertEqual(cur["end"], rate["end"])
            self.assertEqual(cur["value"], rate["value"])
            self.assertEqual(cur["unit"], "GBP/kWh")
            # MQTT 5 Message Expiry: the slot's end (plus a small margin)
            # in the broker's real seconds, so that nobody reads an old
            # price as current once ratepool is gone.
            self.assertIsNotNone(m["expiry"], "no message expiry on %s" % m)
            left_real = (ts(cur["end"]) - m["at"] + 120) / speed
            self.assertGreaterEqual(m["expiry"], 1)
            self.assertLessEqual(m["expiry"], left_real + 2, m)
        values = {json.loads(m["payload"])["value"] for m in live}
        self.assertGreater(len(values), 1, "the value changes across the boundaries")
        self.assertEqual(self.fake.call_count("octopus_rates"), 1, "no upstream call at a slot boundary")

        # ratepool gone: the document stays, the current price expires
        # with its slot.
        last = json.loads(watcher.messages()[-1]["payload"])
        self.daemon.kill()
        wait_until(lambda: mqtt_retained(self.broker.port, CURRENT) is None, 15, interval=0.2,
                   message="the retained current price to expire")
        self.assertGreaterEqual(self.fake.now(), ts(last["end"]) - 1)
        self.assertIsNotNone(self.doc())
        self.assertEqual(mqtt_retained(self.broker.port, "ratepool/status"), "offline")

    def test_idle_series_stops_refreshing_and_clears_its_retained_topics(self):
        # A series asked for once at 15:20 (not configured) and then
        # forgotten: idle after 15 simulated minutes, well before the
        # 16:00 publication poll it would otherwise make.
        self.start("2026-11-21T15:20:00Z,1200", series=(), env={"RATEPOOL_SERIES_IDLE_S": "900"})
        watcher = MqttWatcher(self, self.broker.port, [DOC, CURRENT]).start()
        mqtt_pub(self.broker.port, "ratepool/request/" + SERIES, None, qos=1)
        for topic in (DOC, CURRENT):
            watcher.wait_for(lambda m: m[0] == topic and m[1], timeout=10)
        self.daemon.wait_for_log(r"event=series_idle series=" + SERIES, 15)
        for topic in (DOC, CURRENT):
            # Cleared with an empty retained message, after the data.
            watcher.wait_for(lambda m: m[0] == topic and m[1] == "", timeout=10)
            self.assertEqual(watcher.messages(topic)[-1][1], "")
        self.assertEqual(mqtt_sub(self.broker.port, [DOC, CURRENT], timeout=1, retained_only=True), [])
        self.assertEqual(self.fake.call_count("octopus_rates"), 1)
        # Past the publication poll (16:00 + at most 2 minutes): none for it.
        wait_until(lambda: self.fake.now() >= ts("2026-11-21T16:10:00Z"), 15, interval=0.2,
                   message="16:10 on the fake's clock")
        self.assertEqual(self.fake.call_count("octopus_rates"), 1, self.fake.requests("octopus_rates"))
        self.assertEqual(json.loads(mqtt_retained(self.broker.port, "ratepool/health"))["series_tracked"], 0)
        # Nothing retained names it any more (Home Assistant's device and
        # state topics included).
        left = mqtt_sub(self.broker.port, ["ratepool/#", "homeassistant/#"], count=10000, timeout=1,
                        retained_only=True)
        self.assertEqual([t for t, _ in left if TARIFF in t], [])


if __name__ == "__main__":
    unittest.main()

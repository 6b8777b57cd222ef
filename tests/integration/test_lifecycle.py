"""The daemon's life around the broker and the store (issue 4): a broker
restart or a ratepool restart brings every retained topic back (status,
health, prices, current prices, Home Assistant discovery and state)
without an upstream call; SIGTERM drains (answers what it holds, refuses the rest,
says "offline", exits 0, leaves the store openable); SIGKILL leaves the
broker's will; SIGHUP reopens the log file.

These run at (nearly) real speed where the daemon's waits matter (the
request wait and the shutdown grace are on ratepool's clock), and at
10:05 London, long before Agile's 16:00 publication, so that nothing is
due to be polled while a test looks.
"""

import json
import os
import signal
import subprocess
import unittest

from harness import (FakeUpstream, Mosquitto, Ratepool, make_tempdir, mqtt_pub, mqtt_retained, mqtt_rr, mqtt_sub,
                     wait_until)

TARIFF = "E-1R-AGILE-24-10-01-C"
SERIES = "octopus/" + TARIFF
ZONE = "energycharts/DE-LU"
P = "ratepool"


def doc_topic(series):
    return "%s/prices/%s" % (P, series)


def read(path):
    with open(path) as f:
        return f.read()


def stop_process(proc):
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=5)


class Lifecycle(unittest.TestCase):
    def start(self, clock="2026-11-21T10:05:00Z,1", series=(SERIES,), env=None):
        self.fake = FakeUpstream(self, clock=clock).start()
        self.fake.config(octopus_day_end_hour=23)
        self.broker = Mosquitto(self).start()
        self.daemon = self.new_daemon(series=series, env=env)
        self.wait_online()

    def tearDown(self):
        # Exit 0 on SIGTERM and no sanitizer report, whatever the test did.
        d = getattr(self, "daemon", None)
        if d is not None and d.running():
            d.assert_clean()
        elif d is not None:
            self.assertEqual(d.sanitizer_reports(), [])

    def new_daemon(self, series=(SERIES,), env=None, store=None):
        return Ratepool(self, fake=self.fake, broker=self.broker, series=list(series), env=env, store=store).start()

    def wait_online(self, timeout=10):
        # "online" is published after the request subscription: a request
        # sent from now on is received.
        wait_until(lambda: mqtt_retained(self.broker.port, P + "/status") == "online", timeout,
                   message="ratepool/status online")

    def retained(self, topic):
        return mqtt_retained(self.broker.port, topic)

    def retained_json(self, topic):
        raw = self.retained(topic)
        return json.loads(raw) if raw else None

    def ask(self, series=SERIES, response_topic="it/lifecycle/reply", timeout=10):
        raw = mqtt_rr(self.broker.port, "%s/request/%s" % (P, series), response_topic, "", timeout=timeout)
        return json.loads(raw) if raw else None

    def retained_all(self):
        """{topic: payload} of every retained message ratepool owns: under
        P/ and Home Assistant's discovery prefix."""
        return dict(mqtt_sub(self.broker.port, [P + "/#", "homeassistant/#"], count=10000, timeout=1,
                             retained_only=True))

    def wait_published(self, series_list, expect=()):
        """Waits until "online", the health, and for each series its price
        document, current price, Home Assistant device and state are
        retained (and every topic in `expect`); returns every retained
        topic then, {topic: payload}."""
        topics = {P + "/status", P + "/health", "homeassistant/device/%s/config" % P} | set(expect)
        for s in series_list:
            provider, sid = s.split("/")
            topics |= {doc_topic(s), doc_topic(s) + "/current", "%s/ha/%s/state" % (P, s),
                       "homeassistant/device/%s__%s__%s/config" % (P, provider, sid)}
        got = {}

        def all_there():
            got.clear()
            got.update(self.retained_all())
            return topics <= set(got)

        wait_until(all_there, 20, interval=0.1, message="retained %s" % sorted(topics - set(got)))
        self.assertEqual(got[P + "/status"], "online")
        return got

    def test_broker_restart_gets_every_retained_topic_back_without_upstream_call(self):
        self.start()
        before = self.wait_published([SERIES])
        calls = self.fake.calls()
        # No persistence: the new broker starts with no retained message.
        self.broker.restart()
        self.daemon.wait_for_log(r"event=mqtt_connected .*reconnect=1", 15)
        after = self.wait_published([SERIES], expect=before)
        self.assertEqual(json.loads(after[doc_topic(SERIES)])["complete_until"],
                         json.loads(before[doc_topic(SERIES)])["complete_until"])
        self.assertEqual(json.loads(after[doc_topic(SERIES)])["rates"],
                         json.loads(before[doc_topic(SERIES)])["rates"])
        self.assertEqual(json.loads(after[doc_topic(SERIES) + "/current"])["start"], "2026-11-21T10:00:00Z")
        self.assertTrue(json.loads(after[P + "/health"])["broker_connected"])
        # Requests are answered again (the subscription came back too).
        reply = self.ask()
        self.assertIsNotNone(reply, "no reply after the broker restart")
        self.assertIn(reply["status"], ("ok", "partial"))
        self.assertTrue(reply["rates"])
        self.assertEqual(self.fake.calls(), calls, "the reconnect made an upstream call")
        self.daemon.assert_clean()

    def test_restart_with_warm_store_republishes_without_upstream_call(self):
        self.start()
        # A second series, tracked because someone asked for it (not
        # configured): it must come back after the restart too.
        mqtt_pub(self.broker.port, "%s/request/%s" % (P, ZONE), None, qos=1)
        before = self.wait_published([SERIES, ZONE])
        calls = self.fake.calls()
        self.assertEqual(calls.get("octopus_rates"), 1)
        self.assertEqual(calls.get("energycharts_price"), 1)
        self.assertEqual(self.daemon.stop(), 0)
        # A broker without persistence forgets every retained topic.
        self.broker.restart()
        self.assertEqual(self.retained_all(), {})
        self.daemon.start()
        after = self.wait_published([SERIES, ZONE], expect=before)
        for series in (SERIES, ZONE):
            self.assertEqual(json.loads(after[doc_topic(series)])["rates"],
                             json.loads(before[doc_topic(series)])["rates"])
        self.assertEqual(json.loads(after[P + "/health"])["series_tracked"], 2)
        reply = self.ask(ZONE)
        self.assertIn(reply["status"], ("ok", "partial"))
        self.assertEqual(self.fake.calls(), calls, "the warm restart made an upstream call")
        self.daemon.assert_clean()

    def test_sigterm_answers_requests_in_hand_refuses_new_ones_and_exits_0(self):
        # The first Agile answer takes 3 real seconds; SIGTERM comes while
        # a request waits on it.
        self.start(series=(), env={"RATEPOOL_SHUTDOWN_GRACE_MS": "20000", "RATEPOOL_REQUEST_WAIT_MS": "20000"})
        self.fake.fault("octopus_rates", "slow", delay_s=3.0)
        waiting = subprocess.Popen(
            ["mosquitto_rr", "-h", "127.0.0.1", "-p", str(self.broker.port), "-t", "%s/request/%s" % (P, SERIES),
             "-e", "it/lifecycle/waiting", "-m", "", "-W", "20", "-q", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        self.addCleanup(stop_process, waiting)
        wait_until(lambda: self.fake.call_count("octopus_rates") >= 1, 10, message="the fetch in flight")
        self.daemon.proc.send_signal(signal.SIGTERM)
        self.daemon.wait_for_log(r"event=stopping pending=1", 5)
        # Draining: a new request is refused at once, not left unanswered.
        refused = self.ask(ZONE, "it/lifecycle/refused", timeout=2)
        self.assertIsNotNone(refused, "a request during shutdown got no answer")
        self.assertEqual(refused["status"], "error")
        self.assertEqual(refused["error"]["code"], "busy")
        out, err = waiting.communicate(timeout=20)
        self.assertEqual(waiting.returncode, 0, err)
        reply = json.loads(out)
        self.assertIn(reply["status"], ("ok", "partial"))
        self.assertTrue(reply["rates"], "the waiting request got the fetched prices")
        self.daemon.proc.wait(timeout=20)
        self.assertEqual(self.daemon.stop(), 0)
        self.assertEqual(self.daemon.sanitizer_reports(), [])
        self.assertEqual(self.retained(P + "/status"), "offline")
        self.assertEqual(self.fake.call_count("energycharts_price"), 0, "a refused request fetched")
        # The store was closed cleanly: another process opens it and
        # serves what the first one fetched, without asking upstream.
        calls = self.fake.calls()
        self.daemon.start()
        self.wait_online()
        reply = self.ask()
        self.assertIn(reply["status"], ("ok", "partial"))
        self.assertTrue(reply["rates"])
        self.assertEqual(self.fake.calls(), calls)
        self.assertNotRegex(self.daemon.log(), r"level=(error|warn) event=store")
        self.daemon.assert_clean()

    def test_sigkill_leaves_the_will_offline(self):
        self.start()
        self.wait_published([SERIES])
        self.daemon.kill()
        wait_until(lambda: self.retained(P + "/status") == "offline", 10, message="the will: offline")
        # The last good prices stay for whoever comes next.
        self.assertIsNotNone(self.retained_json(doc_topic(SERIES)))

    def test_sighup_reopens_the_log_file(self):
        logdir = make_tempdir(self)
        path = os.path.join(logdir, "ratepool.log")
        self.start(series=(), env={"RATEPOOL_LOG_FILE": path})
        wait_until(lambda: os.path.exists(path) and "event=started" in read(path), 10,
                   message="the log file")
        rotated = path + ".1"
        os.rename(path, rotated)  # what logrotate does before its postrotate SIGHUP
        self.daemon.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: os.path.exists(path), 10, message="a new log file at the path")
        # Something worth logging: a fetch.
        mqtt_pub(self.broker.port, "%s/request/%s" % (P, SERIES), None, qos=1)
        wait_until(lambda: "event=fetch_done" in read(path), 10, message="the fetch logged in the new file")
        self.assertNotIn("event=fetch_done", read(rotated))
        self.assertIn("event=started", read(rotated))
        self.assertTrue(self.daemon.running())
        self.daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()

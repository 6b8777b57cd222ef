"""Rate requests over MQTT against the running daemon (issue 4, first half):
where replies go (MQTT 5 Response Topic + Correlation Data, MQTT 3.1.1
reply_to + id, nowhere), every malformed request of the request module's
table refused with its stable code, hostile topics and reply addresses
that must never make ratepool publish into its own namespace, oversized
payloads, and 1,000 concurrent requests for one uncached series making
exactly one upstream call.

Each test starts its own fake upstream, mosquitto and ratepool
(RATEPOOL_BIN) on free loopback ports, asserts with the fake's call
counters, and ends with assert_clean(): the daemon still stops with exit 0
and no sanitizer report."""

import json
import os
import threading
import time
import unittest

import harness
from harness import (REPO, FakeUpstream, Mosquitto, Ratepool, mqtt_pub, mqtt_retained, mqtt_rr, wait_until)
from mqtt5 import MqttClient, MqttError

# Waits on MQTT messages stretch like the harness's (valgrind runs).
SCALE = getattr(harness, "TIMEOUT_SCALE", 1)

AGILE = "E-1R-AGILE-24-10-01-C"
AGILE_TOPIC = "ratepool/request/octopus/" + AGILE
AGILE_DOC = "ratepool/prices/octopus/" + AGILE
# 12:34 UTC on a November Saturday: today's Agile prices are out, tomorrow's
# come at 16:00 UK time. The request table's "now" is this instant too.
CLOCK = "2026-11-21T12:34:56Z,1"
MALFORMED = REPO / "tests" / "data" / "requests" / "malformed.json"


def is_reply(msg):
    """True when an MQTT message is a rate-request reply (not a price
    document, health or status)."""
    try:
        doc = json.loads(msg.payload)
    except ValueError:
        return False
    return isinstance(doc, dict) and "rates" in doc and doc.get("status") in ("ok", "stale", "partial", "error")


class Service:
    """Fake upstream + mosquitto + ratepool for one test, and an MQTT 5
    client subscribed to replies/#."""

    def __init__(self, test, clock=CLOCK, env=None, series=None):
        self.test = test
        self.fake = FakeUpstream(test, clock=clock).start()
        self.broker = Mosquitto(test).start()
        self.daemon = Ratepool(test, fake=self.fake, broker=self.broker, env=env, series=series)
        self.daemon.start(wait_log=r"event=mqtt_connected")
        self.client = self.connect()
        self.client.subscribe("replies/#", qos=1)
        self._n = 0
        self._lock = threading.Lock()

    def connect(self, version=5):
        c = MqttClient(self.broker.port, version=version).connect()
        self.test.addCleanup(c.close)
        return c

    def corr(self):
        with self._lock:
            self._n += 1
            return b"corr-%d" % self._n

    def send(self, topic, payload=b"", response_topic="replies/t", correlation=None, qos=1):
        """Publishes a request (MQTT 5); returns its correlation data."""
        cd = correlation if correlation is not None else self.corr()
        self.client.publish(topic, payload, qos=qos, response_topic=response_topic, correlation=cd)
        return cd

    def reply(self, cd, response_topic="replies/t", timeout=10.0):
        """The reply carrying correlation data cd, as a dict."""
        m = self.client.wait_for(lambda m: m.topic == response_topic and m.correlation == cd,
                                 timeout=timeout * SCALE)
        return m.json()

    def ask(self, topic=AGILE_TOPIC, payload=b"", timeout=10.0):
        return self.reply(self.send(topic, payload), timeout=timeout)

    def health(self):
        """`ratepool health` as (exit code, dict or None)."""
        r = self.daemon.cli("health")
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, None


class RequestTestCase(unittest.TestCase):
    def assert_rates_sane(self, reply):
        rates = reply["rates"]
        self.assertTrue(rates, reply)
        for a, b in zip(rates, rates[1:]):
            self.assertLessEqual(a["end"], b["start"])
        for r in rates:
            self.assertIsInstance(r["value"], (int, float))


class ReplyRouting(RequestTestCase):
    """Where the reply goes: Response Topic, reply_to, or nowhere."""

    def test_mqtt5_reply_goes_to_response_topic_with_correlation_data_echoed(self):
        svc = Service(self)
        # mosquitto_rr: a stock MQTT 5 client, correlation data via -D.
        out = mqtt_rr(svc.broker.port, AGILE_TOPIC, "home/kitchen/prices", "", timeout=10,
                      props=[("publish", "correlation-data", "kitchen-42")], extra=["-V", "mqttv5"])
        self.assertIsNotNone(out, "no reply on the response topic")
        reply = json.loads(out)
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["series"], AGILE)
        self.assertEqual(reply["unit"], "GBP/kWh")
        self.assertIsNone(reply["id"])
        self.assert_rates_sane(reply)
        # The correlation data comes back byte for byte (binary, with a NUL).
        corr = b"\x00\x01binary\xff"
        cd = svc.send(AGILE_TOPIC, b'{"id":"q1"}', response_topic="replies/binary", correlation=corr)
        m = svc.client.wait_for(lambda m: m.topic == "replies/binary", timeout=10)
        self.assertEqual(m.correlation, cd)
        self.assertEqual(m.json()["id"], "q1")
        self.assertFalse(m.retain, "a reply is never retained")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1, "the second request was a cache hit")
        svc.daemon.assert_clean()

    def test_mqtt311_reply_goes_to_reply_to_with_id_echoed(self):
        svc = Service(self)
        listener = svc.connect(version=4)
        listener.subscribe("home/prices/reply", qos=1)
        # A real MQTT 3.1.1 client (mosquitto_pub -V 311) cannot set a
        # Response Topic; reply_to and id ride in the JSON.
        mqtt_pub(svc.broker.port, AGILE_TOPIC, '{"reply_to":"home/prices/reply","id":"q1"}', qos=1,
                 extra=["-V", "mqttv311"])
        m = listener.wait_for(timeout=10)
        reply = m.json()
        self.assertEqual(reply["id"], "q1")
        self.assertEqual(reply["status"], "ok")
        self.assert_rates_sane(reply)
        # A numeric id is echoed as the same number.
        mqtt_pub(svc.broker.port, AGILE_TOPIC, '{"reply_to":"home/prices/reply","id":7}', extra=["-V", "mqttv311"])
        m = listener.wait_for(lambda m: m.json()["id"] == 7, timeout=10)
        self.assertEqual(m.json()["series"], AGILE)
        # With a Response Topic, reply_to is ignored: the reply goes to the
        # Response Topic only.
        cd = svc.send(AGILE_TOPIC, b'{"reply_to":"home/prices/reply","id":"both"}')
        self.assertEqual(svc.reply(cd)["id"], "both")
        listener.ping()
        self.assertFalse([m for m in listener.messages() if m.json()["id"] == "both"])
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        svc.daemon.assert_clean()

    def test_request_without_reply_address_tracks_series_and_publishes_retained_doc(self):
        svc = Service(self)
        watcher = svc.connect()
        watcher.subscribe("#", qos=1)
        self.assertIsNone(mqtt_retained(svc.broker.port, AGILE_DOC, timeout=1))
        mqtt_pub(svc.broker.port, AGILE_TOPIC, None)  # empty payload, no reply address
        m = watcher.wait_for(lambda m: m.topic == AGILE_DOC, timeout=10)
        doc = m.json()
        self.assertEqual(doc["series"], AGILE)
        self.assertEqual(doc["provider"], "octopus")
        self.assertFalse(doc["stale"])
        self.assertTrue(doc["rates"])
        retained = mqtt_retained(svc.broker.port, AGILE_DOC, timeout=2)
        self.assertIsNotNone(retained, "the price document is retained")
        self.assertEqual(json.loads(retained)["rates"], doc["rates"])
        current = json.loads(watcher.wait_for(lambda m: m.topic == AGILE_DOC + "/current", timeout=10).payload)
        self.assertEqual(current["unit"], "GBP/kWh")
        self.assertLessEqual(current["start"], "2026-11-21T12:35:00Z")
        self.assertGreater(current["end"], "2026-11-21T12:34:00Z")
        self.assertFalse([m for m in watcher.messages() if is_reply(m)], "nobody asked for a reply")
        # Tracked: health counts it.
        wait_until(lambda: (svc.health()[1] or {}).get("series_tracked") == 1, timeout=10,
                   message="series_tracked == 1")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        svc.daemon.assert_clean()

    def test_range_beyond_publication_is_ok_with_the_rest_missing(self):
        # docs/topics.md: a range reaching past what the upstream has
        # published (tomorrow before 16:00 UK) is "ok", the rest under
        # "missing"; "partial" is for parts that could not be fetched.
        svc = Service(self)
        reply = svc.ask(payload=b'{"from":"2026-11-21T00:00:00Z","to":"2026-11-23T00:00:00Z"}')
        self.assertEqual(reply["status"], "ok", reply.get("missing"))
        self.assertEqual(len(reply["rates"]), 48)
        self.assertEqual(reply["missing"], [{"from": "2026-11-22T00:00:00Z", "to": "2026-11-23T00:00:00Z"}])
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        svc.daemon.assert_clean()

    def test_range_never_fetched_is_fetched_even_right_after_another_fetch(self):
        # A fetch that just ran blocks re-fetching the gaps *it* left for a
        # minute; a different range nobody asked for yet is fetched at once.
        svc = Service(self)
        self.assertEqual(svc.ask()["status"], "ok")
        reply = svc.ask(payload=b'{"from":"2026-11-15T00:00:00Z","to":"2026-11-16T00:00:00Z"}')
        self.assertEqual(reply["status"], "ok", reply)
        self.assertEqual(len(reply["rates"]), 48)
        self.assertEqual(reply["missing"], [])
        self.assertEqual(svc.fake.call_count("octopus_rates"), 2)
        svc.daemon.assert_clean()


class MalformedRequests(RequestTestCase):
    """The request module's table of malformed requests, over MQTT."""

    @classmethod
    def setUpClass(cls):
        with open(MALFORMED) as f:
            table = json.load(f)
        cls.now = table["now"]
        cls.cases = table["cases"]

    @staticmethod
    def payload(case):
        if "payload" in case:
            return case["payload"].encode("utf-8")
        if "payload_hex" in case:
            return bytes.fromhex(case["payload_hex"])
        if "payload_fill" in case:
            n = case["payload_fill"]
            return b'{"pad":"' + b"p" * (n - 10) + b'"}'
        return b""

    @staticmethod
    def reaches_daemon(case):
        """A PUBLISH topic cannot hold wildcards (the broker refuses it),
        and the daemon only subscribes to ratepool/request/#."""
        t = case["topic"]
        if "+" in t or "#" in t or case.get("prefix", "ratepool") != "ratepool":
            return False
        return t == "ratepool/request" or t.startswith("ratepool/request/")

    def expect_id(self, case, reply):
        if case.get("id_kind") == "string":
            self.assertEqual(reply["id"], case["id"], case["name"])
        elif case.get("id_kind") == "number":
            self.assertEqual(reply["id"], json.loads(case["id"]), case["name"])
        elif case.get("id_kind") == "none":
            self.assertIsNone(reply["id"], case["name"])

    def test_every_malformed_request_gets_its_error_code(self):
        self.assertEqual(self.now, CLOCK.split(",")[0], "the table's now is the test clock's")
        svc = Service(self, clock=self.now + ",1")
        watcher = svc.connect()
        watcher.subscribe("#", qos=0)
        watcher.subscribe("$SYS/broker", qos=0)
        doc_before = None
        # A held series first, so that a reply landing on its retained
        # document would show.
        self.assertEqual(svc.ask()["status"], "ok")
        doc_before = wait_until(lambda: mqtt_retained(svc.broker.port, AGILE_DOC, timeout=1), timeout=10,
                                message="the retained price document")
        calls_before = svc.fake.calls()

        sent = []  # (case, correlation, response topic)
        no_reply = []  # cases sent without any usable reply address
        by_3_1_1 = []  # (case, reply_to) sent without a Response Topic
        for case in self.cases:
            if not self.reaches_daemon(case):
                continue
            body = self.payload(case)
            if case["code"] == "bad_reply_to":
                # With a Response Topic, reply_to is ignored (request.h);
                # without one, a bad reply_to leaves nowhere to answer.
                svc.client.publish(case["topic"], body, qos=1)
                no_reply.append(case)
                continue
            rt = "replies/table/" + case["name"]
            sent.append((case, svc.send(case["topic"], body, response_topic=rt), rt))
            if case.get("reply") == "reply_to":
                svc.client.subscribe(case["reply_to"], qos=1)
                svc.client.publish(case["topic"], body, qos=1)
                by_3_1_1.append(case)
        self.assertGreaterEqual(len(sent) + len(no_reply), 30, "at least 30 malformed requests over MQTT")

        codes = {}
        for case, cd, rt in sent:
            reply = svc.reply(cd, response_topic=rt)
            self.assertEqual(reply["status"], "error", case["name"])
            self.assertEqual(reply["error"]["code"], case["code"], "%s: %s" % (case["name"], reply["error"]))
            self.assertTrue(reply["error"]["message"], case["name"])
            self.assertEqual(reply["rates"], [], case["name"])
            self.expect_id(case, reply)
            codes[case["code"]] = codes.get(case["code"], 0) + 1
        for case in by_3_1_1:
            # Replies to reply_to carry no correlation data: match on the
            # error code (two cases share a reply_to), then check the id.
            m = svc.client.wait_for(lambda m: m.topic == case["reply_to"] and not m.correlation and
                                    m.json()["error"]["code"] == case["code"], timeout=10)
            self.expect_id(case, m.json())
        # Every refusal code that can travel over MQTT was seen.
        self.assertEqual(set(codes) | {"bad_reply_to"},
                         {c["code"] for c in self.cases if self.reaches_daemon(c)})

        # The daemon answers in order: once a request sent after all of
        # them is answered, any reply to a bad reply_to would be out.
        self.assertEqual(svc.ask()["status"], "ok")
        watcher.ping()
        stray = [m for m in watcher.messages()
                 if is_reply(m) and not m.topic.startswith("replies/") and
                 m.topic not in {c["reply_to"] for c in by_3_1_1}]
        self.assertEqual(stray, [], "a reply went to a refused reply_to")
        self.assertEqual(mqtt_retained(svc.broker.port, "ratepool/status"), "online")
        self.assertEqual(mqtt_retained(svc.broker.port, AGILE_DOC), doc_before)
        self.assertIsNone(mqtt_retained(svc.broker.port, "homeassistant/sensor/ratepool/config", timeout=1))
        # Nothing refused reached the upstream.
        self.assertEqual(svc.fake.calls(), calls_before)
        self.assertTrue(svc.daemon.running())
        svc.daemon.assert_clean()

    def test_response_topic_inside_own_namespace_gets_no_reply(self):
        svc = Service(self)
        watcher = svc.connect()
        watcher.subscribe("#", qos=0)
        self.assertEqual(svc.ask()["status"], "ok")
        doc_before = wait_until(lambda: mqtt_retained(svc.broker.port, AGILE_DOC, timeout=1), timeout=10,
                                message="the retained price document")
        hostile = [AGILE_DOC, AGILE_DOC + "/current", "ratepool/status", "ratepool/health", "ratepool",
                   AGILE_TOPIC,  # a reply there would come back as a request: a loop
                   "ratepool/request/octopus/" + "E-1R-AGILE-24-10-01-A",
                   "homeassistant/sensor/ratepool/config", "$SYS/ratepool", "replies/+", "replies/#"]
        for rt in hostile:
            try:
                svc.client.publish(AGILE_TOPIC, b'{"id":"hostile"}', qos=1, response_topic=rt,
                                   correlation=b"hostile", wait=True)
            except (MqttError, ValueError):
                # The broker (or the packet format) may refuse it outright;
                # reconnect and carry on.
                svc.client = svc.connect()
                svc.client.subscribe("replies/#", qos=1)
        self.assertEqual(svc.ask()["status"], "ok")
        watcher.ping()
        self.assertEqual([m for m in watcher.messages() if is_reply(m) and not m.topic.startswith("replies/")],
                         [])
        self.assertEqual([m for m in watcher.messages() if m.correlation == b"hostile" and
                          not m.topic.startswith("ratepool/request/")], [])
        self.assertEqual(mqtt_retained(svc.broker.port, AGILE_DOC), doc_before)
        self.assertEqual(mqtt_retained(svc.broker.port, "ratepool/status"), "online")
        # The would-be loop did not reach the upstream either.
        self.assertEqual(svc.fake.calls(), {"octopus_rates": 1})
        svc.daemon.assert_clean()

    def test_wildcard_topics_cannot_be_published_and_the_daemon_never_sees_them(self):
        svc = Service(self)
        for topic in ("ratepool/request/+/E-1R", "ratepool/request/octopus/#", "ratepool/request/octopus/a+b"):
            c = MqttClient(svc.broker.port).connect()
            self.addCleanup(c.close)
            with self.assertRaises(MqttError, msg=topic):
                c.publish(topic, b"", qos=1, response_topic="replies/t", correlation=b"w", wait=True)
            self.assertTrue(c.closed.is_set(), "the broker drops a client publishing %r" % topic)
        reply = svc.ask()
        self.assertEqual(reply["status"], "ok")
        wait_until(lambda: (svc.health()[1] or {}).get("cache", {}).get("requests") == 1, timeout=10,
                   message="exactly one request counted")
        svc.daemon.assert_clean()

    def test_hostile_series_ids_are_refused_or_looked_up_safely(self):
        svc = Service(self)
        cases = {
            "ratepool/request/octopus/" + "N" * 65: "bad_series_id",
            "ratepool/request/octopus/" + "N" * 64: "invalid",  # a valid id, but no tariff code
            "ratepool/request/octopus/": "bad_series_id",
            "ratepool/request//" + AGILE: "unknown_provider",
            "ratepool/request/octopus/" + AGILE + "/extra": "bad_topic",
            "ratepool/request/octopus/" + AGILE + "/": "bad_topic",
            "ratepool/request/octopus/..": "invalid",
            "ratepool/request/energycharts/..": "not_found",
            "ratepool/request/watttime/.": "not_found",
            "ratepool/request/tibber/..": "not_found",
            "ratepool/request/aemo/..": "not_found",
        }
        for topic, code in cases.items():
            reply = svc.ask(topic)
            self.assertEqual(reply["status"], "error", topic)
            self.assertEqual(reply["error"]["code"], code, "%r: %s" % (topic, reply["error"]))
        # '.' ids reach no upstream as a path segment (no "/../" traversal).
        for r in svc.fake.requests():
            self.assertNotIn("/../", r["path"])
            self.assertNotIn("/./", r["path"])
        # None of them became a tracked series with a retained topic.
        self.assertIsNone(mqtt_retained(svc.broker.port, "ratepool/prices/#", timeout=1))
        self.assertEqual(svc.ask()["status"], "ok")
        svc.daemon.assert_clean()

    def test_oversized_payloads_are_refused_and_the_daemon_keeps_answering(self):
        svc = Service(self)
        just_over = b'{"pad":"' + b"p" * (4097 - 10) + b'"}'
        reply = svc.ask(payload=just_over)
        self.assertEqual(reply["error"]["code"], "payload_too_large")
        at_limit = b'{"pad":"' + b"p" * (4096 - 10) + b'"}'
        self.assertEqual(svc.ask(payload=at_limit)["status"], "ok")
        # Far over (1 MiB, 64 KiB + 1): refused before parsing; whether an
        # error reply comes or the message is dropped, the daemon goes on.
        for size in (65537, 1 << 20):
            cd = svc.send(AGILE_TOPIC, b"{" + b" " * (size - 2) + b"}")
            self.assertEqual(svc.ask()["status"], "ok")
            late = [m for m in svc.client.messages() if m.correlation == cd]
            for m in late:
                self.assertEqual(m.json()["error"]["code"], "payload_too_large")
        self.assertEqual(svc.fake.call_count("octopus_rates"), 1)
        self.assertTrue(svc.daemon.running())
        svc.daemon.assert_clean()


class Concurrency(RequestTestCase):
    CLIENTS = 10
    PER_CLIENT = 100

    def test_thousand_concurrent_requests_make_one_upstream_call(self):
        # Real-time clock, so the single-flight wait (10 s) outlasts the
        # fake's 2 s delay by far. QoS 0 requests get QoS 0 replies (see
        # test_qos1_reply_burst_is_not_throttled for QoS 1).
        svc = Service(self, clock=CLOCK)
        svc.fake.fault("octopus_rates", "slow", times=1, delay_s=2)
        clients = []
        for i in range(self.CLIENTS):
            c = svc.connect()
            c.subscribe("replies/c%d" % i, qos=0)
            clients.append(c)
        start = threading.Barrier(self.CLIENTS)
        errors = []

        def fire(i, c):
            try:
                start.wait()
                for k in range(self.PER_CLIENT):
                    c.publish(AGILE_TOPIC, b'{"id":%d}' % (i * self.PER_CLIENT + k), qos=0,
                              response_topic="replies/c%d" % i, correlation=b"%d/%d" % (i, k))
                c.ping()
            except Exception as e:  # reported below
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=fire, args=(i, c)) for i, c in enumerate(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sent_in = time.monotonic() - t0
        self.assertEqual(errors, [])
        self.assertLess(sent_in, 2.0, "all requests went out while the one fetch was in flight")

        replies = {}
        for i, c in enumerate(clients):
            for m in c.wait_for(lambda m: m.topic == "replies/c%d" % i, count=self.PER_CLIENT, timeout=20):
                replies.setdefault(m.correlation, []).append(m.json())
        self.assertEqual(len(replies), self.CLIENTS * self.PER_CLIENT, "every requester got a reply")
        self.assertTrue(all(len(v) == 1 for v in replies.values()), "exactly one reply each")
        first = None
        for cd, (reply,) in replies.items():
            i, k = (int(x) for x in cd.split(b"/"))
            self.assertEqual(reply["id"], i * self.PER_CLIENT + k)
            self.assertEqual(reply["status"], "ok")
            if first is None:
                first = reply["rates"]
                self.assertTrue(first)
            self.assertEqual(reply["rates"], first)
        self.assertEqual(svc.fake.calls(), {"octopus_rates": 1})

        def counted():
            h = svc.health()[1] or {}
            return h if h.get("cache", {}).get("requests") == self.CLIENTS * self.PER_CLIENT else None
        cache = wait_until(counted, timeout=10, message="health counting every request")["cache"]
        self.assertEqual(cache["misses"], 1)
        self.assertEqual(cache["upstream_calls"], 1)
        # Some may have arrived after the fetch ended (hits); most waited.
        self.assertGreaterEqual(cache["coalesced"], self.CLIENTS * self.PER_CLIENT // 2)
        self.assertEqual(cache["coalesced"] + cache["hits"] + cache["misses"], self.CLIENTS * self.PER_CLIENT)
        svc.daemon.assert_clean()


    def test_qos1_reply_burst_is_not_throttled(self):
        # paho.mqtt.c 1.3.11 sends at most the broker's Receive Maximum
        # (mosquitto: 20) QoS 1 messages and then only wakes its send
        # thread when a new command is queued or after 1 s, so a burst of
        # QoS 1 replies drained at ~20/s. service/mqtt.c now paces QoS 1
        # publishes itself (its outbox, see mqtt.h): 300 cached replies
        # take milliseconds.
        svc = Service(self)
        self.assertEqual(svc.ask()["status"], "ok")
        clients = [svc.connect() for _ in range(10)]
        for i, c in enumerate(clients):
            c.subscribe("replies/burst%d" % i, qos=1)
        for k in range(30):
            for i, c in enumerate(clients):
                c.publish(AGILE_TOPIC, b"", qos=1, response_topic="replies/burst%d" % i, correlation=b"b%d" % k)
        for i, c in enumerate(clients):
            c.wait_for(lambda m: m.topic == "replies/burst%d" % i, count=30, timeout=3)
        svc.daemon.assert_clean()


if __name__ == "__main__":
    unittest.main()

"""Node-RED: the example flow deploy/node-red/flows.json, run headless by a
real Node-RED against a real mosquitto and ratepool (fake upstream).

Node-RED comes from the npm registry: `npm install node-red@NODE_RED_VERSION`
into tests/node-red/.cache (git-ignored; NODE_RED_CACHE overrides), once;
later runs reuse it. Without node/npm, or when the registry cannot be
reached, the tests are skipped with the reason; any other failure fails.
docs/node-red.md describes the flow and this test.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (REPO, FakeUpstream, Mosquitto, Ratepool, add_cleanup, free_port,  # noqa: E402
                     make_tempdir, mqtt_pub, mqtt_rr, mqtt_sub, wait_until, _stop_process, _track)

NODE_RED_VERSION = os.environ.get("NODE_RED_VERSION", "4.1.8")
CACHE = Path(os.environ.get("NODE_RED_CACHE") or REPO / "tests" / "node-red" / ".cache")
SETTINGS = REPO / "tests" / "node-red" / "settings.js"
FLOW = REPO / "deploy" / "node-red" / "flows.json"
MARKER = CACHE / ("installed-node-red-%s" % NODE_RED_VERSION)
RED_JS = CACHE / "node_modules" / "node-red" / "red.js"
UNREACHABLE = CACHE / "registry-unreachable"

# npm's words for "the registry cannot be reached".
NETWORK_ERRORS = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|"
                            r"EHOSTUNREACH|network|socket hang up|request to .* failed", re.I)


def ensure_node_red():
    """Path of red.js, installing Node-RED into CACHE when it is not there
    yet. Raises unittest.SkipTest when node/npm are missing or too old, or
    the npm registry is unreachable."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise unittest.SkipTest("Node-RED test needs node and npm (Node.js 18 or newer); not installed")
    out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    m = re.match(r"v(\d+)\.", out)
    if not m or int(m.group(1)) < 18:
        raise unittest.SkipTest("Node-RED 4 needs Node.js 18 or newer; node --version says %r" % out)
    if MARKER.exists() and RED_JS.exists():
        return RED_JS
    # A registry found unreachable a moment ago (e.g. by the plain pass of
    # tests/run.sh) is not tried again by the sanitizer pass.
    try:
        if time.time() - UNREACHABLE.stat().st_mtime < 3600:
            raise unittest.SkipTest("the npm registry was unreachable less than an hour ago (%s): %s"
                                    % (UNREACHABLE, UNREACHABLE.read_text().strip()[:200]))
    except FileNotFoundError:
        pass
    CACHE.mkdir(parents=True, exist_ok=True)
    pkg = CACHE / "package.json"
    if not pkg.exists():
        pkg.write_text('{"name": "ratepool-node-red-test", "private": true}\n')
    cmd = [npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--omit=dev",
           "--fetch-retries=1", "--fetch-timeout=60000", "--prefix", str(CACHE), "node-red@%s" % NODE_RED_VERSION]
    sys.stderr.write("test_node_red: installing Node-RED %s into %s (once; takes a minute)\n"
                     % (NODE_RED_VERSION, CACHE))
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        UNREACHABLE.write_text("npm install timed out after 300 s\n")
        raise unittest.SkipTest("npm install node-red@%s timed out after 300 s: is the npm registry "
                                "reachable?" % NODE_RED_VERSION) from None
    if r.returncode != 0:
        text = r.stdout + r.stderr
        if NETWORK_ERRORS.search(text):
            UNREACHABLE.write_text(text.strip()[-300:] + "\n")
            raise unittest.SkipTest("npm install node-red@%s: the npm registry is not reachable "
                                    "(no network?): %s" % (NODE_RED_VERSION, text.strip()[-300:]))
        raise RuntimeError("npm install node-red@%s failed (%d):\n%s" % (NODE_RED_VERSION, r.returncode,
                                                                        text[-3000:]))
    if not RED_JS.exists():
        raise RuntimeError("npm install succeeded but %s is missing" % RED_JS)
    if UNREACHABLE.exists():
        UNREACHABLE.unlink()
    MARKER.write_text("node-red@%s\n" % NODE_RED_VERSION)
    return RED_JS


def parse_ms(text):
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def rfc3339(ms):
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cheapest_window(rates, now, hours):
    """The same rule as the flow's "cheapest window" node, written again:
    (start, end, average) of the cheapest gap-free `hours` starting at a
    slot start not before `now`; the earliest of equal ones; None if none."""
    slots = sorted(((parse_ms(r["start"]), parse_ms(r["end"]), r["value"]) for r in rates))
    need = hours * 3600 * 1000
    best = None
    for i, (start, _, _) in enumerate(slots):
        if start < now:
            continue
        end = start + need
        covered, total = start, 0.0
        for s, e, v in slots[i:]:
            if covered >= end or s != covered:
                break
            until = min(e, end)
            total += v * (until - covered)
            covered = until
        if covered < end:
            continue
        avg = total / need
        if best is None or avg < best[2]:
            best = (start, end, avg)
    return best


class NodeRed:
    """Node-RED running one flow file, headless, with its log captured."""

    def __init__(self, test, red_js, flows):
        self.test = test
        self.dir = make_tempdir(test, "ratepool-node-red-")
        with open(os.path.join(self.dir, "flows.json"), "w") as f:
            json.dump(flows, f, indent=1)
        self.red_js = red_js
        self.proc = None
        self.log_path = os.path.join(self.dir, "node-red.log")

    def start(self):
        env = dict(os.environ, NODE_RED_TEST_PORT=str(free_port()), NODE_ENV="production")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(["node", str(self.red_js), "--userDir", self.dir, "--settings", str(SETTINGS)],
                                     cwd=self.dir, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _track(self.proc)
        add_cleanup(self.test, self.stop)
        return self

    def stop(self):
        _stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()
            self._log = None

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_for_log(self, pattern, timeout):
        rx = re.compile(pattern)

        def check():
            if self.proc.poll() is not None:
                raise RuntimeError("Node-RED exited (%s):\n%s" % (self.proc.returncode, self.log()[-3000:]))
            return rx.search(self.log())
        return wait_until(check, timeout, 0.1, "Node-RED log /%s/" % pattern)


def flow_for_broker(port):
    """deploy/node-red/flows.json with its broker node pointed at the test
    broker (what a user does in the broker's config dialog)."""
    flows = json.loads(FLOW.read_text())
    brokers = [n for n in flows if n.get("type") == "mqtt-broker"]
    assert len(brokers) == 1, "the flow should have one broker config node"
    brokers[0]["broker"] = "127.0.0.1"
    brokers[0]["port"] = str(port)
    return flows


class FlowFile(unittest.TestCase):
    """What a Node-RED user imports: checked without running Node-RED."""

    def test_flow_is_one_tab_of_known_nodes_wired_to_existing_ids(self):
        flows = json.loads(FLOW.read_text())
        ids = {n["id"] for n in flows}
        self.assertEqual(len(ids), len(flows), "node ids must be unique")
        tabs = [n for n in flows if n["type"] == "tab"]
        self.assertEqual(len(tabs), 1)
        known = {"tab", "comment", "mqtt in", "mqtt out", "inject", "function", "debug", "mqtt-broker"}
        for n in flows:
            self.assertIn(n["type"], known, n)
            if n["type"] not in ("tab", "mqtt-broker"):
                self.assertEqual(n.get("z"), tabs[0]["id"], n["id"])
            for out in n.get("wires", []):
                for target in out:
                    self.assertIn(target, ids, "%s wires to a missing node" % n["id"])
            if n["type"] in ("mqtt in", "mqtt out"):
                self.assertIn(n["broker"], ids)
        # Every function node parses as JavaScript (Node-RED wraps the body
        # in a function; so does this check).
        node = shutil.which("node")
        if node:
            for n in flows:
                if n["type"] == "function":
                    r = subprocess.run([node, "-e", "new Function('msg','node','flow','env','Buffer',"
                                        "require('fs').readFileSync(0,'utf8'))"], input=n["func"],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(r.returncode, 0, "%s: %s" % (n["name"], r.stderr))

    def test_broker_node_speaks_mqtt5_and_request_carries_a_response_topic(self):
        flows = json.loads(FLOW.read_text())
        broker = next(n for n in flows if n["type"] == "mqtt-broker")
        self.assertEqual(str(broker["protocolVersion"]), "5")
        self.assertNotIn("credentials", broker, "no credentials may be shipped in the flow")
        ask = next(n for n in flows if n["type"] == "function" and n["name"] == "ask ratepool")
        self.assertIn("msg.responseTopic", ask["func"])
        self.assertIn("msg.correlationData", ask["func"])
        prices = next(n for n in flows if n["type"] == "mqtt in" and n["name"] == "price document")
        self.assertRegex(prices["topic"], r"^ratepool/prices/[a-z]+/[A-Za-z0-9._-]+$")


class NodeRedFlow(unittest.TestCase):
    """The flow running in Node-RED against mosquitto, ratepool and the fake."""

    @classmethod
    def setUpClass(cls):
        cls.red_js = ensure_node_red()

    def test_flow_publishes_the_cheapest_window_of_ratepools_reply(self):
        fake = FakeUpstream(self).start()  # the real clock: Node-RED has no other
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker, series="energycharts/DE-LU").start(wait_log="started")
        # The retained document comes first (the flow reacts to it).
        wait_until(lambda: mqtt_sub(broker.port, "ratepool/prices/energycharts/DE-LU", count=1, timeout=2,
                                    retained_only=True), 20, message="ratepool's retained price document")

        # Watch the reply the flow gets, with its MQTT 5 Correlation Data. A
        # probe message shows that the subscription is in place.
        replies = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-V", "mqttv5",
                                    "-t", "replies/nodered/#", "-C", "100", "-W", "55", "-F", "%t|%D"],
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        _track(replies)
        self.addCleanup(replies.stdout.close)
        self.addCleanup(_stop_process, replies)
        lines = []

        def read():
            for line in replies.stdout:
                lines.append(line)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()

        def probed():
            mqtt_pub(broker.port, "replies/nodered/probe", "probe", v5=True,
                     props=[("publish", "correlation-data", "probe")])
            return any(line.startswith("replies/nodered/probe|") for line in lines)
        wait_until(probed, 10, 0.2, "the reply subscriber")

        red = NodeRed(self, self.red_js, flow_for_broker(broker.port)).start()
        red.wait_for_log(r"Started flows", 30)
        msgs = mqtt_sub(broker.port, "nodered/cheapest-window/#", count=1, timeout=40)
        self.assertTrue(msgs, "the flow published no result; Node-RED log:\n%s\nratepool log:\n%s"
                        % (red.log()[-3000:], daemon.log()[-2000:]))
        topic, payload = msgs[0]
        self.assertEqual(topic, "nodered/cheapest-window/energycharts/DE-LU")
        result = json.loads(payload)
        self.assertEqual(result["status"], "ok", result)
        self.assertEqual(result["hours"], 3)
        self.assertEqual(result["unit"], "EUR/kWh")

        # The request went out as MQTT 5 with Correlation Data, echoed by ratepool.
        seen = wait_until(lambda: [x.strip() for x in lines if x.startswith("replies/nodered/cheapest-window|")],
                          10, message="the flow's reply on replies/nodered/cheapest-window")
        self.assertRegex(seen[0], r"^replies/nodered/cheapest-window\|cheapest-\d+-\d+$")

        # Ask ratepool for the same range, and find the window independently.
        reply = json.loads(mqtt_rr(broker.port, "ratepool/request/energycharts/DE-LU", "it/node-red/check",
                                   json.dumps({"from": result["searched_from"], "to": result["searched_to"]}),
                                   timeout=10))
        self.assertNotEqual(reply["status"], "error", reply)
        self.assertEqual(reply["missing"], [], "the flow asks up to complete_until: nothing is missing")
        want = cheapest_window(reply["rates"], parse_ms(result["now"]), 3)
        self.assertIsNotNone(want)
        self.assertEqual((result["start"], result["end"]), (rfc3339(want[0]), rfc3339(want[1])))
        self.assertAlmostEqual(result["average"], want[2], places=9)
        self.assertGreaterEqual(parse_ms(result["start"]), parse_ms(result["now"]))

        # The result is retained: a dashboard started later gets it at once.
        again = mqtt_sub(broker.port, "nodered/cheapest-window/energycharts/DE-LU", count=1, timeout=3,
                         retained_only=True)
        self.assertEqual(json.loads(again[0][1])["start"], result["start"])
        self.assertNotRegex(red.log(), r"\[error\]", red.log()[-3000:])
        red.stop()
        daemon.assert_clean()


RUN_FUNCTION = REPO / "tests" / "node-red" / "run-function.js"


@unittest.skipUnless(shutil.which("node"), "needs node")
class CheapestWindowNode(unittest.TestCase):
    """The flow's "cheapest window" function node on hand-made replies, run
    by node outside Node-RED (tests/node-red/run-function.js), and the
    Python copy of its rule used above."""

    NOW = "2026-11-21T00:00:00Z"

    def rates(self, values, start=NOW, step_s=3600):
        t0 = parse_ms(start)
        return [{"start": rfc3339(t0 + i * step_s * 1000), "end": rfc3339(t0 + (i + 1) * step_s * 1000),
                 "value": v} for i, v in enumerate(values)]

    def run_node(self, reply, hours=2, now=NOW, corr="req-1", pending_id="req-1"):
        pending = {"id": pending_id, "hours": hours, "now": now, "topic": "ratepool/request/octopus/E-1R-X-C"}
        data = {"msg": {"topic": "replies/nodered/cheapest-window", "payload": reply}, "flow": {"pending": pending}}
        if corr is not None:
            data["correlationData"] = corr
        r = subprocess.run(["node", str(RUN_FUNCTION), str(FLOW), "cheapest window"], input=json.dumps(data),
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def window(self, values, hours=2, now=NOW, rates=None):
        rates = rates if rates is not None else self.rates(values)
        out = self.run_node({"id": "req-1", "status": "ok", "unit": "GBP/kWh", "rates": rates}, hours, now)
        result = out["result"]
        self.assertEqual(result["topic"], "nodered/cheapest-window/octopus/E-1R-X-C")
        self.assertTrue(result["retain"])
        py = cheapest_window(rates, parse_ms(now), hours)
        p = result["payload"]
        if py is None:
            self.assertEqual(p["status"], "none")
        else:
            self.assertEqual((p["start"], p["end"]), (rfc3339(py[0]), rfc3339(py[1])))
            self.assertAlmostEqual(p["average"], py[2], places=9)
        return p

    def test_gap_breaks_a_window_and_a_missing_price_is_not_zero(self):
        rates = self.rates([5, 1, 1, 5, 5])
        del rates[2]  # 02:00 unknown: 01:00-03:00 cannot be used
        p = self.window(None, rates=rates)
        self.assertEqual((p["start"], p["average"]), ("2026-11-21T00:00:00Z", 3.0))

    def test_window_starts_no_earlier_than_now(self):
        # 00:00-02:00 would cost 1, but 00:00 has passed.
        p = self.window([1, 1, 9, 9, 8, 8], now="2026-11-21T00:10:00Z")
        self.assertEqual((p["start"], p["average"]), ("2026-11-21T01:00:00Z", 5.0))

    def test_fractional_hours_weigh_the_last_slot_by_time(self):
        p = self.window([2, 4, 1, 1], hours=1.5)
        self.assertEqual((p["start"], p["end"], p["average"]), ("2026-11-21T02:00:00Z", "2026-11-21T03:30:00Z", 1))

    def test_half_hour_slots_and_negative_prices(self):
        rates = self.rates([0.2, -0.05, -0.1, 0.3, 0.1, 0.1], step_s=1800)
        p = self.window(None, hours=1, rates=rates)
        self.assertEqual((p["start"], p["end"]), ("2026-11-21T00:30:00Z", "2026-11-21T01:30:00Z"))
        self.assertAlmostEqual(p["average"], -0.075)

    def test_earliest_of_equal_windows_wins(self):
        p = self.window([3, 1, 1, 3, 1, 1])
        self.assertEqual(p["start"], "2026-11-21T01:00:00Z")

    def test_too_few_prices_ahead_is_status_none(self):
        p = self.window([1, 1], hours=3)
        self.assertEqual(p["status"], "none")
        self.assertIn("no 3 h of prices", p["reason"])

    def test_reply_to_an_older_request_is_ignored(self):
        out = self.run_node({"id": "old", "status": "ok", "rates": self.rates([1, 1])}, corr="old")
        self.assertIsNone(out["result"])
        self.assertEqual(out["flow"]["pending"]["id"], "req-1", "still waiting for its own reply")

    def test_mqtt311_reply_is_matched_by_its_json_id(self):
        out = self.run_node({"id": "req-1", "status": "ok", "unit": "EUR/kWh", "rates": self.rates([1, 2, 3])},
                            corr=None)
        self.assertEqual(out["result"]["payload"]["start"], "2026-11-21T00:00:00Z")

    def test_error_reply_is_published_with_ratepools_error(self):
        err = {"code": "not_found", "message": "octopus: unknown tariff"}
        out = self.run_node({"id": "req-1", "status": "error", "rates": [], "error": err})
        self.assertEqual(out["result"]["payload"]["status"], "error")
        self.assertEqual(out["result"]["payload"]["error"], err)
        self.assertEqual(out["status"]["fill"], "red")


@unittest.skipUnless(shutil.which("node"), "needs node")
class AskRatepoolNode(unittest.TestCase):
    """The flow's "ask ratepool" function node."""

    def run_node(self, msg, flow=None):
        r = subprocess.run(["node", str(RUN_FUNCTION), str(FLOW), "ask ratepool"],
                           input=json.dumps({"msg": msg, "flow": flow or {}}), capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)

    def test_price_document_becomes_an_mqtt5_request_from_now_to_complete_until(self):
        until = rfc3339((int(time.time()) + 86400) * 1000)
        out = self.run_node({"topic": "home/ratepool/prices/octopus/E-1R-AGILE-24-10-01-C",
                             "payload": {"complete_until": until, "rates": []}})
        req = out["result"]
        self.assertEqual(req["topic"], "home/ratepool/request/octopus/E-1R-AGILE-24-10-01-C")
        self.assertEqual(req["payload"]["to"], until)
        self.assertLessEqual(abs(parse_ms(req["payload"]["from"]) - time.time() * 1000), 60000)
        self.assertRegex(req["payload"]["from"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(req["responseTopic"], "replies/nodered/cheapest-window")
        self.assertEqual(req["correlationData"], req["payload"]["id"])
        self.assertEqual(out["flow"]["pending"]["id"], req["payload"]["id"])
        self.assertEqual(out["flow"]["pending"]["hours"], 3)

    def test_timer_without_a_price_document_asks_nothing(self):
        self.assertIsNone(self.run_node({"payload": 1795000000000})["result"])

    def test_timer_repeats_the_request_for_the_known_series(self):
        until = rfc3339((int(time.time()) + 7200) * 1000)
        out = self.run_node({"payload": 1795000000000},
                            {"priceTopic": "ratepool/prices/aemo/NSW1", "completeUntil": until})
        self.assertEqual(out["result"]["topic"], "ratepool/request/aemo/NSW1")

    def test_prices_ending_before_now_ask_nothing(self):
        out = self.run_node({"topic": "ratepool/prices/aemo/NSW1",
                             "payload": {"complete_until": "2020-01-01T00:00:00Z"}})
        self.assertIsNone(out["result"])
        self.assertEqual(out["status"]["fill"], "yellow")


if __name__ == "__main__":
    unittest.main()

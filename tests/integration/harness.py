"""harness.py - the processes integration tests run against: the fake
upstream, a real mosquitto broker, the ratepool daemon, and helpers around
mosquitto_sub / mosquitto_pub / mosquitto_rr.

Every class takes an optional unittest.TestCase as `test`; when given,
start() registers stop() and the removal of the object's temporary
directory with test.addCleanup(), so nothing is left behind even when the
test fails. Without a test, call stop() yourself (or use `with`). Any
process still running when the interpreter exits is killed (atexit).

Typical use:

    class T(unittest.TestCase):
        def test_x(self):
            fake = FakeUpstream(self, clock="2026-11-21T15:59:00Z,60").start()
            broker = Mosquitto(self).start()
            daemon = Ratepool(self, fake=fake, broker=broker).start()
            msgs = mqtt_sub(broker.port, "ratepool/status", count=1)
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FAKE_SCRIPT = REPO / "tests" / "fake_upstream" / "fake_upstream.py"
MOSQUITTO_BIN = os.environ.get("MOSQUITTO_BIN") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else shutil.which("mosquitto"))

# Credentials the fake upstream knows (tests/fake_upstream/README.md).
OCTOPUS_API_KEY = "sk_test_fake"
OCTOPUS_ACCOUNT = "A-FAKE0001"
TIBBER_TOKEN = "tibber-test-token"
TIBBER_HOME = "96a14971-525a-4420-aae9-e5aedaa129ff"
WATTTIME_USER = "ratepool"
WATTTIME_PASSWORD = "fake-password"

# RATEPOOL_VALGRIND=1 (`make memcheck`): Ratepool runs the daemon (and
# cli()) under valgrind's memcheck; any error or definite leak makes it
# exit 99. Everything runs ~20x slower then, so waits are scaled by
# TIMEOUT_SCALE (RATEPOOL_TIMEOUT_SCALE, default 4 under valgrind, else 1).
VALGRIND = os.environ.get("RATEPOOL_VALGRIND", "") not in ("", "0")
# With RATEPOOL_VALGRIND_DIR set, each process's report goes to
# DIR/valgrind-<pid>.log (make memcheck reads them all afterwards), else
# into the daemon's log.
VALGRIND_CMD = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite", "--num-callers=30",
                "--suppressions=" + str(Path(__file__).resolve().parent / "valgrind.supp")]
if os.environ.get("RATEPOOL_VALGRIND_DIR"):
    os.makedirs(os.environ["RATEPOOL_VALGRIND_DIR"], exist_ok=True)
    VALGRIND_CMD.append("--log-file=" + os.path.join(os.path.abspath(os.environ["RATEPOOL_VALGRIND_DIR"]),
                                                     "valgrind-%p.log"))
TIMEOUT_SCALE = float(os.environ.get("RATEPOOL_TIMEOUT_SCALE") or (4 if VALGRIND else 1))

_LIVE = set()
_LIVE_LOCK = threading.Lock()


def _track(proc):
    with _LIVE_LOCK:
        _LIVE.add(proc)


def _untrack(proc):
    with _LIVE_LOCK:
        _LIVE.discard(proc)


@atexit.register
def _kill_leftovers():
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for p in procs:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                pass


def free_port():
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port, timeout=10.0, proc=None, what="process"):
    """Waits until port accepts connections; raises if proc dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with %s before listening on %d" % (what, proc.returncode, port))
        time.sleep(0.02)
    raise TimeoutError("%s did not listen on port %d within %.1fs" % (what, port, timeout))


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Polls predicate() until it returns a true value, which is returned.
    The timeout is scaled by TIMEOUT_SCALE (valgrind)."""
    timeout *= TIMEOUT_SCALE
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, message))
        time.sleep(interval)


def add_cleanup(test, fn, *args):
    """test.addCleanup(fn, *args) for a TestCase instance; for a TestCase
    class (setUpClass) addClassCleanup; with no test, at interpreter exit."""
    if test is None:
        atexit.register(fn, *args)
    elif isinstance(test, type):
        test.addClassCleanup(fn, *args)
    else:
        test.addCleanup(fn, *args)


def make_tempdir(test=None, prefix="ratepool-it-"):
    """A fresh directory removed at cleanup (see add_cleanup)."""
    d = tempfile.mkdtemp(prefix=prefix)
    add_cleanup(test, shutil.rmtree, d, True)
    return d


def _stop_process(proc, kill=False, timeout=10.0):
    """SIGTERM (or SIGKILL) and wait; SIGKILL after timeout. Returns the
    exit status (negative signal number when killed by a signal)."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    _untrack(proc)
    return proc.returncode


def _read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ---------------------------------------------------------------------------

class FakeUpstream:
    """tests/fake_upstream/fake_upstream.py as a subprocess on a free port.

    clock: RATEPOOL_TEST_CLOCK for the fake ("<RFC 3339>[,<speed>]"), or
    None for the real clock. env: extra environment. log: write an access
    log (read it with access_log()). data_dir: --data directory."""

    def __init__(self, test=None, clock=None, env=None, log=True, data_dir=None):
        self.test = test
        self.clock = clock
        self.extra_env = dict(env or {})
        self.log = log
        self.data_dir = data_dir
        self.proc = None
        self.port = None
        self.dir = None

    def start(self, timeout=10.0):
        self.dir = make_tempdir(self.test, "ratepool-fake-")
        port_file = os.path.join(self.dir, "port")
        env = dict(os.environ)
        env.pop("RATEPOOL_TEST_CLOCK", None)
        if self.clock:
            env["RATEPOOL_TEST_CLOCK"] = self.clock
        env.update(self.extra_env)
        cmd = [sys.executable, str(FAKE_SCRIPT), "--port", "0", "--port-file", port_file]
        if self.log:
            cmd += ["--log", os.path.join(self.dir, "access.log")]
        if self.data_dir:
            cmd += ["--data", str(self.data_dir)]
        self._stderr = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=self._stderr,
                                     stdin=subprocess.DEVNULL)
        _track(self.proc)
        add_cleanup(self.test, self.stop)
        deadline = time.monotonic() + timeout
        while True:
            if os.path.exists(port_file):
                self.port = int(_read(port_file).strip())
                break
            if self.proc.poll() is not None:
                raise RuntimeError("fake upstream exited (%s): %s" % (self.proc.returncode, self.stderr()))
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("fake upstream wrote no port file within %.1fs" % timeout)
            time.sleep(0.01)
        wait_port(self.port, timeout, self.proc, "fake upstream")
        return self

    def stop(self):
        rc = _stop_process(self.proc)
        if getattr(self, "_stderr", None):
            self._stderr.close()
            self._stderr = None
        return rc

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stderr(self):
        return _read(os.path.join(self.dir, "stderr.log")) if self.dir else ""

    def access_log(self):
        return _read(os.path.join(self.dir, "access.log")) if self.dir else ""

    # Control API -----------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=10.0):
        """(status, headers, body bytes) of a request to the fake, errors
        included (no exception for 4xx/5xx)."""
        data = None
        hdrs = dict(headers or {})
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode())
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def _control(self, method, path, body=None):
        status, _, data = self.request(method, "/_fake/" + path, body)
        obj = json.loads(data or b"null")
        if status != 200:
            raise RuntimeError("fake upstream /_fake/%s: %s %s" % (path, status, obj))
        return obj

    def fault(self, endpoint, kind, times=1, **kw):
        """Queues a fault (README "Control API"); e.g.
        fault("octopus_rates", "status", status=429, retry_after=2)."""
        body = dict(kw, endpoint=endpoint, kind=kind, times=times)
        return self._control("POST", "fault", body)

    def faults(self):
        return self._control("GET", "faults")

    def config(self, **kw):
        """Changes config (token_lifetime_s, page_size, publish_at, ...);
        returns the whole config."""
        return self._control("POST", "config", kw)

    def get_config(self):
        return self._control("GET", "config")

    def calls(self):
        return self._control("GET", "calls")

    def call_count(self, endpoint):
        return self.calls().get(endpoint, 0)

    def reset(self):
        return self._control("POST", "reset", {})

    def requests(self, endpoint=None):
        """The last 1000 requests (newest last), optionally of one endpoint."""
        return self._control("GET", "requests" + ("?endpoint=" + endpoint if endpoint else ""))

    def now(self):
        """The fake's clock, unix seconds (float)."""
        return self._control("GET", "now")["unix"]

    def clock_spec(self):
        """RATEPOOL_TEST_CLOCK that starts another process at the fake's
        current simulated instant and speed, so both agree on "now"; None
        when the fake runs on the real clock."""
        n = self._control("GET", "now")
        return n["clock_spec"] if n["simulated"] else None


# ---------------------------------------------------------------------------

class Mosquitto:
    """A real mosquitto broker on a free 127.0.0.1 port, with a temporary
    config: anonymous access, TCP_NODELAY, persistence optional."""

    def __init__(self, test=None, port=None, persistence=False, extra_conf="", binary=None):
        self.test = test
        self.port = port
        self.persistence = persistence
        self.extra_conf = extra_conf
        self.binary = binary or MOSQUITTO_BIN
        self.proc = None
        self.dir = None
        self._log = None

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port

    def _write_conf(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        lines = [
            "listener %d 127.0.0.1" % self.port,
            "allow_anonymous true",
            "set_tcp_nodelay true",
            "persistence %s" % ("true" if self.persistence else "false"),
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto would switch to user "mosquitto", which
            # cannot write into our private temporary directory.
            lines.append("user root")
        if self.persistence:
            # Save after every change so that a kill -9 loses nothing.
            lines += ["persistence_location %s/" % os.path.join(self.dir, "data"),
                      "autosave_interval 1", "autosave_on_changes true"]
            os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n" + self.extra_conf + "\n")
        return conf

    def start(self, timeout=10.0):
        if not self.binary or not os.path.exists(self.binary):
            raise RuntimeError("mosquitto binary not found (set MOSQUITTO_BIN)")
        first = self.dir is None
        if first:
            self.dir = make_tempdir(self.test, "ratepool-mosq-")
            if self.port is None:
                self.port = free_port()
        conf = self._write_conf()
        self._log = open(os.path.join(self.dir, "mosquitto.log"), "ab")
        self.proc = subprocess.Popen([self.binary, "-c", conf], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _track(self.proc)
        if first:
            add_cleanup(self.test, self.stop)
        try:
            wait_port(self.port, timeout, self.proc, "mosquitto")
        except Exception as e:
            self.stop()
            raise RuntimeError("%s\n%s" % (e, self.log())) from None
        return self

    def stop(self, kill=False):
        """Stops the broker (SIGTERM, or SIGKILL with kill=True: no chance
        to save persistence or send wills cleanly)."""
        rc = _stop_process(self.proc, kill=kill)
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def restart(self, kill=False, down_s=0.0, timeout=10.0):
        """Stops and starts the broker on the same port (clients see the
        connection drop and must reconnect)."""
        self.stop(kill=kill)
        if down_s:
            time.sleep(down_s)
        deadline = time.monotonic() + timeout
        while True:  # the old socket may linger briefly
            try:
                return self.start(timeout=max(1.0, deadline - time.monotonic()))
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        return _read(os.path.join(self.dir, "mosquitto.log")) if self.dir else ""

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------

SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer|"
                          r"==\d+== (ERROR SUMMARY: [1-9]|Invalid (read|write|free)|Conditional jump|"
                          r"Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|"
                          r"\S+ bytes in \S+ blocks are definitely lost)")


def ratepool_binary():
    b = os.environ.get("RATEPOOL_BIN")
    if b:
        p = Path(b)
        return str(p if p.is_absolute() else REPO / p)
    return str(REPO / "build" / "ratepool")


class Ratepool:
    """The daemon (build/ratepool, or $RATEPOOL_BIN) with an environment
    pointing at the fake upstream and the broker, a temporary store, and
    stdout+stderr captured in a log file.

    env: extra variables (a value of None removes one). clock: its
    RATEPOOL_TEST_CLOCK; default: the fake's current simulated instant and
    speed (see FakeUpstream.clock_spec), or the real clock."""

    def __init__(self, test=None, fake=None, broker=None, env=None, args=("run",), binary=None,
                 store=None, clock=None, series=None):
        self.test = test
        self.fake = fake
        self.broker = broker
        self.extra_env = dict(env or {})
        self.args = list(args)
        self.binary = os.path.abspath(binary) if binary else ratepool_binary()
        self.store = store
        self.clock = clock
        self.series = series
        self.proc = None
        self.dir = None
        self._log = None

    def environment(self):
        """The environment the daemon (and cli()) runs with."""
        if self.dir is None:
            self.dir = make_tempdir(self.test, "ratepool-daemon-")
        env = {k: v for k, v in os.environ.items() if not k.startswith("RATEPOOL_")}
        env["RATEPOOL_STORE"] = self.store or os.path.join(self.dir, "store")
        env["RATEPOOL_LOG_LEVEL"] = "debug"
        if self.broker is not None:
            env["RATEPOOL_MQTT_URL"] = self.broker.url
        if self.fake is not None:
            for name in ("OCTOPUS", "TIBBER", "WATTTIME", "AEMO", "ENERGYCHARTS"):
                env["RATEPOOL_%s_URL" % name] = self.fake.url
            env["RATEPOOL_OCTOPUS_API_KEY"] = OCTOPUS_API_KEY
            env["RATEPOOL_TIBBER_TOKEN"] = TIBBER_TOKEN
            env["RATEPOOL_WATTTIME_USERNAME"] = WATTTIME_USER
            env["RATEPOOL_WATTTIME_PASSWORD"] = WATTTIME_PASSWORD
        clock = self.clock
        if clock is None and self.fake is not None and self.fake.proc is not None:
            clock = self.fake.clock_spec()
        if clock:
            env["RATEPOOL_TEST_CLOCK"] = clock
        if self.series:
            env["RATEPOOL_SERIES"] = self.series if isinstance(self.series, str) else ",".join(self.series)
        for k, v in self.extra_env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def start(self, wait_log=None, timeout=10.0):
        """Starts the daemon; with wait_log (a regex), waits until its log
        matches it."""
        if not os.path.exists(self.binary):
            raise RuntimeError("ratepool binary not found: %s (run make, or set RATEPOOL_BIN)" % self.binary)
        env = self.environment()
        first = self.proc is None
        self._log = open(os.path.join(self.dir, "ratepool.log"), "ab")
        self.proc = subprocess.Popen(self.command() + self.args, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir)
        _track(self.proc)
        if first:
            add_cleanup(self.test, self.stop)
        if wait_log:
            self.wait_for_log(wait_log, timeout)
        return self

    def command(self):
        """The binary, wrapped in valgrind when RATEPOOL_VALGRIND is set."""
        return (VALGRIND_CMD if VALGRIND else []) + [self.binary]

    def stop(self, timeout=10.0):
        """SIGTERM, wait (SIGKILL after timeout); returns the exit status."""
        rc = _stop_process(self.proc, timeout=timeout * TIMEOUT_SCALE)
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def kill(self):
        """SIGKILL: a crash, as far as the store and the broker can tell."""
        rc = _stop_process(self.proc, kill=True)
        if self._log:
            self._log.close()
            self._log = None
        return rc

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    def log(self):
        return _read(os.path.join(self.dir, "ratepool.log")) if self.dir else ""

    def wait_for_log(self, pattern, timeout=10.0):
        """Waits until the log matches the regex; returns the match."""
        rx = re.compile(pattern)

        def check():
            m = rx.search(self.log())
            if m is None and self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError("ratepool exited (%s) before logging %r:\n%s"
                                   % (self.proc.returncode, pattern, self.log()[-4000:]))
            return m
        return wait_until(check, timeout, message="ratepool log /%s/" % pattern)

    def sanitizer_reports(self):
        """Lines of the log that are ASan/UBSan/LSan reports."""
        return [line for line in self.log().splitlines() if SANITIZER_RE.search(line)]

    def assert_clean(self):
        """Stops the daemon and raises AssertionError unless it exited 0
        without sanitizer reports."""
        rc = self.stop()
        bad = self.sanitizer_reports()
        if rc != 0 or bad:
            raise AssertionError("ratepool exited %s, sanitizer reports %s\n%s"
                                 % (rc, bad, self.log()[-4000:]))

    def cli(self, *args, timeout=30.0, env=None):
        """Runs `ratepool ARGS` once with the daemon's environment (e.g.
        cli("health"), cli("fetch", "octopus", "E-1R-AGILE-24-10-01-C"));
        returns subprocess.CompletedProcess with text stdout/stderr."""
        e = self.environment()
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return subprocess.run(self.command() + [str(a) for a in args], env=e, capture_output=True, text=True,
                              timeout=timeout * TIMEOUT_SCALE, cwd=self.dir, stdin=subprocess.DEVNULL)

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------
# MQTT through the mosquitto command-line clients.

def _mqtt_common(port, v5, client_id=None):
    cmd = ["-h", "127.0.0.1", "-p", str(port)]
    if v5:
        cmd += ["-V", "mqttv5"]
    if client_id:
        cmd += ["-i", client_id]
    return cmd


def _parse_hex_lines(out):
    msgs = []
    for line in out.splitlines():
        if "\t" not in line:
            continue
        topic, _, hexpayload = line.partition("\t")
        msgs.append((topic, bytes.fromhex(hexpayload.strip()).decode("utf-8", "replace")))
    return msgs


def mqtt_sub(port, topics, count=1, timeout=5, retained_only=False, v5=False, extra=()):
    """Subscribes, returns up to `count` messages as (topic, payload str)
    received within `timeout` seconds (fewer on timeout)."""
    if isinstance(topics, str):
        topics = [topics]
    cmd = ["mosquitto_sub"] + _mqtt_common(port, v5) + ["-C", str(count), "-W", str(int(max(1, timeout))),
                                                        "-F", "%t\t%x"]
    if retained_only:
        cmd.append("--retained-only")
    for t in topics:
        cmd += ["-t", t]
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)
    return _parse_hex_lines(r.stdout)


def mqtt_retained(port, topic, timeout=2):
    """The retained payload on one topic, or None."""
    msgs = mqtt_sub(port, topic, count=1, timeout=timeout, retained_only=True)
    return msgs[0][1] if msgs else None


def mqtt_pub(port, topic, message, retain=False, qos=0, v5=False, props=(), timeout=5, extra=()):
    """Publishes one message (message None: a zero-length payload, which
    with retain=True clears a retained topic). props: MQTT 5 properties as
    (command, name, value) triples, e.g. ("publish", "response-topic", "x")."""
    cmd = ["mosquitto_pub"] + _mqtt_common(port, v5 or bool(props)) + ["-t", topic, "-q", str(qos)]
    cmd += ["-n"] if message is None else ["-m", message]
    if retain:
        cmd.append("-r")
    for p in props:
        cmd += ["-D"] + list(p)
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError("mosquitto_pub failed (%d): %s" % (r.returncode, r.stderr))


def mqtt_rr(port, topic, response_topic, message, timeout=5, qos=1, props=(), extra=()):
    """MQTT 5 request/response with mosquitto_rr: publishes `message` to
    `topic` with Response Topic and Correlation Data set, returns the first
    response payload, or None on timeout."""
    cmd = ["mosquitto_rr"] + _mqtt_common(port, False) + ["-t", topic, "-e", response_topic, "-m", message,
                                                          "-q", str(qos), "-W", str(int(max(1, timeout))),
                                                          "-F", "%t\t%x"]
    for p in props:
        cmd += ["-D"] + list(p)
    cmd += list(extra)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5, stdin=subprocess.DEVNULL)
    msgs = _parse_hex_lines(r.stdout)
    return msgs[0][1] if msgs else None


class MqttWatcher:
    """A mosquitto_sub running in the background, collecting messages while
    the test does other things: start(), messages(), wait_for(), stop()."""

    def __init__(self, test, port, topics, v5=False, extra=()):
        self.test = test
        self.port = port
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.v5 = v5
        self.extra = list(extra)
        self.proc = None
        self._msgs = []
        self._lock = threading.Lock()
        self._thread = None

    def start(self, settle=0.2):
        cmd = ["mosquitto_sub"] + _mqtt_common(self.port, self.v5) + ["-F", "%t\t%x"]
        for t in self.topics:
            cmd += ["-t", t]
        cmd += self.extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     stdin=subprocess.DEVNULL, text=True)
        _track(self.proc)
        add_cleanup(self.test, self.stop)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        if settle:
            time.sleep(settle)  # let the subscription reach the broker
        return self

    def _reader(self):
        for line in self.proc.stdout:
            for m in _parse_hex_lines(line):
                with self._lock:
                    self._msgs.append(m)

    def messages(self, topic=None):
        with self._lock:
            return [m for m in self._msgs if topic is None or m[0] == topic]

    def wait_for(self, predicate=None, count=1, timeout=10.0):
        """Waits until `count` messages satisfy predicate((topic, payload));
        returns them."""
        def check():
            ms = [m for m in self.messages() if predicate is None or predicate(m)]
            return ms if len(ms) >= count else None
        return wait_until(check, timeout, message="%d MQTT message(s) on %s" % (count, self.topics))

    def stop(self):
        rc = _stop_process(self.proc)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.proc is not None and self.proc.stdout and not self.proc.stdout.closed:
            self.proc.stdout.close()
        return rc

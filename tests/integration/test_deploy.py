"""deploy/: what can be tested of the container, compose, broker and
systemd files on a machine without a container engine.

- Dockerfile: the build stage's COPY and RUN steps run here, into a
  temporary directory (deploy/docker-build.sh does the building); the
  runtime stage's packages cover the staged binary's libraries; it runs as
  a non-root user with the store on a volume; its HEALTHCHECK command,
  run against real stores, is 0 for healthy and 1 for degraded, not
  started, or a stale record (`ratepool health` itself: 0/1/2).
- docker-compose.yml: parses (python3-yaml), its files, secrets and
  volumes exist and agree, its ratepool environment passes check-config.
- ratepool.env.example: names every setting, and passes check-config.
- deploy/mosquitto/: the compose broker config with the example ACL and a
  password file made by passwd-init.sh, in a real mosquitto beside a real
  ratepool: households read prices and request them, cannot publish
  prices or status, cannot read or request another household's series.
- backups: `mdb_copy -c` of a running store serves the same prices.
- ratepool.service: `systemd-analyze verify` and `security --offline`.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (MOSQUITTO_BIN, REPO, FakeUpstream, Mosquitto, Ratepool, add_cleanup,  # noqa: E402
                     free_port, make_tempdir, mqtt_rr, mqtt_sub, ratepool_binary, wait_port, wait_until, _stop_process,
                     _track)

DEPLOY = REPO / "deploy"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "ratepool.env.example"
UNIT = DEPLOY / "ratepool.service"
MOSQ_DIR = DEPLOY / "mosquitto"

SECRETS = ("mqtt_password", "octopus_api_key", "tibber_token", "watttime_password")
# Variables a nested make would take from the test's own make run.
MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "BUILD", "SANITIZE", "WERROR", "CFLAGS",
            "CPPFLAGS", "LDFLAGS", "LDLIBS", "LIB_SRC")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RATEPOOL_") and k not in MAKE_ENV}
    env.update(extra or {})
    return env


def settings():
    """Every setting, from `ratepool check-config` with no configuration."""
    r = subprocess.run([ratepool_binary(), "check-config"], env=clean_env(), capture_output=True, text=True,
                       timeout=30)
    if r.returncode != 0:
        raise AssertionError("check-config failed: %s" % r.stderr)
    return list(json.loads(r.stdout))


def check_config(env):
    return subprocess.run([ratepool_binary(), "check-config"], env=clean_env(env), capture_output=True, text=True,
                          timeout=30)


# --- Dockerfile ------------------------------------------------------------------

def dockerfile_instructions(text):
    """[(KEYWORD, args)] with continuation lines joined and comments dropped,
    as Docker reads them."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("#") or (not s and not cur):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        if cur.strip():
            word, _, rest = cur.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        cur = ""
    return out


def dockerfile_stages(instr):
    """(global ARG defaults, [stage instructions], stage names)."""
    args, stages, names = {}, [], []
    for word, rest in instr:
        if word == "FROM":
            stages.append([(word, rest)])
            m = re.search(r"\s+AS\s+(\S+)$", rest, re.I)
            names.append(m.group(1) if m else None)
        elif not stages:
            if word == "ARG":
                k, _, v = rest.partition("=")
                args[k] = v
        else:
            stages[-1].append((word, rest))
    return args, stages, names


def expand(text, variables):
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), text)


def parse_env_instruction(rest):
    out = {}
    for tok in shlex.split(rest):
        k, _, v = tok.partition("=")
        out[k] = v
    return out


def json_or_shell(text):
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return ["/bin/sh", "-c", text]


class Dockerfile(unittest.TestCase):
    """The build stage runs here; the runtime stage is checked."""

    @classmethod
    def setUpClass(cls):
        cls.instr = dockerfile_instructions(DOCKERFILE.read_text())
        cls.args, cls.stages, cls.names = dockerfile_stages(cls.instr)
        cls.build = cls.stages[cls.names.index("build")]
        cls.runtime = cls.stages[-1]
        cls.root = make_tempdir(cls, "ratepool-docker-")
        cls.build_log = cls.run_build_stage()

    @classmethod
    def run_build_stage(cls):
        """Runs the build stage's WORKDIR, ENV, COPY and RUN steps, with
        container paths under cls.root and the repository as the context."""
        cwd = cls.root
        env = clean_env()
        log = []
        for word, rest in cls.build[1:]:
            if word == "WORKDIR":
                cwd = os.path.join(cls.root, rest.lstrip("/")) if rest.startswith("/") else os.path.join(cwd, rest)
                os.makedirs(cwd, exist_ok=True)
            elif word == "ENV":
                env.update(parse_env_instruction(rest))
            elif word == "COPY":
                parts = [p for p in shlex.split(rest) if not p.startswith("--")]
                srcs, dst = parts[:-1], parts[-1]
                dst_path = os.path.join(cls.root, dst.lstrip("/")) if dst.startswith("/") else os.path.join(cwd, dst)
                for src in srcs:
                    s = REPO / src
                    if s.is_dir():
                        shutil.copytree(s, dst_path, dirs_exist_ok=True)
                    elif dst.endswith("/") or len(srcs) > 1:
                        os.makedirs(dst_path, exist_ok=True)
                        shutil.copy2(s, dst_path)
                    else:
                        os.makedirs(os.path.dirname(dst_path), exist_ok=True)
                        shutil.copy2(s, dst_path)
            elif word == "RUN":
                r = subprocess.run(json_or_shell(rest), cwd=cwd, env=env, capture_output=True, text=True,
                                   timeout=600, stdin=subprocess.DEVNULL)
                log.append("$ %s\n%s%s" % (rest, r.stdout, r.stderr))
                if r.returncode != 0:
                    raise AssertionError("build stage step failed (%d): RUN %s\n%s"
                                         % (r.returncode, rest, "\n".join(log)[-6000:]))
            elif word in ("ARG", "LABEL", "SHELL", "USER"):
                if word in ("SHELL", "USER"):
                    raise AssertionError("the build stage runner does not handle %s" % word)
            else:
                raise AssertionError("unexpected instruction in the build stage: %s %s" % (word, rest))
        cls.build_cwd = cwd
        return "\n".join(log)

    def runtime_instr(self, word):
        return [rest for w, rest in self.runtime if w == word]

    def staged_root(self):
        """Where the runtime stage's COPY --from=build takes its files from."""
        for rest in self.runtime_instr("COPY"):
            if "--from=build" in rest:
                parts = [p for p in shlex.split(rest) if not p.startswith("--")]
                self.assertEqual(parts[-1], "/", "the staged tree is copied to /")
                return os.path.join(self.root, parts[0].lstrip("/"))
        self.fail("the runtime stage copies nothing from the build stage")

    def staged_binary(self):
        return os.path.join(self.staged_root(), "usr", "local", "bin", "ratepool")

    def test_both_stages_start_from_debian_bookworm_slim(self):
        self.assertEqual(self.names[0], "build")
        for stage in self.stages:
            self.assertEqual(expand(stage[0][1].split()[0], self.args), "debian:bookworm-slim")

    def test_build_stage_produces_a_stripped_working_binary(self):
        binary = self.staged_binary()
        self.assertTrue(os.access(binary, os.X_OK), self.build_log[-3000:])
        version = (REPO / "VERSION").read_text().strip()
        r = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "ratepool %s" % version)
        sections = subprocess.run(["readelf", "-S", binary], capture_output=True, text=True).stdout
        self.assertNotIn(".symtab", sections, "the image's binary is stripped")
        # Only the binary: nothing else of the build tree leaks into the image.
        files = [os.path.relpath(os.path.join(d, f), self.staged_root())
                 for d, _, fs in os.walk(self.staged_root()) for f in fs]
        self.assertEqual(files, ["usr/local/bin/ratepool"])

    def test_build_stage_copies_no_host_build_output(self):
        for rest in [r for w, r in self.build if w == "COPY"]:
            for src in [p for p in shlex.split(rest) if not p.startswith("--")][:-1]:
                self.assertFalse(src in (".", "./") or src.startswith(("build", "var", "tests")), src)

    def test_runtime_packages_provide_every_library_the_binary_links(self):
        installs = " ".join(r for r in self.runtime_instr("RUN") if "apt-get install" in r)
        pkgs = set(re.findall(r"(?<![\w-])(lib[\w.+-]+|ca-certificates)(?![\w.+-])", installs))
        self.assertIn("ca-certificates", pkgs, "HTTPS upstreams need the CA bundle")
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]",
                            subprocess.run(["readelf", "-d", self.staged_binary()], capture_output=True,
                                           text=True).stdout)
        self.assertTrue(needed)
        cache = subprocess.run(["/sbin/ldconfig", "-p"], capture_output=True, text=True).stdout
        for soname in needed:
            m = re.search(r"^\s*%s \(.*\) => (\S+)$" % re.escape(soname), cache, re.M)
            self.assertIsNotNone(m, soname)
            path = m.group(1)
            owner = None
            for candidate in (path, os.path.realpath(path), re.sub(r"^/usr", "", path), "/usr" + path):
                r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if r.returncode == 0:
                    owner = r.stdout.split(":")[0]
                    break
            self.assertIsNotNone(owner, "no Debian package owns %s" % path)
            if owner == "libc6":  # in every Debian image
                continue
            self.assertIn(owner, pkgs, "%s (%s) is not installed by the runtime stage" % (soname, owner))

    def test_runtime_runs_as_an_unprivileged_user_with_the_store_on_a_volume(self):
        users = self.runtime_instr("USER")
        self.assertEqual(len(users), 1)
        user = users[0].split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        setup = " ".join(self.runtime_instr("RUN"))
        m = re.search(r"useradd[^&]*--uid (\d+)[^&]* %s(\s|$)" % re.escape(user), setup)
        self.assertIsNotNone(m, "the user is created with a fixed uid")
        self.assertNotEqual(m.group(1), "0")
        volumes = json.loads(self.runtime_instr("VOLUME")[0])
        env = {}
        for rest in self.runtime_instr("ENV"):
            env.update(parse_env_instruction(rest))
        store = env["RATEPOOL_STORE"]
        self.assertTrue(any(store.startswith(v.rstrip("/") + "/") for v in volumes),
                        "RATEPOOL_STORE=%s is not on a volume %s" % (store, volumes))
        self.assertRegex(setup, r"install -d -o %s -g \S+ -m 0700 %s" % (user, re.escape(volumes[0])))
        self.assertEqual(json.loads(self.runtime_instr("ENTRYPOINT")[0]), ["ratepool"])

    def healthcheck(self):
        hc = self.runtime_instr("HEALTHCHECK")
        self.assertEqual(len(hc), 1)
        opts, _, cmd = hc[0].partition("CMD ")
        self.assertIn("--interval=", opts)
        self.assertIn("ratepool health", cmd)
        return json_or_shell(cmd)

    def run_healthcheck(self, daemon, env=None):
        e = daemon.environment()
        e["PATH"] = os.path.dirname(self.staged_binary()) + os.pathsep + e.get("PATH", "")
        e.update(env or {})
        return subprocess.run(self.healthcheck(), env=e, capture_output=True, text=True, timeout=30,
                              cwd=daemon.dir)

    def test_healthcheck_is_0_when_healthy_and_1_when_degraded_or_unknown(self):
        fake = FakeUpstream(self).start()
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker, series="energycharts/DE-LU")

        # Not started yet: no store. `ratepool health` says "cannot tell" (2);
        # the healthcheck maps it to 1, since Docker reserves 2.
        r = daemon.cli("health")
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertEqual(self.run_healthcheck(daemon).returncode, 1)

        daemon.start(wait_log="started")
        healthy = wait_until(lambda: self.run_healthcheck(daemon).returncode == 0 and self.run_healthcheck(daemon),
                             20, 0.2, "a healthy healthcheck")
        self.assertEqual(json.loads(healthy.stdout)["status"], "healthy")
        self.assertEqual(daemon.cli("health").returncode, 0)

        # A record older than 3 health intervals: the daemon is hung or gone.
        later = daemon.cli("health", env={"RATEPOOL_TEST_CLOCK": "2099-01-01T00:00:00Z"})
        self.assertEqual(later.returncode, 2, later.stderr)
        self.assertIn("old", later.stderr)
        self.assertEqual(self.run_healthcheck(daemon, {"RATEPOOL_TEST_CLOCK": "2099-01-01T00:00:00Z"}).returncode, 1)
        daemon.assert_clean()

        # Degraded: the broker cannot be reached.
        lonely = Ratepool(self, fake=fake, env={"RATEPOOL_MQTT_URL": "tcp://127.0.0.1:%d" % free_port()})
        lonely.start(wait_log="started")
        degraded = wait_until(lambda: (lambda r: r.returncode != 2 and r)(lonely.cli("health")), 10, 0.1,
                              "a health record")
        self.assertEqual(degraded.returncode, 1, degraded.stderr)
        self.assertIn("MQTT broker unreachable", json.loads(degraded.stdout)["issues"])
        self.assertEqual(self.run_healthcheck(lonely).returncode, 1)
        lonely.assert_clean()


# --- docker-compose.yml -----------------------------------------------------------

def load_compose():
    try:
        import yaml
    except ImportError:
        raise unittest.SkipTest("python3-yaml is not installed (deploy/install-deps.sh --test installs it)")
    return yaml.safe_load(COMPOSE.read_text())


def compose_mounts(service):
    """{container path: host path (absolute) or volume name}."""
    out = {}
    for v in service.get("volumes", []):
        parts = v.split(":")
        src, dst = parts[0], parts[1]
        out[dst] = str((DEPLOY / src).resolve()) if src.startswith(".") else src
    return out


class Compose(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.c = load_compose()
        cls.svc = cls.c["services"]

    def test_ratepool_beside_mosquitto_and_node_red_as_a_profile(self):
        self.assertEqual(set(self.svc), {"ratepool", "mosquitto", "mosquitto-init", "node-red"})
        self.assertEqual(self.svc["node-red"]["profiles"], ["node-red"])
        self.assertNotIn("profiles", self.svc["ratepool"])
        self.assertNotIn("profiles", self.svc["mosquitto"])
        self.assertTrue(self.svc["mosquitto"]["image"].startswith("eclipse-mosquitto:2"))
        build = self.svc["ratepool"]["build"]
        self.assertTrue((DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE)
        self.assertEqual(self.svc["mosquitto"]["depends_on"]["mosquitto-init"]["condition"],
                         "service_completed_successfully")
        # Node-RED: the same major version the Node-RED test runs.
        self.assertRegex(self.svc["node-red"]["image"], r"^nodered/node-red:4(\.|$)")

    def test_every_bind_mounted_file_exists_and_every_volume_is_declared(self):
        for name, s in self.svc.items():
            for dst, src in compose_mounts(s).items():
                if src.startswith("/"):
                    self.assertTrue(os.path.exists(src), "%s mounts missing %s" % (name, src))
                else:
                    self.assertIn(src, self.c["volumes"], "%s uses an undeclared volume %s" % (name, src))

    def test_secrets_are_files_read_through_the_file_variables(self):
        env = self.svc["ratepool"]["environment"]
        declared = self.c["secrets"]
        for s in self.svc["ratepool"]["secrets"]:
            self.assertIn(s, declared)
            self.assertEqual(env["RATEPOOL_%s_FILE" % s.upper()], "/run/secrets/%s" % s)
        for k, v in env.items():
            if k.endswith("_FILE") and k != "RATEPOOL_LOG_FILE":
                self.assertIn(v.rsplit("/", 1)[1], self.svc["ratepool"]["secrets"])
        # No secret value in the compose file; commented lines show the others.
        text = COMPOSE.read_text()
        for s in SECRETS:
            self.assertNotRegex(text, r"RATEPOOL_%s:" % s.upper())
            self.assertIn("RATEPOOL_%s_FILE" % s.upper(), text)
        self.assertEqual(self.svc["mosquitto-init"]["secrets"], ["mqtt_password"])

    def test_ratepool_environment_passes_check_config(self):
        env = dict(self.svc["ratepool"]["environment"])
        tmp = make_tempdir(self)
        for k, v in list(env.items()):
            if v.startswith("/run/secrets/"):
                path = os.path.join(tmp, v.rsplit("/", 1)[1])
                with open(path, "w") as f:
                    f.write("secret-value\n")
                env[k] = path
        r = check_config(env)
        self.assertEqual(r.returncode, 0, r.stderr)
        cfg = json.loads(r.stdout)
        self.assertEqual(cfg["mqtt_password"], "***")
        self.assertEqual(cfg["mqtt_url"], "tcp://mosquitto:1883")
        # The store is on the service's volume.
        mounts = compose_mounts(self.svc["ratepool"])
        self.assertTrue(any(cfg["store"].startswith(dst.rstrip("/") + "/") and src in self.c["volumes"]
                            for dst, src in mounts.items()))

    def test_ratepool_container_is_locked_down(self):
        r = self.svc["ratepool"]
        self.assertTrue(r["read_only"])
        self.assertEqual(r["cap_drop"], ["ALL"])
        self.assertIn("no-new-privileges:true", r["security_opt"])
        self.assertEqual(r["restart"], "unless-stopped")
        grace = int(r["stop_grace_period"].rstrip("s"))
        self.assertGreater(grace * 1000, 5000, "longer than RATEPOOL_SHUTDOWN_GRACE_MS")
        self.assertEqual(r["env_file"], [{"path": "ratepool.env", "required": False}])

    def test_mosquitto_config_mounts_match_its_paths(self):
        mounts = compose_mounts(self.svc["mosquitto"])
        conf = Path(mounts["/mosquitto/config/mosquitto.conf"]).read_text()
        self.assertRegex(conf, r"(?m)^set_tcp_nodelay true$")
        self.assertRegex(conf, r"(?m)^persistence true$")
        self.assertRegex(conf, r"(?m)^allow_anonymous false$")
        for key in ("password_file", "acl_file", "persistence_location"):
            path = re.search(r"(?m)^%s (\S+)$" % key, conf).group(1)
            self.assertTrue(any(path.rstrip("/") == d or path.startswith(d.rstrip("/") + "/") for d in mounts),
                            "%s %s is not on a mount" % (key, path))
        init = compose_mounts(self.svc["mosquitto-init"])
        self.assertIn("/mosquitto/auth", init)
        self.assertEqual(init["/mosquitto/auth"], mounts["/mosquitto/auth"])
        script = self.svc["mosquitto-init"]["command"][-1]
        self.assertTrue(os.path.exists(init[script]))


# --- ratepool.env.example -------------------------------------------------------------

class EnvExample(unittest.TestCase):

    def test_names_every_setting(self):
        text = ENV_EXAMPLE.read_text()
        for key in settings():
            var = "RATEPOOL_" + key.upper()
            if key in SECRETS:
                self.assertRegex(text, r"(?m)^#%s_FILE=/run/secrets/%s$" % (var, key),
                                 "secret %s shown as a _FILE" % key)
            else:
                self.assertRegex(text, r"(?m)^#?%s=" % var, "%s missing" % var)

    def test_no_secret_is_set_and_the_active_lines_pass_check_config(self):
        env = {}
        for line in ENV_EXAMPLE.read_text().splitlines():
            if line and not line.startswith("#"):
                k, sep, v = line.partition("=")
                self.assertTrue(sep and k.startswith("RATEPOOL_") and v == v.strip() and '"' not in v, line)
                self.assertNotIn(k.lower().replace("ratepool_", ""), SECRETS)
                env[k] = v
        self.assertTrue(env)
        r = check_config(env)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_every_commented_setting_passes_check_config_when_uncommented(self):
        env, tmp = {}, make_tempdir(self)
        for line in ENV_EXAMPLE.read_text().splitlines():
            m = re.match(r"^#?(RATEPOOL_[A-Z0-9_]+)=(.*)$", line)
            if not m:
                continue
            k, v = m.groups()
            if k.endswith("_FILE") and k != "RATEPOOL_LOG_FILE" or k == "RATEPOOL_MQTT_CA_FILE":
                v = os.path.join(tmp, k.lower())
                with open(v, "w") as f:
                    f.write("value-of-%s\n" % k.lower())
            if k == "RATEPOOL_LOG_FILE":
                v = os.path.join(tmp, "ratepool.log")
            if k == "RATEPOOL_MQTT_USERNAME" and not v:
                v = "ratepool"
            env[k] = v
        r = check_config(env)
        self.assertEqual(r.returncode, 0, r.stderr)


# --- mosquitto: compose config, ACL, password file -----------------------------------------

def run_passwd_init(passwd, secret, user="ratepool"):
    return subprocess.run(["sh", str(MOSQ_DIR / "passwd-init.sh")],
                          env=clean_env({"PASSWD_FILE": passwd, "SECRET_FILE": secret, "MQTT_USER": user}),
                          capture_output=True, text=True, timeout=30)


def add_user(passwd, user, password):
    r = subprocess.run(["mosquitto_passwd", passwd, user], input="%s\n%s\n" % (password, password),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


class BrokerWithAcl:
    """deploy/mosquitto/mosquitto.conf, its container paths moved into a
    temporary directory, on a free loopback port."""

    def __init__(self, test, acl):
        self.test = test
        self.dir = make_tempdir(test, "ratepool-acl-")
        self.passwd = os.path.join(self.dir, "auth", "passwd")
        self.port = free_port()
        conf = (MOSQ_DIR / "mosquitto.conf").read_text()
        conf = conf.replace("\nlistener 1883\n", "\nlistener %d 127.0.0.1\n" % self.port)
        conf = conf.replace("/mosquitto/auth/", os.path.join(self.dir, "auth") + "/")
        conf = conf.replace("/mosquitto/config/acl", acl)
        conf = conf.replace("/mosquitto/data/", os.path.join(self.dir, "data") + "/")
        assert not re.search(r"(?m)^\w+ /mosquitto/", conf), conf
        assert "listener %d" % self.port in conf
        if os.geteuid() == 0:
            conf += "\nuser root\n"
        os.makedirs(os.path.join(self.dir, "data"))
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None

    def start(self):
        self.log_path = os.path.join(self.dir, "mosquitto.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([MOSQUITTO_BIN, "-c", self.conf], stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _track(self.proc)
        add_cleanup(self.test, self.stop)
        wait_port(self.port, 10, self.proc, "mosquitto")
        return self

    def stop(self):
        _stop_process(self.proc)
        if self._log:
            self._log.close()
            self._log = None

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.port


def login(user):
    return ["-u", user, "-P", "pw-" + user]


def pub(port, user, topic, message, retain=False):
    """MQTT 5 QoS 1 publish as user; True when the broker accepted it (a
    refusal comes back as PUBACK reason 135, "Not authorized")."""
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-V", "mqttv5", "-q", "1", "-t", topic,
           "-m", message] + login(user) + (["-r"] if retain else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    return "Not authorized" not in r.stderr


def sub(port, user, topic, timeout=2, count=1):
    return mqtt_sub(port, topic, count=count, timeout=timeout, extra=login(user))


def rr(port, user, topic, response_topic, message="", timeout=10):
    cmd = ["mosquitto_rr", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-e", response_topic, "-m", message,
           "-q", "1", "-W", str(timeout)] + login(user)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 5)
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None


class MosquittoAcl(unittest.TestCase):
    """The example ACL and password file in a real mosquitto, beside a real
    ratepool that logs in with the password passwd-init.sh wrote."""

    @classmethod
    def setUpClass(cls):
        if not MOSQUITTO_BIN or not shutil.which("mosquitto_passwd"):
            raise unittest.SkipTest("needs mosquitto and mosquitto_passwd")
        try:
            acl = compose_mounts(load_compose()["services"]["mosquitto"])["/mosquitto/config/acl"]
        except unittest.SkipTest:
            acl = str(MOSQ_DIR / "acl.example")
        cls.broker = BrokerWithAcl(cls, acl)
        secret = os.path.join(cls.broker.dir, "mqtt_password")
        with open(secret, "w") as f:
            f.write("Rz2q+example/secret==\n")  # as `base64 > file` leaves it: a trailing newline
        r = run_passwd_init(cls.broker.passwd, secret)
        assert r.returncode == 0, r.stderr
        for user in ("alice", "bob", "nodered"):
            add_user(cls.broker.passwd, user, "pw-" + user)
        cls.broker.start()
        cls.fake = FakeUpstream(cls).start()
        # octopus/alice is listed so that alice's account has a retained
        # topic of its own (docs/topics.md, Octopus accounts).
        cls.daemon = Ratepool(cls, fake=cls.fake, broker=cls.broker, series="energycharts/DE-LU,octopus/alice", env={
            "RATEPOOL_MQTT_USERNAME": "ratepool",
            "RATEPOOL_MQTT_PASSWORD_FILE": secret,
            "RATEPOOL_OCTOPUS_ACCOUNTS": "alice:A-FAKE0001",
        }).start(wait_log="started")
        cls.port = cls.broker.port
        got = wait_until(lambda: sub(cls.port, "alice", "ratepool/prices/energycharts/DE-LU"), 20, 0.2,
                         "prices readable by alice")
        cls.prices = got[0][1]

    @classmethod
    def tearDownClass(cls):
        cls.daemon.assert_clean()

    def test_ratepool_logs_in_with_the_password_passwd_init_wrote(self):
        self.assertEqual(sub(self.port, "bob", "ratepool/status"), [("ratepool/status", "online")])
        self.assertIn("'ratepool'", Path(self.broker.log_path).read_text())
        self.assertNotIn("mqtt_subscribe_refused", self.daemon.log())
        self.assertNotIn("mqtt_connect_failed", self.daemon.log())
        lines = Path(self.broker.passwd).read_text().splitlines()
        self.assertEqual(sum(1 for x in lines if x.startswith("ratepool:")), 1)
        self.assertEqual(os.stat(self.broker.passwd).st_mode & 0o777, 0o600)

    def test_passwd_init_updates_in_place_and_refuses_an_empty_secret(self):
        tmp = make_tempdir(self)
        passwd, secret = os.path.join(tmp, "auth", "passwd"), os.path.join(tmp, "s")
        with open(secret, "w") as f:
            f.write("one\r\n")
        self.assertEqual(run_passwd_init(passwd, secret).returncode, 0)
        first = Path(passwd).read_text()
        with open(secret, "w") as f:
            f.write("two\n")
        self.assertEqual(run_passwd_init(passwd, secret).returncode, 0)
        second = Path(passwd).read_text()
        self.assertEqual(len(second.splitlines()), 1)
        self.assertNotEqual(first, second)
        with open(secret, "w") as f:
            f.write("")
        r = run_passwd_init(passwd, secret)
        self.assertEqual(r.returncode, 1)
        self.assertIn("missing or empty", r.stderr)

    def test_household_reads_public_prices_status_and_health(self):
        self.assertEqual(json.loads(self.prices)["series"], "DE-LU")
        self.assertTrue(sub(self.port, "bob", "ratepool/health"))

    def test_household_requests_a_public_series_and_gets_the_reply_under_its_name(self):
        reply = rr(self.port, "alice", "ratepool/request/energycharts/DE-LU", "replies/alice/1")
        self.assertIsNotNone(reply)
        self.assertEqual(reply["series"], "DE-LU")
        self.assertNotEqual(reply["status"], "error", reply)
        self.assertTrue(reply["rates"])

    def test_household_cannot_publish_prices_or_status(self):
        self.assertFalse(pub(self.port, "alice", "ratepool/prices/energycharts/DE-LU", '{"rates":[]}', retain=True))
        self.assertFalse(pub(self.port, "alice", "ratepool/prices/energycharts/DE-LU/current", "0", retain=True))
        self.assertFalse(pub(self.port, "alice", "ratepool/status", "offline", retain=True))
        self.assertFalse(pub(self.port, "alice", "ratepool/health", "{}", retain=True))
        self.assertFalse(pub(self.port, "nodered", "homeassistant/sensor/x/config", "{}", retain=True))
        # What everyone reads is still ratepool's.
        self.assertEqual(sub(self.port, "bob", "ratepool/status"), [("ratepool/status", "online")])
        self.assertEqual(sub(self.port, "bob", "ratepool/prices/energycharts/DE-LU")[0][1], self.prices)

    def test_household_cannot_read_requests_or_another_households_replies(self):
        self.assertTrue(pub(self.port, "bob", "ratepool/request/energycharts/DE-LU", ""))
        self.assertFalse(pub(self.port, "alice", "replies/bob/x", "spoof"))
        self.assertEqual(sub(self.port, "alice", "replies/bob/#", timeout=1), [])

    def test_own_octopus_account_is_readable_only_by_its_owner(self):
        reply = rr(self.port, "alice", "ratepool/request/octopus/alice", "replies/alice/acct", timeout=15)
        self.assertIsNotNone(reply)
        self.assertEqual(reply["series"], "E-1R-AGILE-24-10-01-C", "answered from the tariff the account is on")
        self.assertNotEqual(reply["status"], "error", reply)
        self.assertTrue(reply["rates"])
        mine = wait_until(lambda: sub(self.port, "alice", "ratepool/prices/octopus/alice"), 15, 0.2,
                          "alice's account prices")
        self.assertEqual(json.loads(mine[0][1])["series"], "alice")
        # bob may neither read it nor ask ratepool for it.
        self.assertEqual(sub(self.port, "bob", "ratepool/prices/octopus/alice", timeout=1), [])
        self.assertEqual(sub(self.port, "bob", "ratepool/prices/octopus/alice/current", timeout=1), [])
        self.assertFalse(pub(self.port, "bob", "ratepool/request/octopus/alice", ""))
        # Public tariffs are listed one by one and readable by everyone.
        self.assertTrue(pub(self.port, "bob", "ratepool/request/octopus/E-1R-AGILE-24-10-01-C", ""))

    def test_node_red_user_publishes_its_results(self):
        self.assertTrue(pub(self.port, "nodered", "nodered/cheapest-window/energycharts/DE-LU", "{}"))
        self.assertFalse(pub(self.port, "alice", "nodered/cheapest-window/energycharts/DE-LU", "{}"))


# --- backups: mdb_copy while running ----------------------------------------------------

class StoreBackup(unittest.TestCase):
    """docs/operations.md: `mdb_copy -c` copies the store while ratepool
    runs, and the copy serves prices without the upstream."""

    def test_mdb_copy_of_a_running_store_serves_prices_without_the_upstream(self):
        if not shutil.which("mdb_copy"):
            self.skipTest("mdb_copy is not installed (Debian package lmdb-utils)")
        fake = FakeUpstream(self).start()
        broker = Mosquitto(self).start()
        daemon = Ratepool(self, fake=fake, broker=broker, series="energycharts/DE-LU").start(wait_log="started")
        first = wait_until(lambda: mqtt_rr(broker.port, "ratepool/request/energycharts/DE-LU", "it/backup/1", ""),
                           20, 0.2, "a reply")
        first = json.loads(first)
        self.assertTrue(first["rates"])

        backup = os.path.join(make_tempdir(self), "store")
        os.mkdir(backup)
        r = subprocess.run(["mdb_copy", "-c", daemon.environment()["RATEPOOL_STORE"], backup],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(daemon.running())

        dead = "http://127.0.0.1:%d" % free_port()
        restored = Ratepool(self, broker=broker, store=backup, env={
            "RATEPOOL_TOPIC_PREFIX": "restored",
            "RATEPOOL_OCTOPUS_URL": dead, "RATEPOOL_TIBBER_URL": dead, "RATEPOOL_WATTTIME_URL": dead,
            "RATEPOOL_AEMO_URL": dead, "RATEPOOL_ENERGYCHARTS_URL": dead,
        }).start(wait_log="started")
        # "online" comes after its request subscription is in place.
        wait_until(lambda: mqtt_sub(broker.port, "restored/status", count=1, timeout=1) == [("restored/status",
                                                                                              "online")],
                   15, 0.1, "the restored ratepool online")
        answer = mqtt_rr(broker.port, "restored/request/energycharts/DE-LU", "it/backup/2",
                         json.dumps({"from": first["from"], "to": first["to"]}), timeout=15)
        self.assertIsNotNone(answer, restored.log()[-3000:])
        second = json.loads(answer)
        self.assertEqual(second["rates"], first["rates"])
        restored.assert_clean()
        daemon.assert_clean()


# --- ratepool.service -------------------------------------------------------------------

class SystemdUnit(unittest.TestCase):

    def unit(self):
        """The unit with ExecStart pointing at the binary under test (verify
        checks that it exists)."""
        d = make_tempdir(self)
        path = os.path.join(d, "ratepool.service")
        text = UNIT.read_text().replace("/usr/local/bin/ratepool", os.path.abspath(ratepool_binary()))
        with open(path, "w") as f:
            f.write(text)
        return path

    def directives(self):
        out = {}
        for line in UNIT.read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[")):
                k, _, v = line.partition("=")
                out.setdefault(k, []).append(v)
        return out

    def test_hardening_and_restart_directives(self):
        d = self.directives()
        want = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
                "StateDirectory": "ratepool", "Restart": "on-failure", "DynamicUser": "yes", "User": "ratepool",
                "CapabilityBoundingSet": "", "UMask": "0077"}
        for k, v in want.items():
            self.assertEqual(d.get(k), [v], k)
        self.assertIn("RATEPOOL_STORE=/var/lib/ratepool/store", d["Environment"])
        self.assertEqual(d["EnvironmentFile"], ["-/etc/ratepool/ratepool.env"])
        self.assertEqual(d["ExecStart"], ["/usr/local/bin/ratepool run"])

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        r = subprocess.run(["systemd-analyze", "verify", self.unit()], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(r.stderr.strip(), "")

    def test_systemd_analyze_security_exposure_is_low(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed")
        r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", self.unit()],
                           capture_output=True, text=True, timeout=60)
        if "--offline" in r.stderr and r.returncode != 0:
            self.skipTest("systemd-analyze security --offline needs systemd 250 or newer")
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
        self.assertIsNotNone(m, r.stdout[-2000:] + r.stderr)
        self.assertLessEqual(float(m.group(1)), 2.0, r.stdout)


if __name__ == "__main__":
    unittest.main()

"""Runs each tests/integration/test_*.py file in its own process, JOBS at a
time (RATEPOOL_IT_JOBS, default 2), prints each file's unittest output
whole when it ends, and closes with

    integration: N passed, N failed

(skipped tests are neither). Most of an integration test is waiting on
processes and accelerated clocks, so two files at a time take about half
the wall time on a 2-core machine. RATEPOOL_IT_FILES (space separated
file names) runs only those. Exit status 0 when nothing failed."""

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run(path):
    start = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "unittest", "-v", path.stem], cwd=HERE,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    return path.name, p.returncode, p.stdout, time.monotonic() - start


def counts(out):
    ran = re.findall(r"^Ran (\d+) tests? in", out, re.M)
    ran = int(ran[-1]) if ran else 0
    summary = re.findall(r"^(OK|FAILED)(?: \((.*)\))?$", out, re.M)
    bad = skipped = 0
    if summary:
        for k, v in re.findall(r"(\w+)=(\d+)", summary[-1][1] or ""):
            if k in ("failures", "errors", "unexpected_successes"):
                bad += int(v)
            elif k == "skipped":
                skipped += int(v)
    return ran, bad, skipped


def main():
    jobs = max(1, int(os.environ.get("RATEPOOL_IT_JOBS", "2")))
    only = os.environ.get("RATEPOOL_IT_FILES", "").split()
    files = sorted(HERE.glob("test_*.py"))
    if only:
        files = [f for f in files if f.name in only]
    passed = failed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, rc, out, secs in pool.map(run, files):
            print("== %s (%.0f s)" % (name, secs))
            print(out, end="" if out.endswith("\n") else "\n")
            ran, bad, skipped = counts(out)
            if rc != 0 and bad == 0:
                bad = 1  # it died without a unittest summary
                print("integration: %s exited %d without a failure count" % (name, rc))
            passed += ran - bad - skipped
            failed += bad
            sys.stdout.flush()
    print("integration: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

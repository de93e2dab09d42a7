"""Run one command and report its wall time, CPU time and peak RSS as JSON on a file descriptor.

    python benchmarks/measure.py FD COMMAND...

The benchmark starts the `tenancy` command through this small process rather than directly: a process's
peak RSS (`ru_maxrss`) carries over the high-water mark of the process that forked it, so a command
started by the benchmark (which holds hundreds of MiB after a 100,000-resource baseline) would report at
least the benchmark's own peak. Started from here, it reports its own, measured from the fork to the exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> None:
    report_fd = int(sys.argv[1])
    start = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:])
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    report = {
        "seconds": elapsed,
        "rc": os.waitstatus_to_exitcode(status),
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }
    with os.fdopen(report_fd, "w") as out:
        json.dump(report, out)


if __name__ == "__main__":
    main()

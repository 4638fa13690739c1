#!/usr/bin/env python3
"""Runs CI jobs on a fixed number of workers, longest first.

CI's two slowest steps, the loom models and the suite under Miri, are
made of many independent single-threaded jobs (one loom model, one Miri
test binary) whose lengths differ by a hundred times. Run one after the
other, a job that takes minutes runs alone at the end while the other CPU
idles. Here every job is queued by its expected length (longest first, the
classic LPT rule), and each of `--workers` workers takes the next one when
it is free: the step then takes about max(longest job, total / workers).

Usage: pool.py --workers N --durations FILE JOBS_FILE

JOBS_FILE has one job per line: `label<TAB>shell command`. The command
runs under `bash -c` with `WORKER` set to the worker's number (0..N-1), so
that jobs needing their own build directory per worker can have one.
FILE lists `seconds<TAB>label` measured on the 2-CPU CI machine; a job
missing from it is expected to take 5 s. Each job's output goes to a log
that is printed when the job fails. After a failure no new job starts; the
script waits for the running ones and exits with status 1.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time

DEFAULT_SECONDS = 5.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--durations", required=True)
    p.add_argument("jobs")
    args = p.parse_args()

    expected = {}
    with open(args.durations) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                secs, label = line.split("\t", 1)
                expected[label] = float(secs)

    jobs = []
    with open(args.jobs) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                label, cmd = line.split("\t", 1)
                jobs.append((expected.get(label, DEFAULT_SECONDS), label, cmd))
    jobs.sort(key=lambda j: -j[0])
    total = sum(j[0] for j in jobs)
    print(
        f"{len(jobs)} jobs on {args.workers} workers, about {total:.0f} s of work "
        f"(longest {jobs[0][0]:.0f} s: {jobs[0][1]})" if jobs else "no jobs",
        flush=True,
    )

    lock = threading.Lock()
    state = {"next": 0, "failed": []}
    logdir = tempfile.mkdtemp(prefix="ci-pool-")
    start = time.monotonic()

    def worker(n):
        while True:
            with lock:
                if state["failed"] or state["next"] == len(jobs):
                    return
                _, label, cmd = jobs[state["next"]]
                state["next"] += 1
            log = os.path.join(logdir, f"{state['next']:03}.log")
            t = time.monotonic()
            with open(log, "w") as out:
                env = dict(os.environ, WORKER=str(n))
                rc = subprocess.call(
                    ["bash", "-c", cmd], stdout=out, stderr=subprocess.STDOUT, env=env
                )
            took = time.monotonic() - t
            with lock:
                at = time.monotonic() - start
                status = "ok" if rc == 0 else f"FAILED (exit {rc})"
                print(f"[{at:6.0f} s] worker {n}: {status} in {took:.0f} s: {label}", flush=True)
                if rc != 0:
                    state["failed"].append((label, log))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    for label, log in state["failed"]:
        print(f"\n--- output of the failed job: {label}", flush=True)
        with open(log) as f:
            sys.stdout.write(f.read())
    if state["failed"]:
        sys.exit(1)
    print(f"all {len(jobs)} jobs passed in {time.monotonic() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""python -m l2l.sweep: run workers, report and check."""

import argparse
import os
import signal
import sys

from l2l.sweep.analysis import importances, trials_frame
from l2l.sweep.spec import SpecError, load_spec
from l2l.sweep.workers import CONNECT_TIMEOUT_S, GRACE_S, HEARTBEAT_S, OUTAGE_S, STORAGE_VARIABLE, StorageDown, default_storage, enqueue_points, masked, storage, study, work


def run_workers(spec_path, store_url, root, workers=1, threads=1, heartbeat=HEARTBEAT_S, grace=GRACE_S, log=print):
    """Runs a study to completion with `workers` processes of this machine (a finished study returns at once);
    their output goes to `log` line by line."""
    import subprocess

    command = [sys.executable, "-m", "l2l.sweep", "run", str(spec_path), "--root", str(root), "--workers", str(workers),
               "--threads", str(threads), "--heartbeat", str(heartbeat), "--grace", str(grace)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, STORAGE_VARIABLE: store_url})
    for line in process.stdout:
        if "trial" in line or "error" in line.lower() or "worker" in line:
            log(line.rstrip())
    if process.wait():
        raise RuntimeError(f"sweep workers for {spec_path} exited with {process.returncode}; rerun: "
                           f"{STORAGE_VARIABLE}={masked(store_url)!r} {' '.join(command)}")



def _spawn(args, count):
    """`count` worker processes of this command, each pinned to a GPU of --gpus in turn; waits for all. The storage
    URL reaches them through STORAGE_VARIABLE, and SIGTERM or SIGINT sent to this launcher is passed on to each
    worker, which it then waits for (killed alone, the launcher once left its workers running as orphans)."""
    import subprocess

    gpus = [g for g in (args.gpus or "").split(",") if g]
    processes = []

    def forward(signum, frame):
        for p in processes:
            if p.poll() is None:
                p.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for i in range(count):
            env = dict(os.environ, L2L_SWEEP_WORKER=str(i), **{STORAGE_VARIABLE: args.storage})
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            command = [sys.executable, "-m", "l2l.sweep", "run", args.spec, "--workers", "1", "--root", args.root, "--threads", str(args.threads),
                       "--heartbeat", str(args.heartbeat), "--grace", str(args.grace), "--connect-timeout", str(args.connect_timeout),
                       "--outage", str(args.outage)]
            processes.append(subprocess.Popen(command, env=env))
        codes = [p.wait() for p in processes]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return max((abs(c) for c in codes), default=0)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m l2l.sweep", description=sys.modules["l2l.sweep"].__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # the package's docstring: usage and design
    parser.add_argument("command", choices=["run", "report", "check"])
    parser.add_argument("spec", help="the study's YAML spec")
    parser.add_argument("--storage", default=None, help=f"an Optuna storage URL (default: ${STORAGE_VARIABLE}, else sqlite:///<results>/<name>.db); "
                                                         f"a URL with a password is better given in ${STORAGE_VARIABLE}, which ps does not show")
    parser.add_argument("--results", default="book/results/hyper", help="folder of the default SQLite study file")
    parser.add_argument("--root", default=".cache/checkpoints/sweeps", help="checkpoint root of the trials' runs (shared by every worker of a machine)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes on this machine")
    parser.add_argument("--gpus", default="", help="comma-separated GPU ids; worker i gets CUDA_VISIBLE_DEVICES = gpus[i %% len]")
    parser.add_argument("--threads", type=int, default=0, help="TF threads per worker (1: one core each); 0: TF's default")
    parser.add_argument("--heartbeat", type=int, default=HEARTBEAT_S, help="seconds between a worker's heartbeats")
    parser.add_argument("--grace", type=int, default=GRACE_S, help="seconds without a heartbeat before a running trial is retried")
    parser.add_argument("--connect-timeout", type=int, default=CONNECT_TIMEOUT_S, help="seconds a database connection may take before it is an error")
    parser.add_argument("--outage", type=float, default=OUTAGE_S, help="seconds a worker retries a lost database before it stops (exit 3)")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        args.storage = args.storage or os.environ.get(STORAGE_VARIABLE) or default_storage(spec, args.results)
        if args.workers < 1 or args.threads < 0 or args.heartbeat < 1 or args.grace <= args.heartbeat or args.connect_timeout < 1 or not args.outage >= 0:
            raise SpecError(f"need --workers >= 1, --threads >= 0, --heartbeat >= 1, --grace > --heartbeat, --connect-timeout >= 1 and --outage >= 0, "
                            f"got {args.workers}, {args.threads}, {args.heartbeat}, {args.grace}, {args.connect_timeout}, {args.outage}")
        if args.command == "check":
            print(f"{args.spec}: a valid spec; study {spec.name!r}, {spec.trials} trials, storage {masked(args.storage)}")
            return 0
        store = storage(args.storage, args.heartbeat, args.grace, args.connect_timeout)
    except SpecError as error:
        print(f"error: {masked(error, args.storage)}", file=sys.stderr)
        return 2
    if args.command == "run" and os.environ.get("L2L_SWEEP_WORKER") is None:  # the launching process, before any worker
        enqueue_points(spec, study(spec, store))
    if args.command == "run" and args.workers > 1:
        return _spawn(args, args.workers)
    if args.command == "run":
        if args.threads:
            os.environ["L2L_THREADS"] = str(args.threads)
        from l2l import provenance

        provenance.limit_threads()
        try:
            done = work(spec, store, args.root, log=lambda line: print(line, flush=True), outage_s=args.outage, url=args.storage)
        except StorageDown as error:
            print(f"error: worker {os.getpid()}: {error}", file=sys.stderr, flush=True)
            return 3
        print(f"worker {os.getpid()}: finished {done} trial(s); study {spec.name!r} is complete", flush=True)
        return 0
    import pandas as pd

    s = study(spec, store)
    frame = trials_frame(s)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(frame.drop(columns=["run_key"]).to_string(index=False))
        if (frame.state == "COMPLETE").sum() >= 2:
            print(importances(s).to_string(index=False))
    return 0

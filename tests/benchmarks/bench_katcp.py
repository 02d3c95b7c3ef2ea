"""katcp_compat beside katcp 0.9.3, aiokatcp and the physical limit, in one run.

Run: ``python tests/benchmarks/bench_katcp.py [--quick] [--runs N] [--only FIGURE ...]``.

Each implementation is measured with its own server and its own client (see
``bench_katcp_sides.py``): katcp 0.9.3 (``DeviceServer``, ``BlockingClient``),
aiokatcp (``DeviceServer``, ``Client``), protocompat (katcp_compat's
``DeviceServer``, ``BlockingClient``) and the physical limit (a bare
``selectors`` server answering inline, a client blocking on ``recv``). Every
figure is the median of several runs, the implementations taking turns within
each run, since the machine may be shared.

Figures (names for ``--only``):

``rt1``
    ``?watchdog`` round trips/s of one client; server and client in two processes.
``rt8p``
    8 clients, each in its own process with one request in flight; the server
    in another process.
``rt8t``
    8 clients in one client process with one request in flight each: one
    thread per client for the threaded clients (and the physical limit), one
    task per client on one event loop for aiokatcp (its own way).
``events``
    ``#sensor-status`` informs/s received by one client with the ``event``
    strategy while the server sets the sensor 1, 2, ..., N (``?burst N``),
    server and client in two processes.
``cycles``
    connect, read the greeting, disconnect (raw sockets), cycles/s.
``memory``
    resident memory of the server process per client with 1000 clients
    connected (each has read its greeting and made one ``?watchdog``), KiB.
``inproc-rt1``, ``inproc-rt8``, ``inproc-events``
    the same figures with both ends in one process (as tests and simulators
    run them); aiokatcp's server and clients then share one event loop.

For a profile, run the two ends by hand, e.g. under ``py-spy record``:
``--serve protocompat`` prints the port and serves until stdin closes;
``--client protocompat --port P --figure rt --n 8 --seconds 10`` runs a client.
"""

import argparse
import multiprocessing
import resource
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from benchlib import PROCESS_WAIT, ServerProcess

import bench_katcp_sides as sides
from bench_katcp_sides import IMPLEMENTATIONS, TITLES

#: Clients held at once for the memory figure.
MANY_CLIENTS = 1000
#: Descriptors this process keeps beyond one per held client.
SPARE_DESCRIPTORS = 256
#: Seconds between telling client processes to go and their start.
START_DELAY = 0.05
#: Remarks on the current figure's runs (printed under its row).
NOTES: List[str] = []

FIGURES = ("rt1", "rt8p", "rt8t", "events", "cycles", "memory",
           "inproc-rt1", "inproc-rt8", "inproc-events")
LABELS = {
    "rt1": "?watchdog round trips, 1 client",
    "rt8p": "round trips, 8 clients in 8 processes",
    "rt8t": "round trips, 8 clients in 1 process",
    "events": "#sensor-status events",
    "cycles": "connect/disconnect cycles",
    "memory": "memory per client (1000 clients)",
    "inproc-rt1": "in-process round trips, 1 client",
    "inproc-rt8": "in-process round trips, 8 clients",
    "inproc-events": "in-process #sensor-status events",
}
UNITS = {"memory": "KiB"}
#: Implementations each figure applies to (the physical limit is the bare round trip only).
APPLIES = {figure: IMPLEMENTATIONS[:3] for figure in FIGURES}
APPLIES.update({"rt1": IMPLEMENTATIONS, "rt8p": IMPLEMENTATIONS, "rt8t": IMPLEMENTATIONS,
                "inproc-rt1": IMPLEMENTATIONS[:3], "inproc-rt8": IMPLEMENTATIONS[:3]})


# --------------------------------------------------------------------------- client processes

MEASURES: Dict[str, Callable[..., Tuple[int, float]]] = {
    "rt": sides.round_trips,
    "events": sides.sensor_events,
    "cycles": sides.connect_cycles,
}


def _client_child(pipe: Any, measure: str, impl: str, port: int, n: int) -> None:
    sides.quiet()

    def go() -> Tuple[float, float]:
        pipe.send("ready")
        return pipe.recv()

    try:
        pipe.send(MEASURES[measure](impl, port, n, go))
    except Exception as exc:
        pipe.send(("error", "%s: %s" % (type(exc).__name__, exc)))


def _in_process_child(pipe: Any, measure: str, impl: str, n: int, seconds: float) -> None:
    sides.quiet()
    try:
        pipe.send(sides.in_process(MEASURES[measure], impl, n, seconds))
    except Exception as exc:
        pipe.send(("error", "%s: %s" % (type(exc).__name__, exc)))


def _run_children(target: Callable[..., None], arg_sets: List[Tuple[Any, ...]],
                  seconds: Optional[float]) -> List[Tuple[int, float]]:
    """Run ``target(pipe, *args)`` in one new process per argument set; once all are
    ready, tell them to go (for ``seconds``); return their results."""
    context = multiprocessing.get_context("spawn")
    pipes, processes = [], []
    for args in arg_sets:
        parent, child = context.Pipe()
        process = context.Process(target=target, args=(child,) + args, daemon=True)
        process.start()
        pipes.append(parent)
        processes.append(process)
    try:
        if seconds is not None:
            for pipe in pipes:
                _expect(pipe, "ready")
            start = time.monotonic() + START_DELAY
            for pipe in pipes:
                pipe.send((start, start + seconds))
        results = [_expect(pipe, None) for pipe in pipes]
    finally:
        for process in processes:
            process.join(PROCESS_WAIT)
            if process.is_alive():
                process.kill()
                process.join(PROCESS_WAIT)
    return results


def _expect(pipe: Any, wanted: Any) -> Any:
    if not pipe.poll(PROCESS_WAIT * 4):
        raise RuntimeError("a client process did not answer")
    got = pipe.recv()
    if isinstance(got, tuple) and got and got[0] == "error":
        raise RuntimeError(got[1])
    if wanted is not None and got != wanted:
        raise RuntimeError("a client process said %r" % (got,))
    return got


def _rate(results: List[Tuple[int, float]]) -> float:
    return sum(count for count, _ in results) / max(seconds for _, seconds in results)


# --------------------------------------------------------------------------- figures

def measure(figure: str, impl: str, seconds: float, n_events: int) -> float:
    """One run of one figure for one implementation."""
    if figure.startswith("inproc-"):
        what = figure[len("inproc-"):]
        measure_name, n = ("events", n_events) if what == "events" else ("rt", int(what[2:]))
        return _rate(_run_children(_in_process_child, [(measure_name, impl, n, seconds)], None))
    with ServerProcess(sides.serve, impl) as (port, pid):
        if figure == "memory":
            return _memory_per_client(port, pid)
        if figure == "rt1":
            arg_sets = [("rt", impl, port, 1)]
        elif figure == "rt8p":
            arg_sets = [("rt", impl, port, 1)] * 8
        elif figure == "rt8t":
            arg_sets = [("rt", impl, port, 8)]
        elif figure == "events":
            arg_sets = [("events", impl, port, n_events)]
        else:
            arg_sets = [("cycles", impl, port, 0)]
        return _rate(_run_children(_client_child, arg_sets, seconds))


def _memory_per_client(port: int, pid: int) -> float:
    socks, errors = sides.hold_clients(port, 1)  # what the first client costs once
    for sock in socks:
        sock.close()
    before = _rss_kib(pid)
    socks, errors = sides.hold_clients(port, MANY_CLIENTS)
    after = _rss_kib(pid)
    for sock in socks:
        sock.close()
    if errors == MANY_CLIENTS:
        raise RuntimeError("no client got an answer")
    if errors:
        NOTES.append("%d of %d clients had no reply within %.0f s"
                     % (errors, MANY_CLIENTS, sides.WAIT))
    return (after - before) / MANY_CLIENTS


def _rss_kib(pid: int) -> int:
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for process %d" % pid)


def _raise_descriptor_limit() -> None:
    needed = MANY_CLIENTS + SPARE_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise SystemExit("the memory figure needs %d open files; the hard limit is %d"
                             % (needed, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


# --------------------------------------------------------------------------- report

def run(figures: List[str], runs: int, seconds: float, n_events: int) -> Dict[str, Dict[str, Any]]:
    table: Dict[str, Dict[str, Any]] = {}
    for figure in figures:
        impls = [impl for impl in APPLIES[figure] if sides.installed(impl)]
        values: Dict[str, List[float]] = {impl: [] for impl in impls}
        problems: Dict[str, str] = {}
        notes: Set[str] = set()
        for i in range(runs):
            turn = impls[i % len(impls):] + impls[:i % len(impls)]
            for impl in turn:
                if impl in problems:
                    continue
                del NOTES[:]
                try:
                    values[impl].append(measure(figure, impl, seconds, n_events))
                except Exception as exc:
                    problems[impl] = str(exc)
                notes.update("%s: %s" % (TITLES[impl], note) for note in NOTES)
        row: Dict[str, Any] = {impl: statistics.median(v) for impl, v in values.items() if v}
        row.update({impl: "failed: " + why for impl, why in problems.items()})
        table[figure] = row
        _print_row(figure, row)
        for note in sorted(notes):
            print("    " + note)
    return table


def _print_header(runs: int, seconds: float) -> None:
    print("median of %d run%s, %.1f s each; server and client in separate processes "
          "unless in-process" % (runs, "" if runs == 1 else "s", seconds))
    print("%-38s" % "figure" + "".join("%15s" % TITLES[i] for i in IMPLEMENTATIONS)
          + "   protocompat/: katcp   aiokatcp    limit")


def _print_row(figure: str, row: Dict[str, Any]) -> None:
    unit = UNITS.get(figure, "/s")
    cells = []
    for impl in IMPLEMENTATIONS:
        value = row.get(impl)
        if value is None:
            cells.append("%15s" % "-")
        elif isinstance(value, str):
            cells.append("%15s" % "failed")
        else:
            cells.append("%15s" % (("%.1f" if unit == "KiB" else "%.0f") % value))
    ratios = []
    ours = row.get("protocompat")
    for other in ("katcp", "aiokatcp", "limit"):
        theirs = row.get(other)
        if isinstance(ours, float) and isinstance(theirs, float) and ours and theirs:
            ratio = theirs / ours if unit == "KiB" else ours / theirs
            ratios.append("%8.2fx" % ratio)
        else:
            ratios.append("%9s" % "-")
    print("%-38s" % ("%s (%s)" % (LABELS[figure], unit)) + "".join(cells) + "   "
          + " ".join(ratios))
    for impl, value in row.items():
        if isinstance(value, str):
            print("    %s: %s" % (TITLES[impl], value))
    sys.stdout.flush()


# --------------------------------------------------------------------------- by hand

def _serve_by_hand(impl: str) -> None:
    with ServerProcess(sides.serve, impl) as (port, pid):
        print("%s server: port %d, pid %d; close stdin (Ctrl-D) to stop" % (impl, port, pid))
        sys.stdout.flush()
        sys.stdin.read()


def _client_by_hand(impl: str, port: int, figure: str, n: int, seconds: float) -> None:
    def go() -> Tuple[float, float]:
        now = time.monotonic()
        return now, now + seconds
    count, took = MEASURES[figure](impl, port, n, go)
    print("%s %s: %d in %.2f s: %.0f/s" % (impl, figure, count, took, count / took))


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short run of each figure")
    parser.add_argument("--runs", type=int, help="runs per figure (default 5; --quick: 1)")
    parser.add_argument("--seconds", type=float, help="seconds per timed run")
    parser.add_argument("--only", nargs="+", choices=FIGURES, help="these figures only")
    parser.add_argument("--serve", choices=IMPLEMENTATIONS, help="run a server by hand")
    parser.add_argument("--client", choices=IMPLEMENTATIONS, help="run a client by hand")
    parser.add_argument("--port", type=int)
    parser.add_argument("--figure", choices=sorted(MEASURES), default="rt")
    parser.add_argument("--n", type=int, default=1, help="clients (rt) or events (events)")
    args = parser.parse_args(argv)
    sides.quiet()
    if args.serve:
        _serve_by_hand(args.serve)
        return
    if args.client:
        _client_by_hand(args.client, args.port, args.figure, args.n, args.seconds or 5.0)
        return
    runs = args.runs or (1 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 1.5)
    n_events = 5000 if args.quick else 20000
    figures = args.only or list(FIGURES)
    if "memory" in figures:
        _raise_descriptor_limit()
    _print_header(runs, seconds)
    run(figures, runs, seconds, n_events)


if __name__ == "__main__":
    main()

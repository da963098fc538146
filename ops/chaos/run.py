"""Runs one chaos scenario by name: `run.py kills`. Prints PASS/FAIL per check and rewrites the scenario's
row in docs/reliability.md. Exit 0 when every check passed."""
import importlib
import signal
import sys
import traceback

from lib import Result, log

SCENARIOS = ["kills", "broker", "cluster", "malformed", "faults", "soak"]


def _terminate(signum, frame):
    raise SystemExit(f"stopped by signal {signum} (time limit)")


def main():
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    if name not in SCENARIOS:
        sys.exit(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}")
    signal.signal(signal.SIGTERM, _terminate)
    r = Result(name)
    try:
        importlib.import_module(name).main(r)
    except BaseException as e:                  # noqa: BLE001 — a harness failure is a failed scenario
        r.check("scenario ran to its end", False, f"{type(e).__name__}: {e}")
        traceback.print_exc()
    finally:
        for f in reversed(r.cleanup):
            try:
                f()
            except Exception as e:              # noqa: BLE001
                log(f"cleanup: {e!r}")
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())

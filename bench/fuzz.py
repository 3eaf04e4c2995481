"""Schemathesis over the API, longer than the test suite's run: the real server
(`python -m trademaster_web.serve`, daphne) on a fresh database, an ordinary user's token, every check.

    python bench/fuzz.py [--postgres] [--examples 300] [--seed 1] [--processes 2]

Prints the operations and cases tested, the failures by check (zero is the target: no 5xx and no
answer the document does not describe) and how long it took; the JSON report is kept in a temp folder
printed at the end. tests/platform/test_api_fuzz.py is the CI-sized run of the same checks.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, bench/ comes first on the path, where bench/engine.py would hide the engine package.
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench.harness import Serve, create_fixtures, environment, migrate, postgres_database  # noqa: E402

# As in tests/platform/test_api_fuzz.py: a valid request may still be refused for what it means (422).
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "401", "403", "404", "409", "422"]
"""


def fuzz(port: int, token: str, *, examples: int, seed: int, workdir: Path) -> dict:
    (workdir / "schemathesis.toml").write_text(CONFIG)
    report = workdir / "report.json"
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(workdir / "schemathesis.toml"),
        "run", f"http://127.0.0.1:{port}/api/openapi.json", "--checks", "all", "--max-examples", str(examples),
        "--seed", str(seed), "--header", f"Authorization: Bearer {token}", "--report", "json",
        "--report-json-path", str(report), "--workers", "1",
    ]
    started = time.monotonic()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    # The failures' details (status, body, curl to reproduce) and the summary.
    tail = "\n".join(done.stdout.strip().splitlines()[-120:])
    return {"exit": done.returncode, "seconds": elapsed, "report": report, "tail": tail}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--examples", type=int, default=300, help="cases per operation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="fuzz-bench-"))
    with contextlib.ExitStack() as stack:
        if args.postgres:
            admin = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
            name, url = stack.enter_context(postgres_database(admin, "trademaster_fuzz_bench"))
            env = environment(workdir, db_name=name, database_url=url)
        else:
            env = environment(workdir, db_name=str(workdir / "db.sqlite3"))
        migrate(env)
        token = create_fixtures(env, sessions=3)["token"]
        server = Serve(env, workdir / "serve.log", processes=args.processes)
        stack.callback(server.stop)
        print(f"schemathesis {args.examples} examples per operation, seed {args.seed}, on "
              f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.processes} daphne processes, port {server.port}")
        result = fuzz(server.port, token, examples=args.examples, seed=args.seed, workdir=workdir)
    print(result["tail"])
    print(f"exit status {result['exit']} (0: no failure) in {result['seconds']:.0f} s; report: {result['report']}")


if __name__ == "__main__":
    main()

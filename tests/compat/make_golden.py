"""Regenerate tests/data/celery_redbeat_2.4.2/{golden.json,expected_read.json}.

Run with the PROJECT venv python (it drives the celery-redbeat venv through subprocesses):

    .venv/bin/python tests/compat/make_golden.py [--check]

Starts a throwaway redis-server, writes the representative entries with celery-redbeat's own API
(cr_write.py, app.now() pinned to NOW), dumps them (tests/support/redis_dump.py) into golden.json,
restores that dump into an empty server and records what celery-redbeat reads back
(cr_read.py at the same NOW) as expected_read.json. With --check nothing is written; it exits 1
if the committed files differ from what would be generated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.celery_redbeat_venv import (  # noqa: E402
    CELERY_REDBEAT_VERSION,
    celery_redbeat_python,
    our_celery_version,
    run_compat_script,
)
from support.redis_dump import dump, restore  # noqa: E402
from support.redis_proc import RedisProcess  # noqa: E402

NOW = "2026-11-25T12:00:00+00:00"
PREFIX = "redbeat:"
DATA_DIR = ROOT / "tests" / "data" / f"celery_redbeat_{CELERY_REDBEAT_VERSION}"
GOLDEN = DATA_DIR / "golden.json"
EXPECTED_READ = DATA_DIR / "expected_read.json"


def to_text(document) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_with_celery_redbeat(server: RedisProcess, python: Path) -> dict:
    run_compat_script("cr_write.py", "--redis-url", server.url, "--prefix", PREFIX, "--now", NOW,
                      python=python)
    return dump(server.client(), PREFIX)


def generate() -> tuple[str, str]:
    python = celery_redbeat_python()
    with RedisProcess() as server:
        data = write_with_celery_redbeat(server, python)
        golden = {
            "_meta": {
                "generator": "tests/compat/make_golden.py",
                "celery_redbeat": CELERY_REDBEAT_VERSION,
                "celery": our_celery_version(),
                "now": NOW,
            },
            **data,
        }
        client = server.client()
        client.flushall()
        restore(client, golden)
        again = dump(client, PREFIX)
        if again != data:
            raise RuntimeError("restore(dump()) did not reproduce the data exactly")
        read = json.loads(run_compat_script("cr_read.py", "--redis-url", server.url, "--prefix", PREFIX,
                                            "--now", NOW, python=python))
    if read["errors"]:
        raise RuntimeError(f"celery-redbeat could not read its own entries: {read['errors']}")
    return to_text(golden), to_text(read)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files, write nothing")
    args = parser.parse_args()
    golden_text, read_text = generate()
    if args.check:
        stale = [p for p, text in ((GOLDEN, golden_text), (EXPECTED_READ, read_text))
                 if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale else 0
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(golden_text)
    EXPECTED_READ.write_text(read_text)
    print(f"wrote {GOLDEN.relative_to(ROOT)} and {EXPECTED_READ.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

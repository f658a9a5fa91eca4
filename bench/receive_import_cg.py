"""The import of bench/receive_import.py's mix, alone, for counting instructions.

    .venv/bin/python bench/receive_import_cg.py --build /tmp/mix   # the 2,000 inputs
    mkdir -p /tmp/empty
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/receive_import_cg.py /tmp/mix
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/receive_import_cg.py /tmp/empty

The difference of the two "Collected" counts is the import's instructions (reading,
bounds, deduplication, the SQLite store and its thread), without interpreter start,
imports and the store's migrations; divided by the inputs, instructions a report.
Unlike CPU time on a shared machine, it does not depend on the other jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from receive_import import build


async def _import(directory: Path) -> dict[str, int]:
    from mtasts.tlsrpt.receive.decide import ReceiveSettings
    from mtasts.tlsrpt.receive.importer import import_sources
    from mtasts.tlsrpt.receive.intake import Receiver

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store.db"
        # opened as `tlsrpt import` opens it (batch: SQLite on this thread)
        receiver = await Receiver.open(
            f"sqlite:///{store}", ReceiveSettings(verify_dkim=False), batch=True
        )
        try:
            result = await import_sources(receiver, [str(directory)])
        finally:
            await receiver.close()
    return result.counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--build", action="store_true", help="write the mix there first")
    parser.add_argument("--reports", type=int, default=2000)
    args = parser.parse_args()
    if args.build:
        args.directory.mkdir(parents=True, exist_ok=True)
        n, n_mail = build(args.reports, args.directory)
        print(f"{n} inputs, {n_mail} of them whole e-mails, in {args.directory}")
        return
    print(asyncio.run(_import(args.directory)))


if __name__ == "__main__":
    main()

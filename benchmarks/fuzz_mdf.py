"""Fuzz the MDF reader with thousands of mutated files and print the outcome table.

Every case is a seeded mutation of a valid file (written by the test factory, by the package's
writer, and the two real files in ../shared/data/mpimeasurements-mdf): structural changes
(deleted fields, Empty scalars, strings for numbers, huge chunked datasets, NaN/Inf, link loops,
broken and external links, ...), byte flips, zeroed blocks and truncations, plus special paths
(a FIFO, a symlink loop, a name too long, a device). Each file is read with ``read_mdf`` and
every accessor in a worker process with an address-space limit; a parent watches each file with
a timeout. Expected: only ``ok`` and ``MDFError``.

    OMP_NUM_THREADS=1 python benchmarks/fuzz_mdf.py --cases 3000 --seed 1

Options: ``--timeout`` (s per file, default 20), ``--rlimit-as`` (GiB, default 4),
``--reader-limit`` (the reader's memory limit, default 256M), ``--keep`` (folder for the cases,
default a temporary one), ``--json`` (write the results).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "io"), str(REPO / "tests"), str(REPO / "src")]

import mdf_fuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--rlimit-as", type=float, default=4.0, help="GiB")
    parser.add_argument("--reader-limit", default="256M")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="fuzz-mdf-"))
    shared = REPO.parent / "shared" / "data" / "mpimeasurements-mdf"
    sources = mdf_fuzz.make_sources(folder / "src", shared if shared.is_dir() else None)
    before = {p: mdf_fuzz._md5(p) for p in sources}
    cases = mdf_fuzz.make_cases(sources, folder / "cases", args.cases, seed=args.seed)
    cases += mdf_fuzz.special_paths(folder / "special", sources[0])
    report = mdf_fuzz.run_files(
        cases,
        timeout=args.timeout,
        rlimit_as=int(args.rlimit_as * 2**30),
        reader_limit=args.reader_limit,
    )
    changed = [str(p) for p in sources if mdf_fuzz._md5(p) != before[p]]
    # outcome per mutation kind
    kinds: dict[str, dict[str, int]] = {}
    for r in report.results:
        if ": " in r.description:
            kind = r.description.split(": ", 1)[1].split(" ", 1)[0]
        else:
            kind = "special path"
        row = kinds.setdefault(kind, {})
        row[r.outcome] = row.get(r.outcome, 0) + 1
    outcomes = ["ok", "MDFError", "other", "hang", "crash", "modified"]
    print(
        f"{len(report.results)} files from {len(sources)} sources, seed {args.seed}, "
        f"{report.seconds:.0f} s, worker peak RSS {report.max_rss_mb:.0f} MiB, "
        f"RLIMIT_AS {args.rlimit_as:g} GiB, reader limit {args.reader_limit}"
    )
    print(f"{'mutation':<18}" + "".join(f"{o:>10}" for o in outcomes))
    for kind in sorted(kinds):
        print(f"{kind:<18}" + "".join(f"{kinds[kind].get(o, 0):>10}" for o in outcomes))
    totals = report.counts()
    print(f"{'total':<18}" + "".join(f"{totals.get(o, 0):>10}" for o in outcomes))
    print(f"source files changed: {len(changed)}")
    for r in report.failures():
        print(f"  {r.outcome}: {r.description} | {r.detail[:200]}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "counts": totals,
                    "per_kind": kinds,
                    "seconds": report.seconds,
                    "max_rss_mb": report.max_rss_mb,
                    "failures": [vars(r) for r in report.failures()],
                },
                indent=2,
            )
        )
    return 0 if not report.failures() and not changed else 1


if __name__ == "__main__":
    sys.exit(main())

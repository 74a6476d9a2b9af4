"""A bounded fuzz of the MDF reader: seeded mutations of several valid files (structural
changes incl. link loops, Empty scalars, broken and external links; byte flips; truncations;
special paths), each read with every accessor in a watched worker process under an
address-space limit. Only MDFError may come out, nothing may hang or crash, memory stays
bounded and no input changes. ``benchmarks/fuzz_mdf.py`` runs the same with thousands."""

from __future__ import annotations

import mdf_fuzz

CASES = 160  # 20 mutation kinds x 8, cycling over 9 sources; about 30 s on 2 cores


def test_fuzzed_files_only_raise_mdf_error(tmp_path, shared_mdf):
    sources = mdf_fuzz.make_sources(tmp_path / "src", shared_mdf)
    cases = mdf_fuzz.make_cases(sources, tmp_path / "cases", CASES, seed=2026)
    cases += mdf_fuzz.special_paths(tmp_path / "special", sources[0])
    before = {p: mdf_fuzz._md5(p) for p in sources}
    report = mdf_fuzz.run_files(cases, timeout=20.0, rlimit_as=3 * 2**30, reader_limit="256M")
    counts = report.counts()
    bad = [f"{r.outcome}: {r.description}: {r.detail}" for r in report.failures()]
    assert bad == [], "\n".join(bad)
    assert sum(counts.values()) == len(cases) >= CASES * 0.9
    assert counts.get("MDFError", 0) > len(cases) / 4  # the mutations do break files
    assert counts.get("ok", 0) > 0
    assert report.max_rss_mb < 1024  # the worker never grew past 1 GiB resident
    assert {p: mdf_fuzz._md5(p) for p in sources} == before

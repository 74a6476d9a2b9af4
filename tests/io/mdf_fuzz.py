"""Fuzzing the MDF reader: seeded mutations of valid files, read in watched worker processes.

Used by ``tests/io/test_mdf_fuzz.py`` (a few hundred cases) and ``benchmarks/fuzz_mdf.py``
(thousands). Each mutated file is read with :func:`napari_mpi.read_mdf` and every accessor in a
worker process under an address-space limit (``RLIMIT_AS``) and a small reader memory limit; a
parent process watches each file with a timeout, so a hang or a crash inside HDF5 is recorded
as such (and the worker restarted) instead of stopping the run.

Outcomes: ``ok``, ``MDFError``, ``other`` (any other exception: a bug), ``hang``, ``crash``
(the worker died), ``modified`` (the input changed while being read: a bug).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
REPO = TESTS.parent

STRUCTURAL = (
    "delete",
    "empty_scalar",
    "string",
    "huge_chunked",
    "nan",
    "inf",
    "negative",
    "big_int",
    "zero_size",
    "extra_axis",
    "wrong_compound",
    "opaque",
    "hard_link_loop",
    "soft_link_loop",
    "broken_soft_link",
    "external_link",
    "group_for_dataset",
)
BYTE_LEVEL = ("byte_flip", "truncate", "zero_block")
MUTATIONS = STRUCTURAL + BYTE_LEVEL


# -- valid sources --------------------------------------------------------------------------------
def make_sources(folder: Path, shared_mdf: Path | None = None) -> list[Path]:
    """Write several valid MDF files of different kinds and layouts into ``folder``."""
    sys.path.insert(0, str(TESTS))
    import napari_mpi as nm
    from mdf_factory import Layout, write_mdf_file

    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    layouts = {
        "cal_fast_bg_sel.mdf": Layout(
            fast=True, background=2, selection=np.array([1, 3, 4]), with_snr=True
        ),
        "cal_slow_tf.mdf": Layout(transfer_function=True, periods=2),
        "meas_td.mdf": Layout(kind="measurement", fourier=False, conversion=np.ones((2, 2))),
        "meas_perm.mdf": Layout(kind="measurement", permutation=np.arange(12)[::-1]),
        "cal_v1.mdf": Layout(version="1.0.5"),
    }
    for name, lay in layouts.items():
        sources.append(write_mdf_file(folder / name, lay).path)
    with nm.read_mdf(sources[0]) as f:
        sm = f.system_matrix()
    sources.append(nm.write_calibration(folder / "written_cal.mdf", sm, overwrite=True))
    img = nm.MPIImage(
        np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4), [1e-3, 2e-3, 3e-3], [0, 0, 0]
    )
    sources.append(nm.write_reconstruction(folder / "written_reco.mdf", img, overwrite=True))
    if shared_mdf is not None and shared_mdf.is_dir():
        for name in ("systemMatrix.mdf", "tmp.mdf"):
            target = folder / f"real_{name}"
            shutil.copyfile(shared_mdf / name, target)
            sources.append(target)
    return sources


# -- mutations ------------------------------------------------------------------------------------
def _datasets(h5: h5py.File) -> list[str]:
    names: list[str] = []
    h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def _groups(h5: h5py.File) -> list[str]:
    names: list[str] = []
    h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Group) else None)
    return sorted(names)


def _replace(h5: h5py.File, name: str, **kwargs) -> None:
    del h5[name]
    h5.create_dataset(name, **kwargs)


def mutate(src: Path, dst: Path, kind: str, rng: np.random.Generator) -> str:
    """Write a mutated copy of ``src`` to ``dst``; return a short description."""
    shutil.copyfile(src, dst)
    if kind in BYTE_LEVEL:
        blob = bytearray(dst.read_bytes())
        if kind == "byte_flip":
            count = int(rng.integers(1, 16))
            for pos in rng.integers(0, len(blob), size=count):
                blob[pos] ^= int(rng.integers(1, 256))
            detail = f"{count} bytes"
        elif kind == "zero_block":
            start = int(rng.integers(0, len(blob)))
            length = int(rng.integers(8, 512))
            blob[start : start + length] = bytes(min(length, len(blob) - start))
            detail = f"{length} at {start}"
        else:
            cut = int(rng.integers(0, len(blob)))
            blob = blob[:cut]
            detail = f"at {cut}"
        dst.write_bytes(bytes(blob))
        return f"{kind} {detail}"
    with h5py.File(dst, "a") as h5:
        datasets, groups = _datasets(h5), _groups(h5)
        name = datasets[int(rng.integers(len(datasets)))]
        if kind == "delete":
            target = (datasets + groups)[int(rng.integers(len(datasets) + len(groups)))]
            del h5[target]
            return f"delete {target}"
        old = h5[name]
        shape, dtype = old.shape, old.dtype
        if kind == "empty_scalar":
            _replace(h5, name, data=h5py.Empty(dtype if dtype.kind in "iuf" else "f8"))
        elif kind == "string":
            _replace(h5, name, data="fuzz", dtype=h5py.string_dtype())
        elif kind == "huge_chunked":
            _replace(h5, name, shape=(10**9, 1), dtype="f8", chunks=(4096, 1))
        elif kind in ("nan", "inf", "negative", "big_int"):
            value = np.asarray(old[()])
            if value.dtype.kind in "iu":
                fill = {"negative": -7, "big_int": 2**31}.get(kind, 0)
                value = np.full(value.shape, fill, dtype=np.int64)
            elif value.dtype.kind == "f":
                fill = {"nan": np.nan, "inf": np.inf, "negative": -1.0, "big_int": 1e12}[kind]
                value = np.full(value.shape, fill)
            else:
                value = np.full(value.shape or (1,), np.nan)
            _replace(h5, name, data=value)
        elif kind == "zero_size":
            _replace(h5, name, shape=(1, 0) if rng.random() < 0.5 else (0,), dtype="i8")
        elif kind == "extra_axis":
            value = np.asarray(old[()])
            _replace(h5, name, data=np.zeros((2, 2)) if value.dtype.kind == "O" else value[None])
        elif kind == "wrong_compound":
            arr = np.zeros(shape or (1,), dtype=[("a", "<f4"), ("b", "<i2"), ("c", "<f8")])
            _replace(h5, name, data=arr)
        elif kind == "opaque":
            _replace(h5, name, data=np.void(b"\x01\x02\x03\x04"))
        elif kind == "hard_link_loop":
            group = (groups or [""])[int(rng.integers(len(groups)))] if groups else ""
            h5[f"{group}/loop" if group else "loop"] = h5["/"]
            return f"hard_link_loop in /{group}"
        elif kind == "soft_link_loop":
            del h5[name]
            h5[name] = h5py.SoftLink(f"/{name}_b")
            h5[f"{name}_b"] = h5py.SoftLink(f"/{name}")
        elif kind == "broken_soft_link":
            del h5[name]
            h5[name] = h5py.SoftLink("/does/not/exist")
        elif kind == "external_link":
            del h5[name]
            target = "/dev/zero" if rng.random() < 0.5 else "missing_other_file.h5"
            h5[name] = h5py.ExternalLink(target, "/data")
        elif kind == "group_for_dataset":
            del h5[name]
            h5.create_group(name)
        else:
            raise ValueError(f"unknown mutation {kind!r}")
        return f"{kind} {name} (was {shape} {dtype})"


# -- the check a worker runs on one file ----------------------------------------------------------
def exercise(path: str) -> None:
    """Everything a user can ask of a file with default settings, plus a few selections."""
    import napari_mpi as nm

    assert nm.is_mdf(path) in (True, False)
    with nm.read_mdf(path) as f:
        repr(f)
        f.summary()
        _ = f.metadata
        _ = f.num_frames, f.num_background_frames
        _ = f.stored_frequency_indices, f.frequencies
        if f.kind == "calibration":
            f.stored_snr()
            sm = f.system_matrix()
            f.system_matrix(snr_threshold=0)
            f.system_matrix(min_frequency=float(np.median(sm.frequencies)))
        elif f.kind == "measurement":
            f.spectra()
            acq = f.acquisition
            bins = f.stored_frequency_indices[:2]
            sm = nm.SystemMatrix(
                matrix=np.ones((bins.size, 1), np.complex64),
                channels=np.zeros(bins.size, int),
                frequency_indices=bins,
                frequencies=bins / acq.cycle,
                grid_shape=(1, 1, 1),
                fov=np.ones(3) * 1e-3,
                center=np.zeros(3),
                acquisition=acq,
            )
            f.measurements(sm)
        elif f.kind == "reconstruction":
            f.image()
        else:
            _ = f.acquisition


def _worker_main() -> None:
    """Worker: read JSON lines of paths on stdin, answer one JSON line per file on stdout."""
    import resource

    limit = int(os.environ.get("MDF_FUZZ_RLIMIT_AS", str(3 * 2**30)))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from napari_mpi import MDFError

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = json.loads(line)["path"]
        try:
            exercise(path)
            out = {"outcome": "ok"}
        except MDFError as exc:
            out = {"outcome": "MDFError", "detail": str(exc)[:300]}
        except BaseException as exc:
            out = {"outcome": "other", "detail": f"{type(exc).__name__}: {str(exc)[:300]}"}
        out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps(out), flush=True)


# -- the parent: run many files through watched workers -------------------------------------------
@dataclass
class Result:
    path: str
    description: str
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    results: list[Result] = field(default_factory=list)
    max_rss_mb: float = 0.0
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.outcome] = out.get(r.outcome, 0) + 1
        return out

    def failures(self) -> list[Result]:
        return [r for r in self.results if r.outcome not in ("ok", "MDFError")]


def _md5(path: Path) -> str:
    """Checksum of a regular file (never opens a FIFO or a device: that could block)."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return "not a regular file"
        return hashlib.md5(path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return "unreadable"


class _Worker:
    def __init__(self, env: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "import mdf_fuzz; mdf_fuzz._worker_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=str(HERE),
        )
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.buffer = ""

    def readline(self, timeout: float) -> str | None:
        """One line from the worker, or None on timeout or when it died."""
        import select

        deadline = time.monotonic() + timeout
        while "\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = self.proc.stdout.read()
                if not chunk:
                    if self.proc.poll() is not None:
                        return None
                    continue
                self.buffer += chunk
        line, self.buffer = self.buffer.split("\n", 1)
        return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def run_files(
    cases: list[tuple[Path, str]],
    *,
    timeout: float = 20.0,
    rlimit_as: int = 3 * 2**30,
    reader_limit: str = "256M",
    startup_timeout: float = 60.0,
) -> Report:
    """Read every (path, description) case in watched workers; return the outcome of each."""
    env = dict(os.environ)
    env.update(
        {
            "MDF_FUZZ_RLIMIT_AS": str(rlimit_as),
            "NAPARI_MPI_MEMORY_LIMIT": reader_limit,
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(
                [str(REPO / "src"), str(HERE), str(TESTS), env.get("PYTHONPATH", "")]
            ),
        }
    )
    report = Report()
    start = time.monotonic()
    worker: _Worker | None = None
    for path, description in cases:
        if worker is None or worker.proc.poll() is not None:
            worker = _Worker(env)
            if worker.readline(startup_timeout) is None:
                raise RuntimeError("the fuzz worker did not start")
        before = _md5(path)
        t0 = time.monotonic()
        worker.proc.stdin.write(json.dumps({"path": str(path)}) + "\n")
        worker.proc.stdin.flush()
        line = worker.readline(timeout)
        seconds = time.monotonic() - t0
        if line is None:
            died = worker.proc.poll() is not None
            rc = worker.proc.returncode
            worker.kill()
            worker = None
            outcome = "crash" if died else "hang"
            report.results.append(
                Result(str(path), description, outcome, f"rc={rc}" if died else "", seconds)
            )
            continue
        out = json.loads(line)
        report.max_rss_mb = max(report.max_rss_mb, out.get("maxrss_kb", 0) / 1024)
        outcome = out["outcome"]
        if _md5(path) != before:
            outcome = "modified"
        report.results.append(
            Result(str(path), description, outcome, out.get("detail", ""), seconds)
        )
    if worker is not None:
        worker.proc.stdin.close()
        worker.kill()
    report.seconds = time.monotonic() - start
    return report


def make_cases(
    sources: list[Path], folder: Path, count: int, seed: int = 0
) -> list[tuple[Path, str]]:
    """``count`` seeded mutations, cycling through sources and mutation kinds."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    for i in range(count):
        src = sources[i % len(sources)]
        kind = MUTATIONS[(i // len(sources)) % len(MUTATIONS)]
        dst = folder / f"case{i:05d}_{kind}.mdf"
        try:
            description = mutate(src, dst, kind, rng)
        except Exception as exc:
            dst.unlink(missing_ok=True)
            description = f"{kind}: not applicable ({type(exc).__name__})"
            continue
        cases.append((dst, f"{src.name}: {description}"))
    return cases


def special_paths(folder: Path, valid: Path) -> list[tuple[Path, str]]:
    """A FIFO, a symlink loop, a dangling symlink, a name too long, a folder, /dev/zero."""
    folder.mkdir(parents=True, exist_ok=True)
    cases = []
    fifo = folder / "x.mdf"
    if not fifo.exists():
        os.mkfifo(fifo)
    cases.append((fifo, "FIFO named x.mdf"))
    a, b = folder / "loop_a.mdf", folder / "loop_b.mdf"
    if not a.is_symlink():
        os.symlink(b, a)
        os.symlink(a, b)
    cases.append((a, "symbolic-link loop"))
    dangling = folder / "dangling.mdf"
    if not dangling.is_symlink():
        os.symlink(folder / "nothing_here.mdf", dangling)
    cases.append((dangling, "dangling symbolic link"))
    cases.append((folder / ("n" * 300 + ".mdf"), "name too long"))
    cases.append((folder, "a folder"))
    cases.append((Path("/dev/zero"), "character device"))
    link = folder / "link_to_valid.mdf"
    if not link.is_symlink():
        os.symlink(valid, link)
    cases.append((link, "symbolic link to a valid file"))
    return cases

"""The one method registry: tasks, an enhancement method, named normalisations, per-method help.

Mutation check (a throwaway run, 2026-12-01): dividing PP-MPI's rho_abs by 10 (in
``recon/ppmpi.py``) makes ``test_ppmpi_is_admm_with_the_documented_rho_scaling`` fail.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.progress import Progress
from napari_mpi.recon import registry
from napari_mpi.recon.normalization import Normalization, weight_scale
from napari_mpi.recon.operators import real_rhs, real_stack


def test_every_builtin_module_registers_the_names_it_declares():
    for module, names in registry.BUILTIN_MODULES.items():
        importlib.import_module(module)
        for name in names:
            assert registry.get_method(name).solve.__module__ == module
    enhancers = [m.name for m in nm.methods() if m.task == "enhance"]
    assert enhancers == ["richardson-lucy", "wiener", "csdnet", "unet3d", "edsr3d", "rcan3d",
                         "rrdb3d", "esrgan3d", "dcgan", "dccdm", "ddpm3d"]  # fmt: skip
    assert all(m.task == "reconstruct" for m in nm.methods() if m.name not in enhancers)
    assert nm.methods("enhance") == [m for m in nm.methods() if m.task == "enhance"]
    with pytest.raises(ValueError, match="task must be one of"):
        nm.methods("denoise")
    with pytest.raises(ValueError, match="unknown enhancement method 'kaczmarz'"):
        registry.get_method("kaczmarz", task="enhance")


@pytest.fixture
def toy_enhancement():
    """A registered image -> image method (removed again after the test)."""

    def iter_scale(image, factor=2.0):
        yield Progress(0, 1, "scaling")
        yield Progress(1, 1, "scaling")
        return image.data * factor

    method = registry.register(
        registry.Method(
            name="toy-scale",
            title="Scale",
            description="multiplies the image",
            params=(registry.Param("factor", float, 2.0, "factor", 0.0),),
            solve=iter_scale,
            task="enhance",
        )
    )
    yield method
    registry._REGISTRY.pop(method.name)


def test_an_enhancement_method_has_its_place(toy_enhancement, capsys):
    image = nm.MPIImage(np.ones((1, 2, 3, 4), np.float32), (2e-3, 3e-3, 4e-3), (0.0, 0.0, 0.0))
    out = nm.enhance_image(image, "toy-scale", factor=3.0)
    assert isinstance(out, nm.MPIImage)
    np.testing.assert_allclose(out.data, 3.0)
    np.testing.assert_allclose(out.fov, image.fov)
    assert out.metadata["method"] == "toy-scale"
    assert out.metadata["params"] == {"factor": 3.0}
    assert toy_enhancement in nm.methods("enhance")
    with pytest.raises(ValueError, match="unknown reconstruction method"):
        nm.reconstruct(None, None, "toy-scale")
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    tasks = {m["name"]: m["task"] for m in listed}
    assert tasks["toy-scale"] == "enhance" and tasks["kaczmarz"] == "reconstruct"
    assert main(["methods", "--task", "enhance"]) == 0
    text = capsys.readouterr().out
    assert "toy-scale" in text and "kaczmarz" not in text
    with pytest.raises(ValueError, match="task must be one of"):
        registry.Method("x", "x", "x", (), iter, task="denoise")


def test_methods_json_lists_both_tasks(capsys):
    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    assert "reconstruct (" in text and "enhance (" in text
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    admm = next(m for m in listed if m["name"] == "admm")
    lam = next(p for p in admm["params"] if p["name"] == "lam")
    assert lam["normalization"] == "normalization"
    assert "max|A^T b|" in lam["help"]
    rho = next(p for p in admm["params"] if p["name"] == "rho")
    assert rho["normalization"] == "system-matrix" and "||S||_F^2 / N" in rho["help"]


def test_cli_help_is_right_for_every_method_of_a_shared_option(capsys):
    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    text = text[text.index("method options") :]
    owners: dict[str, list] = {}
    for m in nm.methods("reconstruct"):
        for p in m.params:
            owners.setdefault(p.name, []).append(m)
    shared = {name: ms for name, ms in owners.items() if len(ms) > 1}
    assert {"lam", "iterations", "model", "rho"} <= set(shared)
    for name, ms in shared.items():
        option = text[text.index(f"--{name.replace('_', '-')} VALUE") :]
        option = option[: option.index(" --", 3)] if " --" in option[3:] else option
        for m in ms:
            assert m.name in option, (name, m.name)
            help_text = " ".join(m.param_help(m.param(name)).split())
            assert help_text in option, (name, m.name, help_text)
    # the two scalings of lam are told apart
    lam = text[text.index("--lam VALUE") : text.index("--sweeps VALUE")]
    assert "max|A^T b|" in lam and "||S||_F^2 / N" in lam


def test_named_normalisations_scale_lam_as_documented(two_points_2d):
    sm, u, _ = two_points_2d
    a = real_stack(sm.matrix)
    energy = float(np.sum(a**2)) / a.shape[1]
    # ADMM: measurement (default) == none with lam * max|A^T b|
    atb = a.T @ real_rhs(u[:1])
    peak = float(weight_scale("measurement", atb=atb)[0, 0])
    assert peak == pytest.approx(np.max(np.abs(atb)))
    kw = {"selection": None, "iterations": 30}
    ref = nm.reconstruct(sm, u[:1], "admm", lam=1e-3, **kw).data
    same = nm.reconstruct(sm, u[:1], "admm", lam=1e-3 * peak, normalization="none", **kw).data
    np.testing.assert_allclose(same, ref, rtol=1e-4, atol=1e-6 * ref.max())
    by_energy = nm.reconstruct(
        sm, u[:1], "admm", lam=1e-3 * peak / energy, normalization="system-matrix", **kw
    ).data
    np.testing.assert_allclose(by_energy, ref, rtol=1e-4, atol=1e-6 * ref.max())
    # CGNR and pinv: system-matrix (default) == none with lam * ||S||_F^2 / N
    for method in ("cgnr", "pinv"):
        ref = nm.reconstruct(sm, u[:1], method, selection=None, lam=0.01).data
        same = nm.reconstruct(
            sm, u[:1], method, selection=None, lam=0.01 * energy, normalization="none"
        ).data
        np.testing.assert_allclose(same, ref, rtol=1e-4, atol=1e-5 * ref.max())
    with pytest.raises(ValueError, match="normalization"):
        nm.reconstruct(sm, u[:1], "kaczmarz", normalization="measurement")
    assert Normalization("system-matrix") is Normalization.SYSTEM_MATRIX


class _Identity:
    """A stand-in denoiser: returns its input (so PP-MPI is plain non-negative ADMM)."""

    def __call__(self, batch):
        return batch

    def to(self, device):
        """Like a torch module: already wherever it is asked to be."""
        return self


def test_ppmpi_is_admm_with_the_documented_rho_scaling(two_points_2d, tmp_path):
    from napari_mpi.recon import ppmpi

    sm, u, _ = two_points_2d
    folder = tmp_path / "identity"
    ppmpi._MODELS[str(Path(folder).resolve())] = _Identity()
    try:
        rho, iterations = 0.2, 6
        out = nm.reconstruct(
            sm, u[:1], "ppmpi", selection=None, model=str(folder), rho=rho, iterations=iterations
        ).data.reshape(-1)
    finally:
        ppmpi._MODELS.pop(str(Path(folder).resolve()))
    # the same iteration written out, rho_abs = rho ||S||_F^2 / N (docs/reconstruction.md)
    a = real_stack(sm.matrix)
    n = a.shape[1]
    rho_abs = rho * np.sum(np.abs(sm.matrix.astype(np.complex128)) ** 2) / n
    atb = a.T @ real_rhs(u[:1])[:, 0]
    inverse = np.linalg.inv(a.T @ a + rho_abs * np.eye(n))
    z = np.zeros(n)
    y = np.zeros(n)
    for _ in range(iterations):
        x = inverse @ (atb + rho_abs * (z - y))
        z = np.maximum(np.maximum(x + y, 0.0), 0.0)
        y = y + x - z
    np.testing.assert_allclose(out, z, rtol=1e-3, atol=1e-4 * z.max())


def test_cgnr_and_pinv_are_findable_by_name_and_the_old_module_warns():
    import sys

    from napari_mpi.recon import cgnr, pinv

    assert cgnr.iter_cgnr is registry.get_method("cgnr").solve
    assert pinv.iter_pinv is registry.get_method("pinv").solve
    sys.modules.pop("napari_mpi.recon.direct", None)
    with pytest.warns(DeprecationWarning, match="recon.pinv"):
        from napari_mpi.recon.direct import reconstruction_matrix
    assert reconstruction_matrix is pinv.reconstruction_matrix

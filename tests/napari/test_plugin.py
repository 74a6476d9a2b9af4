"""Reader, writer and sample data inside a real napari viewer (run under Xvfb)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import napari_mpi as nm
from mdf_factory import Layout, write_mdf_file
from napari_mpi._napari.reader import napari_get_reader

pytestmark = pytest.mark.gui


def test_reader_rejects_non_mdf_hdf5(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as h5:
        h5["x"] = np.arange(4)
    assert napari_get_reader(str(path)) is None
    assert napari_get_reader(str(tmp_path / "image.tif")) is None


def test_open_real_calibration_in_viewer(make_napari_viewer, shared_mdf):
    viewer = make_napari_viewer()
    layers = viewer.open(str(shared_mdf / "systemMatrix.mdf"), plugin="napari-mpi")
    assert [type(la).__name__ for la in layers] == ["Image", "Points"]
    layer, labels = layers
    sm = layer.metadata["system_matrix"]
    assert isinstance(sm, nm.SystemMatrix)
    assert layer.data.shape == (77, 1, 9)  # rows, y, x (z of one voxel dropped)
    # each row scaled to its maximum (one contrast range shows every row)
    magnitude = np.abs(sm.patterns()[:, 0])
    scale = layer.metadata["row_scale"]
    np.testing.assert_allclose(layer.data * scale[:, None, None], magnitude, rtol=1e-5)
    assert layer.data.max() == pytest.approx(1.0) and tuple(layer.contrast_limits) == (0, 1)
    # mm: voxel 10 mm along x, first voxel centre at 156 - 45 + 5 mm
    np.testing.assert_allclose(layer.scale, [1, 1, 10])
    np.testing.assert_allclose(layer.translate, [0, -11.2, 116.0])
    assert layer.metadata["row_labels"][1].startswith("channel 0, 25.699 kHz")
    # one label per row slice, shown as text at the FOV corner
    assert labels.data.shape == (77, 3)
    np.testing.assert_array_equal(labels.data[:, 0], np.arange(77))
    assert list(labels.text.values) == [
        f"row {i}: {text}" for i, text in enumerate(layer.metadata["row_labels"])
    ]
    # the viewer opens the stack at its strongest row (highest stored SNR)
    start = layer.metadata["start_row"]
    if sm.snr is not None:
        assert start == int(np.nanargmax(sm.snr))
    assert viewer.dims.current_step[0] == start


def test_open_measurement_and_reconstruction(make_napari_viewer, tmp_path):
    meas = write_mdf_file(tmp_path / "meas.mdf", Layout(kind="measurement", frames=4))
    img = nm.MPIImage(
        np.random.default_rng(0).random((1, 1, 6, 8)), fov=[0.001, 0.012, 0.016], center=[0, 0, 0]
    )
    reco = nm.write_mdf(tmp_path / "reco.mdf", img)
    viewer = make_napari_viewer()
    (spectra,) = viewer.open(str(meas.path), plugin="napari-mpi")
    # spectra are not spatial: an empty layer carries them, outside the mm world
    assert len(spectra.data) == 0 and viewer.dims.ndim == 2
    assert spectra.metadata["spectra"].shape == (4, 2, 17)  # frame, channel, frequency
    np.testing.assert_allclose(spectra.metadata["spectra"], meas.spectra[:, 0], rtol=1e-5)
    (image,) = viewer.open(str(reco), plugin="napari-mpi")
    np.testing.assert_allclose(image.data, img.data[0, 0])
    np.testing.assert_allclose(image.scale, [2, 2])
    np.testing.assert_allclose(image.translate, [-5, -7])


def test_writer_saves_image_layer_as_reconstruction(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    data = np.random.default_rng(1).random((5, 7)).astype(np.float32)
    layer = viewer.add_image(data, scale=(2.0, 3.0), translate=(-4.0, 1.5), name="phantom")
    target = tmp_path / "saved.mdf"
    written = layer.save(str(target), plugin="napari-mpi")
    assert written == [str(target)]
    with nm.read_mdf(target) as f:
        back = f.image()
    np.testing.assert_array_equal(back.data[0, 0], data)
    np.testing.assert_allclose(back.voxel_size[1:], [0.002, 0.003])
    np.testing.assert_allclose(back.grid.translate_mm[1:], [-4.0, 1.5])
    # napari's save dialog has already asked: saving again replaces the file
    layer.data = data * 2
    assert layer.save(str(target), plugin="napari-mpi") == [str(target)]
    with nm.read_mdf(target) as f:
        np.testing.assert_array_equal(f.image().data[0, 0], data * 2)


def test_writer_refuses_layers_that_are_not_images_in_space(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    calibration, _rows, _phantom, _meas = viewer.open_sample("napari-mpi", "example-2d")
    rgb = viewer.add_image(np.zeros((4, 5, 3), np.uint8), rgb=True, name="photo")
    for layer, reason in ((calibration, "system-matrix stack"), (rgb, "RGB")):
        target = tmp_path / f"{layer.name}.mdf"
        with pytest.raises(Exception, match=reason):
            layer.save(str(target), plugin="napari-mpi")
        assert not target.exists()


def test_reader_writer_round_trip_keeps_geometry(make_napari_viewer, tmp_path):
    img = nm.MPIImage(
        np.random.default_rng(2).random((3, 2, 4, 5)), fov=[0.004, 0.008, 0.01], center=[1e-3, 0, 0]
    )
    src = nm.write_mdf(tmp_path / "src.mdf", img)
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(src), plugin="napari-mpi")
    layer.save(str(tmp_path / "copy.mdf"), plugin="napari-mpi")
    with nm.read_mdf(tmp_path / "copy.mdf") as f:
        back = f.image()
    np.testing.assert_array_equal(back.data, img.data)
    np.testing.assert_allclose(back.center, img.center)
    np.testing.assert_allclose(back.fov, img.fov)


def test_sample_data_offline(make_napari_viewer):
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-mpi", "calibration-2d")
    assert len(layers) == 2
    layer = layers[0]
    sm = layer.metadata["system_matrix"]
    assert layer.data.shape == (sm.num_rows, 15, 15)
    np.testing.assert_allclose(layer.scale[1:], [1.6, 1.6])
    np.testing.assert_allclose(layer.translate[1:], [-11.2, -11.2])


def test_metadata_only_file_gives_clear_error(make_napari_viewer, shared_mdf):
    viewer = make_napari_viewer()
    with pytest.raises(Exception, match="metadata-only"):
        viewer.open(str(shared_mdf / "tmp.mdf"), plugin="napari-mpi")
    assert len(viewer.layers) == 0


def test_2d_and_3d_examples(make_napari_viewer):
    viewer = make_napari_viewer()
    layers2 = viewer.open_sample("napari-mpi", "example-2d")
    assert [la.name for la in layers2] == [
        "system matrix",
        "system matrix rows",
        "phantom",
        "measurement (30 dB)",
    ]
    np.testing.assert_allclose(layers2[2].scale, [24 / 95, 24 / 95])
    layers3 = viewer.open_sample("napari-mpi", "example-3d")
    phantom, scan = layers3
    assert phantom.data.shape == scan.data.shape == (16, 32, 32)
    np.testing.assert_allclose(phantom.scale, [0.75, 0.75, 0.75])


def test_large_calibration_is_shown_partially(tmp_path, monkeypatch):
    """A calibration over the display budget opens with its strongest rows, and says so."""
    from napari_mpi._napari import reader

    truth = write_mdf_file(tmp_path / "big.mdf", Layout(with_snr=True, fast=True))
    monkeypatch.setattr(reader, "DISPLAY_LIMIT_BYTES", 12 * 8 * 10)  # room for 10 rows
    with pytest.warns(UserWarning, match="showing 10 rows"):
        (image, _labels) = reader.read_layers(str(truth.path))
    sm = image[1]["metadata"]["system_matrix"]
    assert sm.num_rows == 10
    assert np.all(sm.snr >= np.sort(truth.snr.ravel())[::-1][9])
    no_snr = write_mdf_file(tmp_path / "nosnr.mdf", Layout())
    with pytest.warns(UserWarning, match="max_frequency"):
        (image, _labels) = reader.read_layers(str(no_snr.path))
    assert image[1]["metadata"]["system_matrix"].frequency_indices.max() <= 4


def test_every_widget_opens_from_the_plugins_menu(make_napari_viewer):
    """napari hands plugin docks a proxy of the viewer; each of the plugin's widgets opens."""
    from importlib.resources import files

    import yaml

    manifest = yaml.safe_load(files("napari_mpi").joinpath("napari.yaml").read_text())
    names = [w["display_name"] for w in manifest["contributions"]["widgets"]]
    assert "Enhancement" in names
    viewer = make_napari_viewer()
    for name in names:
        _dock, widget = viewer.window.add_plugin_dock_widget("napari-mpi", name)
        assert widget is not None, name

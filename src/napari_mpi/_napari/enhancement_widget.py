"""The Enhancement dock widget: sharpen a 3D image layer with any registered enhancement
method (deconvolution, the learned networks) in a thread worker, and add the result as a new
layer on the input's grid (same ``scale`` and ``translate``, so it overlays the input and the
phantom). The input layer is never modified. A method registered with
``extra["accepts_2d"]`` (``dcgan``) also takes 2D image layers (y, x); on a 3D layer it works
slice by slice along the axis chosen in its fields.

The methods and their fields come from the registry (``methods(task="enhance")`` and each
method's ``params``), so a new method appears here without changes; a text parameter named
``model`` gets a folder button. Everything that can be checked without reading the data (the
layer's type, dimensions, parameters) is checked before the worker starts; copying the data,
the NaN / infinity check and the enhancement run in the worker.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, LineEdit

from ..image import MPIImage
from ..progress import Progress
from ..recon.registry import get_method, iter_enhance, methods
from . import _workers, view
from ._messages import status_label
from .layers import image_layer
from .reconstruction_widget import _param_widget
from .writer import refusal

if TYPE_CHECKING:
    import napari

#: ``metadata["kind"]`` of the layers this widget adds.
KIND = "enhancement"
#: ``metadata["kind"]`` of a sampler's per-voxel standard-deviation layer
UNCERTAINTY_KIND = "uncertainty"
#: Layer kinds not chosen as the input on their own when they appear (a phantom is the
#: reference; an enhanced result and its uncertainty are outputs).
_NOT_INPUTS = ("phantom", KIND, UNCERTAINTY_KIND)
_HOW_TO_GET_ONE = (
    "open a 3D volume (a reconstruction file, File > Open Sample > napari-mpi > 3D example, "
    "or a simulation's x-space image)"
)


def enhance_names() -> list[str]:
    """The enhancement methods offered, from the registry."""
    return [m.name for m in methods(task="enhance")]


def _param_field(p, help_text: str):
    """A widget for one enhancement parameter; a text ``model`` gets a folder button."""
    if p.name == "model" and p.kind not in (bool, int, float, "choice"):
        edit = FileEdit(
            name=p.name, label="model", mode="d", tooltip=help_text,
            value="" if p.default is None else str(p.default),
        )  # fmt: skip
        edit.choose_btn.text = "Folder..."  # "Choose directory" widened the dock by ~50 px
        edit.choose_btn.tooltip = "choose a model folder (with card.json); 'default': shipped"
        return edit
    return _param_widget(p, help_text)


def _layer_kind(layer) -> str:
    """'Labels', 'Shapes', ... : the napari layer class name."""
    return type(layer).__name__


# -- from a layer to a request and a volume -----------------------------------------------------
def two_d_methods() -> list[str]:
    """The enhancement methods that take 2D images (``extra["accepts_2d"]``)."""
    return [m.name for m in methods(task="enhance") if m.extra.get("accepts_2d")]


def layer_request(layer, allow_2d: bool = False) -> dict:
    """What the worker needs from an image layer, read on the main thread without copying
    the data; ValueError (naming the layer) for a layer that is no 3D image in space (or,
    with ``allow_2d``, no 2D image either: a method such as ``dcgan`` takes (y, x) images).

    Returns
    -------
    dict
        ``name``, ``data`` (the layer's array, not copied), ``frames`` (1, or the frame count
        of a (frames, z, y, x) layer), ``grid_shape`` (z, y, x; z = 1 for a 2D image),
        ``scale`` and ``translate`` (the layer's, mm), ``metadata`` (the image's own
        metadata, e.g. its ``degradation`` card).
    """
    from napari.layers import Image

    if layer is None:
        raise ValueError(f"image: no image layer to enhance; {_HOW_TO_GET_ONE}")
    if not isinstance(layer, Image):
        raise ValueError(
            f"image: '{layer.name}' is a {_layer_kind(layer)} layer, not an image; choose an "
            "image layer holding a 3D volume (z, y, x)"
        )
    reason = refusal(layer.as_layer_data_tuple()[1])
    if reason is not None:
        raise ValueError(f"image: '{layer.name}' cannot be enhanced: {reason}")
    if layer.multiscale:
        raise ValueError(
            f"image: '{layer.name}' is a multiscale (pyramid) layer; open it at one resolution"
        )
    data = layer.data
    shape = tuple(int(n) for n in data.shape)
    if np.iscomplexobj(np.empty(0, dtype=data.dtype)):
        raise ValueError(f"image: '{layer.name}' is complex; enhance its magnitude")
    if 0 in shape:
        raise ValueError(f"image: '{layer.name}' is empty (shape {shape}); {_HOW_TO_GET_ONE}")
    source = layer.metadata.get("mpi_image")
    if isinstance(source, MPIImage) and source.data.size == int(np.prod(shape)):
        frames, grid_shape = source.num_frames, tuple(source.grid_shape)
        metadata = dict(source.metadata)
    else:
        frames = shape[0] if len(shape) == 4 else 1
        grid_shape = shape[-3:] if len(shape) >= 3 else (1, *shape)
        metadata = {k: v for k, v in layer.metadata.items() if k not in ("mpi_image", "kind")}
    flat_2d = grid_shape[0] == 1 and min(grid_shape[1:]) >= 2 and len(shape) in (2, 3)
    if allow_2d and flat_2d and (len(shape) == 2 or frames == shape[0]):
        pass  # a 2D image (or frames of one), for a method that takes 2D images
    elif (
        len(shape) not in (3, 4)
        or any(n < 2 for n in grid_shape)
        or (len(shape) == 4 and (frames != shape[0]))
    ):
        what = f"{len(shape)}-D layer" if len(shape) not in (2, 3, 4) else "2D image"
        frame_text = f" with {frames} frames" if frames > 1 else ""
        flat = two_d_methods()
        verb = "takes" if len(flat) == 1 else "take"
        hint = f" ({', '.join(flat)} {verb} 2D images)" if flat and flat_2d else ""
        raise ValueError(
            f"image: '{layer.name}' is a {what}{frame_text} (shape {shape}); this enhancement "
            "method takes a 3D volume (z, y, x) with at least 2 voxels along each axis" + hint
        )
    metadata.pop("mpi_image", None)
    metadata.pop("kind", None)
    return {
        "name": layer.name,
        "data": data,
        "frames": frames,
        "grid_shape": tuple(int(n) for n in grid_shape),
        "scale": tuple(float(s) for s in layer.scale),
        "translate": tuple(float(t) for t in layer.translate),
        "metadata": metadata,
    }


def request_volume(req: dict) -> MPIImage:
    """The MPIImage of a :func:`layer_request` (copies the data; run it in the worker).

    ``scale`` / ``translate`` (mm, the last three axes z, y, x) become the field of view and
    centre (m); ValueError naming the layer for NaN or infinite voxels or an all-zero volume.
    """
    name = req["name"]
    grid_shape = tuple(req.get("grid_shape") or np.shape(req["data"])[-3:])
    data = np.array(req["data"], dtype=np.float32).reshape((req["frames"], *grid_shape))
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise ValueError(
            f"image: '{name}' has {bad} NaN or infinite voxel(s) of {data.size}; replace them "
            "(e.g. with 0) before enhancing"
        )
    if not np.any(data):
        raise ValueError(f"image: '{name}' holds no signal (every voxel is 0); nothing to enhance")
    spatial = 3 if grid_shape[0] > 1 else 2  # a 2D image's layer has (y, x) scales only
    scale = np.asarray(req["scale"][-spatial:], dtype=np.float64) * 1e-3
    translate = np.asarray(req["translate"][-spatial:], dtype=np.float64) * 1e-3
    if spatial == 2:  # a thin z axis (no extent), as the simulator's 2D grids
        scale, translate = np.r_[0.0, scale], np.r_[0.0, translate]
    shape = np.asarray(data.shape[1:])
    fov = scale * shape
    center = translate + (shape - 1) * scale / 2
    return MPIImage(data, fov, center, metadata=dict(req["metadata"]))


def enhancement_work(req: dict, method: str, params: dict):
    """The worker's generator: copy and check the volume, enhance, build the layer data.

    Returns ``(image, layer_data, seconds)``: the enhanced MPIImage, its layer-data tuple
    (named ``"<input> (<method>)"``, with the input layer's scale and translate) and the time
    the enhancement took. A sampler's per-voxel standard deviation (``metadata
    ["uncertainty"]``, diffusion methods with samples > 1) becomes a second layer-data tuple,
    ``"<input> (<method>) uncertainty"`` (magma, additive over the result), kept in the
    result's ``metadata["uncertainty_layer"]``.
    """
    yield Progress(0, 1, f"reading '{req['name']}'")
    image = request_volume(req)
    start = time.perf_counter()
    out = yield from iter_enhance(image, method, **params)
    seconds = time.perf_counter() - start
    out.metadata["input_layer"] = req["name"]
    data, kwargs, kind = image_layer(out, f"{req['name']} ({method})", kind=KIND)
    if data.ndim == len(req["scale"]):  # overlay the input exactly, whatever the rounding
        kwargs["scale"], kwargs["translate"] = req["scale"], req["translate"]
    spread = out.metadata.get("uncertainty")
    if isinstance(spread, MPIImage):
        name = f"{req['name']} ({method}) uncertainty"
        u_data, u_kwargs, u_kind = image_layer(spread, name, kind=UNCERTAINTY_KIND)
        if u_data.ndim == len(req["scale"]):
            u_kwargs["scale"], u_kwargs["translate"] = req["scale"], req["translate"]
        u_kwargs.update(colormap="magma", blending="additive", visible=True)
        out.metadata["uncertainty_layer"] = (u_data, u_kwargs, u_kind)
    return out, (data, kwargs, kind), seconds


class EnhancementWidget(_workers.WorkerWidgetMixin, Container):
    """Enhance a 3D image layer with any registered enhancement method; add the result."""

    task_title = "enhancement"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.image = ComboBox(
            label="image", choices=self._images,
            tooltip="a 3D image layer (z, y, x): a reconstruction, a layered scan, a file; "
            "2D (y, x) images for dcgan",
        )  # fmt: skip
        self.method = ComboBox(label="method", choices=enhance_names())
        self.about = status_label("", label="")
        self.params = Container(labels=True)
        self.extend(
            [self.image, self.method, self.about, self.params, *self._run_controls("Enhance")]
        )
        self.method.changed.connect(self._show_params)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(self._follow_layers)
        self._init_run_state()
        self._show_params(self.method.value)
        self._pick_newest()

    # -- choices ------------------------------------------------------------------------------
    def _images(self, _widget=None) -> list:
        """Image layers in physical space (calibration stacks and RGB pictures are left out)."""
        from napari.layers import Image

        return [
            la
            for la in self.viewer.layers
            if isinstance(la, Image) and refusal(la.as_layer_data_tuple()[1]) is None
        ]

    def _pick_newest(self) -> None:
        """Choose the newest 3D image that is neither a phantom nor an enhanced result (or the
        newest such 2D image when there is no 3D one)."""
        candidates = [la for la in reversed(self._images())
                      if la.metadata.get("kind") not in _NOT_INPUTS]  # fmt: skip
        for layer in [la for la in candidates if la.ndim >= 3] + candidates:
            self.image.value = layer
            return

    def _follow_layers(self, event=None) -> None:
        """Refresh the choices; a new 3D input layer (not a result) becomes the choice."""
        self.image.reset_choices()
        layer = getattr(event, "value", None)
        if (
            event is not None
            and getattr(event, "type", "") == "inserted"
            and layer in set(self.image.choices)
        ):
            if layer.metadata.get("kind") not in _NOT_INPUTS and layer.ndim >= 2:
                self.image.value = layer

    def _show_params(self, name: str) -> None:
        self.params.clear()
        method = get_method(name, task="enhance")
        if method.kind == "learned":
            view.warm_torch()
        self.about.value = method.description
        self.method.tooltip = f"{method.title}: {method.description}"
        for p in method.params:
            self.params.append(_param_field(p, method.param_help(p)))

    def param_values(self) -> dict:
        """The parameters as set in the widget (an empty text or folder field: the default)."""
        out: dict[str, Any] = {}
        for w in self.params:
            value = w.value
            if isinstance(w, FileEdit):
                value = str(value).strip()
                if value in ("", "."):
                    continue
            elif isinstance(w, LineEdit):
                value = value.strip()
                if value in ("", "None"):
                    continue
            out[w.name] = value
        return out

    # -- running ------------------------------------------------------------------------------
    def _no_image_reason(self) -> str:
        """The message when no image layer is chosen, naming the layers that cannot be used."""
        others = [f"'{la.name}' is a {_layer_kind(la)} layer" for la in self.viewer.layers]
        others = others[:4] + (["..."] if len(others) > 4 else [])
        listed = f" ({', '.join(others)})" if others else ""
        return f"image: no image layer to enhance{listed}; {_HOW_TO_GET_ONE}"

    def start(self) -> None:
        """Check the input and the parameters, then enhance in a worker."""
        if self.state == "running":
            return
        method = self.method.value
        try:
            if method is None:
                raise ValueError("method: no enhancement method is registered")
            entry = get_method(method, task="enhance")
            params = entry.check_params(self.param_values())
            if self.image.value is None:
                raise ValueError(self._no_image_reason())
            req = layer_request(self.image.value, allow_2d=bool(entry.extra.get("accepts_2d")))
        except ValueError as exc:
            self.fail(exc)
            return
        self.launch(lambda: enhancement_work(req, method, params), self._add_result)

    def fail(self, exc: Exception) -> None:
        """Report once; a refused model mismatch also says which box proceeds anyway."""
        names = {w.name for w in self.params}
        text = str(exc)
        if isinstance(exc, ValueError) and "allow_mismatch" in text and "allow_mismatch" in names:
            exc = ValueError(f"{text} (here: tick 'allow mismatch')")
        super().fail(exc)

    def _add_result(self, result) -> None:
        image, layer_data, seconds = result
        self.result = image
        shape = " x ".join(map(str, image.grid_shape))
        self.status.value = (
            f"done: {image.metadata['method']} of '{image.metadata['input_layer']}' "
            f"({shape} voxels) in {seconds:.1f} s"
        )
        view.publish(self.viewer, last_enhancement=image)
        extra = image.metadata.get("uncertainty_layer")
        residual = image.metadata.get("dc_residual")
        if isinstance(residual, list | tuple) and residual:
            self.status.value += f"; consistency residual {float(np.mean(residual)):.3f}"
        self.add_result_layers([layer_data] + ([extra] if extra is not None else []))

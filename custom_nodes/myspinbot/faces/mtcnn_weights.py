"""Strict loading of the MTCNN weights that ship inside the ``mtcnn`` wheel (1.0.0, MIT).

The wheel stores each network as ``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``: a joblib
pickle, lz4-compressed, of the Keras ``model.get_weights()`` list (written for
``mtcnn/utils/tensorflow.py``'s ``load_weights``). Per layer, in the networks' attribute
order: ``Conv2D`` kernel ``[kh, kw, in, out]`` and bias, ``PReLU`` alpha (``[1, 1, C]`` with
shared spatial axes, ``[C]`` after a dense layer), ``Dense`` kernel ``[in, out]`` and bias.
Those are converted to torch layouts (``[out, in, kh, kw]``, ``[C]``, ``[out, in]``); the
flatten order of the dense layers is handled in the networks (:func:`.layers.keras_flatten`).

The files are read without importing the ``mtcnn`` package (its ``__init__`` imports
TensorFlow) and without general unpickling: only joblib's numpy array records, numpy arrays
and dtypes may appear, anything else is refused. A file whose array count or any shape
differs from the architecture raises ``InvalidModelError`` (``[invalid_model]``).
Imports no ComfyUI module.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..lipsync.errors import InvalidModelError
from .onet import ONet
from .pnet import PNet
from .rnet import RNet

NETWORKS = {"pnet": PNet, "rnet": RNet, "onet": ONet}
_ALLOWED_GLOBALS = {
    ("joblib.numpy_pickle", "NumpyArrayWrapper"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


def weights_dir() -> Path | None:
    """The installed wheel's ``mtcnn/assets/weights`` folder, or ``None`` when ``mtcnn`` is not
    installed or has no such folder. Locates the package without importing it."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"
    return folder if all((folder / f"{n}.lz4").is_file() for n in NETWORKS) else None


def read_keras_arrays(path: str | Path) -> list[np.ndarray]:
    """The list of float32 arrays in one wheel weight file.

    Raises:
        InvalidModelError: unreadable, not an lz4 joblib pickle of arrays, or a pickle that
            names anything but numpy arrays.
    """
    import lz4.frame
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class _ArraysOnly(NumpyUnpickler):
        def find_class(self, module, name):
            if (module, name) not in _ALLOWED_GLOBALS:
                raise InvalidModelError(f"{path}: the pickle names {module}.{name}; only arrays are read",
                                        details={"path": str(path)})
            return super().find_class(module, name)

        def load_build(self):  # an object-dtype array would be unpickled without find_class
            state = self.stack[-1]
            if isinstance(self.stack[-2], NumpyArrayWrapper) and "object" in str(state.get("dtype", "")):
                raise InvalidModelError(f"{path}: object arrays are not read", details={"path": str(path)})
            super().load_build()

        dispatch = dict(NumpyUnpickler.dispatch)
        dispatch[ord("b")] = load_build

    try:
        data = lz4.frame.decompress(Path(path).read_bytes())
        arrays = _ArraysOnly(str(path), io.BytesIO(data), ensure_native_byte_order=True).load()
    except InvalidModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any reading failure is an unusable file
        raise InvalidModelError(f"{path}: not an MTCNN weight file ({exc})", details={"path": str(path)}) from exc
    if not isinstance(arrays, list) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise InvalidModelError(f"{path}: not a list of arrays", details={"path": str(path)})
    return arrays


def _to_torch(array: np.ndarray, target: torch.Tensor) -> torch.Tensor:
    a = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if a.ndim == 4:
        return a.permute(3, 2, 0, 1).contiguous()
    if a.ndim == 2:
        return a.t().contiguous()
    return a.reshape(target.shape)  # biases; PReLU alpha [1, 1, C] -> [C]


def load_network(name: str, path: str | Path | None = None) -> nn.Module:
    """One network (``"pnet"``, ``"rnet"`` or ``"onet"``) in eval mode, gradients off, from
    ``path`` or the installed wheel's file.

    Raises:
        InvalidModelError: the file is missing or unreadable, or its array count or a shape
            does not fit the architecture (``details["reshaped"]`` names the parameters).
    """
    net = NETWORKS[name]()
    if path is None:
        folder = weights_dir()
        if folder is None:
            raise InvalidModelError("the mtcnn wheel's weight files are not installed (pip install mtcnn)",
                                    details={"path": f"mtcnn/assets/weights/{name}.lz4"})
        path = folder / f"{name}.lz4"
    arrays = read_keras_arrays(path)
    params = net.state_dict()
    details = {"path": str(path), "missing": [], "unexpected": [], "reshaped": []}
    if len(arrays) != len(params):
        details["missing" if len(arrays) < len(params) else "unexpected"] = (
            list(params)[len(arrays):] or [f"array {i}" for i in range(len(params), len(arrays))])
    for (key, expected), array in zip(keras_shapes(net).items(), arrays):
        if tuple(array.shape) != expected:
            details["reshaped"].append(f"{key}: file {list(array.shape)} vs model {list(expected)}")
    if details["missing"] or details["unexpected"] or details["reshaped"]:
        wrong = details["missing"] + details["unexpected"] + details["reshaped"]
        raise InvalidModelError(f"{path}: the arrays do not fit {name}: {', '.join(wrong[:4])}", details=details)
    net.load_state_dict({k: _to_torch(a, t) for (k, t), a in zip(params.items(), arrays)}, strict=True)
    return net.eval().requires_grad_(False)


def keras_shapes(net: nn.Module) -> dict[str, tuple[int, ...]]:
    """The Keras shape of each torch parameter, in file order: conv ``[o, i, h, w]`` ->
    ``[h, w, i, o]``, dense ``[o, i]`` -> ``[i, o]``, a PReLU after a conv ``[C]`` ->
    ``[1, 1, C]`` (alpha shared over height and width), after a dense layer ``[C]``."""
    shapes, after_conv = {}, False
    for key, tensor in net.state_dict().items():
        shape = tuple(tensor.shape)
        if len(shape) == 4:
            shapes[key], after_conv = (shape[2], shape[3], shape[1], shape[0]), True
        elif len(shape) == 2:
            shapes[key], after_conv = (shape[1], shape[0]), False
        elif key.startswith("prelu") and after_conv:
            shapes[key] = (1, 1, shape[0])
        else:
            shapes[key] = shape
    return shapes

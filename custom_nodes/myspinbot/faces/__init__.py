"""Face detection and five-point landmarks: MTCNN (Zhang et al., "Joint Face Detection and
Alignment using Multi-task Cascaded Convolutional Networks", IEEE SPL 2016), our PyTorch port
loading the MIT-licensed weights shipped in the ``mtcnn`` wheel (no download, no TensorFlow).
Imports no ComfyUI module; importing it loads nothing.
"""

from .mtcnn import MTCNN, Face
from .mtcnn_weights import load_network, read_keras_arrays, weights_dir

__all__ = ["MTCNN", "Face", "load_network", "read_keras_arrays", "weights_dir"]

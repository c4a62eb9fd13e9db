"""Face detection and landmarks.

* MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
  Convolutional Networks", IEEE SPL 2016): our PyTorch port loading the MIT-licensed weights
  shipped in the ``mtcnn`` wheel (no download, no TensorFlow); faces and five points.
* RetinaFace-ResNet50 (Deng et al., CVPR 2020) and the 98-point AWing FAN (Wang et al., ICCV
  2019): our code for facexlib's ``detection_Resnet50_Final.pth`` / ``alignment_WFLW_4HG.pth``
  (SadTalker's authors' landmark pair), strictly loaded; 98 -> 68 -> 5 points.

Imports no ComfyUI module; importing it loads nothing.
"""

from .facexlib_weights import FAN_FILE, RETINAFACE_FILE, load_fan98, load_retinaface
from .fan98 import FAN98
from .fan98_points import heatmap_peaks, landmarks98, to_5, to_68
from .mtcnn import MTCNN, Face
from .mtcnn_weights import load_network, read_keras_arrays, weights_dir
from .retinaface import RetinaFace
from .retinaface_decode import Detection, detect

__all__ = ["FAN98", "FAN_FILE", "MTCNN", "RETINAFACE_FILE", "Detection", "Face", "RetinaFace", "detect",
           "heatmap_peaks", "landmarks98", "load_fan98", "load_network", "load_retinaface", "read_keras_arrays",
           "to_5", "to_68", "weights_dir"]

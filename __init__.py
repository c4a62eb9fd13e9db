"""ComfyUI entry when this repository is cloned into ``ComfyUI/custom_nodes/``.

ComfyUI imports this file as a package; the pack itself lives in
``custom_nodes/myspinbot`` (reached through the ``custom_nodes`` namespace package, which
holds no ``.py`` file of its own so that ``main.py --base-directory <repo>`` loads the same
package directly). Importing does nothing but bind names.
"""

from .custom_nodes.myspinbot import comfy_entrypoint

WEB_DIRECTORY = "./web/js"

__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]

"""myspinbot: talking-head videos from a prompt, a portrait and a voice, as ComfyUI nodes.

ComfyUI calls :func:`comfy_entrypoint` while loading custom nodes. Importing this package
has no side effects: no ComfyUI module, model, thread or network is touched until then, so
the engine subpackages (``speech``, ``animate``, ``video``, ...) import and test without
ComfyUI.
"""

WEB_DIRECTORY = "../../web/js"


async def comfy_entrypoint():
    """Return the pack's ``ComfyExtension`` (V3 node schema); ComfyUI calls this once."""
    from .extension import MySpinBotExtension

    return MySpinBotExtension()


__all__ = ["comfy_entrypoint", "WEB_DIRECTORY"]

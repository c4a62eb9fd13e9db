"""The ComfyExtension: lists the pack's V3 nodes and attaches the job API to ComfyUI's server."""

from __future__ import annotations

import logging

from comfy_api.latest import ComfyExtension, io

log = logging.getLogger("myspinbot")


class MySpinBotExtension(ComfyExtension):
    async def on_load(self) -> None:
        """Attach the ``/myspinbot`` routes to the running PromptServer (no work beyond that)."""
        from server import PromptServer

        from .server.plugin import attach

        if PromptServer.instance is None:  # imported by a tool, not by a running ComfyUI
            log.info("myspinbot: no PromptServer; job API not attached")
            return
        attach(PromptServer.instance, node_ids=[node.GET_SCHEMA().node_id for node in await self.get_node_list()])

    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .nodes.animate_portrait import AnimatePortraitLite
        from .nodes.finetune_f5 import FineTuneF5Voice
        from .nodes.infinitetalk import InfiniteTalk
        from .nodes.lipsync_score import LipSyncScore
        from .nodes.script_writer import ScriptWriterOllama
        from .nodes.sadtalker import LoadSadTalker, SadTalker
        from .nodes.save_minio import SaveToMinIO
        from .nodes.speak import SpeakEspeak
        from .nodes.train_lora import TrainCharacterLora
        from .nodes.upscale_video import UpscaleVideo
        from .nodes.voice_clone import VoiceCloneF5
        from .nodes.wav2lip import LipSyncWav2Lip, LoadWav2Lip

        return [ScriptWriterOllama, SpeakEspeak, VoiceCloneF5, AnimatePortraitLite, InfiniteTalk, UpscaleVideo, SaveToMinIO,
                 LoadWav2Lip, LipSyncWav2Lip, LipSyncScore, TrainCharacterLora, LoadSadTalker, SadTalker, FineTuneF5Voice]

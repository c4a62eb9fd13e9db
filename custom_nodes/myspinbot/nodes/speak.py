"""Node "MySpinBot Speak (espeak-ng)": text → AUDIO with no model weights."""

from __future__ import annotations

from comfy_api.latest import io

from ..errors import SpeechEngineError
from ..speech import espeak
from ._convert import numpy_to_audio


def _voices() -> list[str]:
    """The voice list for the dropdown; with no espeak-ng installed the node still registers
    (and says how to install it when run)."""
    try:
        return espeak.list_voices()
    except SpeechEngineError:
        return ["en"]


class SpeakEspeak(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotSpeakEspeak",
            display_name="MySpinBot Speak (espeak-ng)",
            category="MySpinBot/speech",
            description="Speaks a text with espeak-ng (formant synthesis, no model weights). "
            "The weightless fallback of every myspinbot pipeline.",
            inputs=[
                io.String.Input("text", multiline=True, default="Hello from myspinbot.", tooltip="What to say."),
                io.Combo.Input("voice", options=_voices(), default="en", tooltip="espeak-ng voice / language code."),
                io.Int.Input("rate", default=175, min=80, max=450, step=5, tooltip="Speaking rate in words per minute."),
                io.Int.Input("pitch", default=50, min=0, max=99, tooltip="Base pitch, 0..99 (espeak-ng's scale)."),
            ],
            outputs=[io.Audio.Output("audio")],
        )

    @classmethod
    def execute(cls, text: str, voice: str, rate: int, pitch: int) -> io.NodeOutput:
        speech = espeak.synthesize(text, voice=voice, rate_wpm=rate, pitch=pitch)
        return io.NodeOutput(numpy_to_audio(speech.samples, speech.sample_rate))

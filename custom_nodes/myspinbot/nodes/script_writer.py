"""Node "MySpinBot Script Writer (Ollama)": a prompt → narration, stage description and the
script as JSON, written by a local LLM through Ollama; or the user's own script, verbatim.

Caching: the node defines no fingerprint, so ComfyUI's input-based cache applies: the same
inputs (seed included) reuse the last script, a new seed writes a new one. The ``ollama``
package is imported only when the node runs in mode ``ollama``, so the node registers
without it.
"""

from __future__ import annotations

from comfy_api.latest import io

from ..script import (
    DEFAULT_LANGUAGE,
    DEFAULT_MODEL,
    DEFAULT_STYLE,
    DEFAULT_TIMEOUT_S,
    ScriptSettings,
    chat_request,
    verbatim_script,
    write_script,
)
from ._progress import progress_callback

MODES = ["ollama", "verbatim", "ollama_scene"]
#: Mode -> what the LLM's stage description is for (``script.KINDS``); verbatim asks no LLM.
_KIND = {"ollama": "talking_head", "ollama_scene": "scene"}


class ScriptWriterOllama(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MySpinBotScriptWriterOllama",
            display_name="MySpinBot Script Writer (Ollama)",
            category="MySpinBot/script",
            description="Writes a short talking-head script with a local LLM served by Ollama "
            "(structured JSON output: title, narration, stage description, mood), or passes your own "
            "script through in 'verbatim' mode, cleaned of stage directions and speaker labels. "
            "The Ollama server is OLLAMA_HOST (default http://127.0.0.1:11434).",
            inputs=[
                io.Combo.Input("mode", options=MODES, default="ollama",
                               tooltip="ollama: write the script with the LLM. verbatim: speak the prompt "
                               "text as written (minus [directions], (pauses), *actions*, NAME: labels); no LLM. "
                               "ollama_scene: as ollama, but the stage description is a text-to-image prompt for "
                               "the opening picture (setting, the speaker facing the camera, light, style), as the "
                               "scene pipeline renders it."),
                io.String.Input("prompt", multiline=True, dynamic_prompts=False,
                                default="A one-minute welcome to our channel about home cooking.",
                                tooltip="What the video is about (ollama), or the script itself (verbatim)."),
                io.String.Input("style", display_name="style / system prompt", multiline=True,
                                dynamic_prompts=False, default=DEFAULT_STYLE,
                                tooltip="Tone and persona of the speaker; goes into the system prompt."),
                io.String.Input("model", default=DEFAULT_MODEL,
                                tooltip="An Ollama model that is pulled on the server (`ollama pull <model>`)."),
                io.Float.Input("target_seconds", default=30.0, min=3.0, max=600.0, step=1.0,
                               tooltip="Wanted length of the narration in seconds of speech (≈ 2.5 words per second)."),
                io.String.Input("language", default=DEFAULT_LANGUAGE,
                                tooltip="Language of the narration: a name ('German') or a code ('de')."),
                io.Float.Input("temperature", default=0.8, min=0.0, max=2.0, step=0.05,
                               tooltip="Sampling temperature; 0 is the most predictable."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFF,
                             control_after_generate=io.ControlAfterGenerate.fixed,
                             tooltip="Sampling seed (sent as options.seed). Same inputs and seed reuse the "
                             "cached script; a new seed writes a new one."),
                io.String.Input("keep_alive", default="0",
                                tooltip="How long Ollama keeps the model loaded afterwards: seconds, or a "
                                "duration like '5m'; 0 frees the VRAM before the GPU stages, -1 keeps it."),
                io.Float.Input("timeout", default=DEFAULT_TIMEOUT_S, min=5.0, max=3600.0, step=5.0,
                               tooltip="Seconds to wait for the script (the first load of a model can be slow)."),
            ],
            outputs=[
                io.String.Output("narration", tooltip="The words to speak, without stage directions."),
                io.String.Output("stage_description", tooltip="The speaker, setting and gestures, in words "
                                 "(ollama_scene: a text-to-image prompt for the scene)."),
                io.String.Output("script_json", tooltip="The whole script: {title, narration, stage_description, mood}."),
            ],
        )

    @classmethod
    def execute(cls, mode, prompt, style, model, target_seconds, language, temperature, seed,
                keep_alive, timeout) -> io.NodeOutput:
        if mode == "verbatim":
            script = verbatim_script(prompt)
        else:
            settings = ScriptSettings(
                prompt=prompt, model=model, style=style, target_seconds=target_seconds,
                language=language, temperature=temperature, seed=seed, keep_alive=keep_alive,
                timeout=timeout, stream=True,  # streamed, so a cancel stops it between chunks
                kind=_KIND.get(mode, "talking_head"),
            )
            total = chat_request(settings)["options"]["num_predict"]
            script = write_script(settings, on_progress=progress_callback(total))
        return io.NodeOutput(script.narration, script.stage_description, script.to_json())

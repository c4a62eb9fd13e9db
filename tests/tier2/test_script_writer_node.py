"""The script writer node inside a real ComfyUI, against an Ollama protocol stand-in."""

from __future__ import annotations

import requests


def writer_prompt(mode: str, seed: int = 1, prompt_text: str = "A cheerful welcome to a cooking channel.") -> dict:
    return {
        "1": {"class_type": "MySpinBotScriptWriterOllama", "inputs": {
            "mode": mode, "prompt": prompt_text, "style": "", "model": "llama3.2", "target_seconds": 20.0,
            "language": "English", "temperature": 0.7, "seed": seed, "keep_alive": "0", "timeout": 30.0}},
        "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}},
    }


def test_ollama_mode_sends_keep_alive_0_and_schema(comfy_clone, ollama_standin):
    before = len(ollama_standin.chats())
    entry = comfy_clone.run_prompt(writer_prompt("ollama", seed=11))
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert "cook a simple soup" in str(entry["outputs"]["2"])
    [chat] = ollama_standin.chats()[before:]
    assert chat["model"] == "llama3.2" and chat["keep_alive"] in (0, 0.0)
    assert chat["format"]["required"] == ["title", "narration", "stage_description", "mood"] or set(chat["format"]["required"]) == {"title", "narration", "stage_description", "mood"}
    assert chat["options"]["seed"] == 11
    # Same inputs and seed: ComfyUI's cache answers, Ollama is not asked again.
    comfy_clone.run_prompt(writer_prompt("ollama", seed=11))
    assert len(ollama_standin.chats()) == before + 1


def test_verbatim_mode_needs_no_llm(comfy_clone, ollama_standin):
    before = len(ollama_standin.requests)
    entry = comfy_clone.run_prompt(writer_prompt("verbatim", prompt_text="NARRATOR: Hello there. [waves] Welcome!"))
    assert entry["status"]["status_str"] == "success", entry["status"]
    text = str(entry["outputs"]["2"])
    assert "Hello there." in text and "NARRATOR" not in text and "[waves]" not in text
    assert len(ollama_standin.requests) == before


def test_unreachable_ollama_is_a_clear_node_error(comfy_basedir):
    entry = comfy_basedir.run_prompt(writer_prompt("ollama"))
    assert entry["status"]["status_str"] == "error"
    messages = {m[0]: m[1] for m in entry["status"]["messages"]}
    error = messages["execution_error"]
    assert "[ollama_unreachable]" in error["exception_message"] and "ollama serve" in error["exception_message"]
    assert requests.get(comfy_basedir.url + "/myspinbot/health", timeout=10).status_code == 200

"""myspinbot install helper.

``python install.py``
    What ComfyUI-Manager runs after installing requirements.txt. Does nothing heavy: checks
    that the weightless engines import and prints a short status (never installs anything,
    never touches torch, never downloads).
``python install.py --list``
    The model manifest: licence, size, present/missing in the models directory.
``python install.py --models NAME [NAME ...] [--models-dir DIR]``
    Download models from the Hugging Face hub (resumable, sha256-verified) with a progress bar.

The models directory is, in order: ``--models-dir``; ``$COMFYUI_MODELS_DIR``;
``$COMFYUI_DIR/models``; ``<ComfyUI>/models`` when this repository sits in
``ComfyUI/custom_nodes/``; else ``<repo>/models`` (for ``main.py --base-directory <repo>``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent
PACKAGE_PARENT = REPO / "custom_nodes"


def _import_pack() -> None:
    if str(PACKAGE_PARENT) not in sys.path:
        sys.path.insert(0, str(PACKAGE_PARENT))


def find_models_dir(cli_value: str | None) -> tuple[Path, str]:
    """The ComfyUI models directory and why it was chosen (without importing ComfyUI)."""
    if cli_value:
        return Path(cli_value).expanduser().resolve(), "--models-dir"
    if os.environ.get("COMFYUI_MODELS_DIR"):
        return Path(os.environ["COMFYUI_MODELS_DIR"]).expanduser().resolve(), "$COMFYUI_MODELS_DIR"
    if os.environ.get("COMFYUI_DIR"):
        return (Path(os.environ["COMFYUI_DIR"]).expanduser() / "models").resolve(), "$COMFYUI_DIR/models"
    if REPO.parent.name == "custom_nodes":
        return REPO.parent.parent / "models", "guessed: this repository is in ComfyUI/custom_nodes/"
    return REPO / "models", "guessed: <repo>/models (ComfyUI run with --base-directory <repo>)"


def _locator(models_dir: Path, manifest_path: str | None):
    from myspinbot.models.locate import ModelLocator, models_dir_folder_dirs
    from myspinbot.models.manifest import load_manifest

    manifest = load_manifest(manifest_path)
    return ModelLocator(models_dir_folder_dirs(models_dir), manifest), manifest


def _model_line(entry, status) -> str:
    from myspinbot.models.fetch import format_size

    licence = f"{entry.licence}{', NON-COMMERCIAL' if entry.non_commercial else ''}"
    state = status["state"]
    if status["missing"] and state == "partial":
        state += f" (missing {', '.join(status['missing'])})"
    return f"  {entry.name:<20} {format_size(entry.size_bytes):>11}  {licence:<30} {state}"


def cmd_status(args: argparse.Namespace) -> int:
    """No arguments: the light check ComfyUI-Manager runs."""
    print(f"myspinbot: install check (python {sys.version.split()[0]})")
    ok = True
    for label, module in (("speech (espeak-ng)", "myspinbot.speech"), ("animator (OpenCV)", "myspinbot.animate"),
                          ("video (PyAV)", "myspinbot.video")):
        try:
            __import__(module)
            print(f"  {label:<20} ok")
        except Exception as err:  # noqa: BLE001 - reported, never fatal
            ok = False
            print(f"  {label:<20} NOT importable: {type(err).__name__}: {err}")
    try:
        from myspinbot.speech import available_backend

        print(f"  {'espeak-ng':<20} {available_backend()} backend")
    except Exception as err:  # noqa: BLE001
        print(f"  {'espeak-ng':<20} not available: {getattr(err, 'message', err)}")
    try:
        models_dir, why = find_models_dir(args.models_dir)
        locator, manifest = _locator(models_dir, args.manifest)
        print(f"models directory: {models_dir} ({why})")
        print("optional models (the weightless pipeline needs none; fetch with python install.py --models NAME):")
        for name, entry in manifest.items():
            print(_model_line(entry, locator.status(name, verify=False)))
    except Exception as err:  # noqa: BLE001
        print(f"model manifest: could not be read: {err}")
    if not ok:
        print("some engines do not import: check that requirements.txt is installed in this Python")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from myspinbot.models.fetch import format_size

    models_dir, why = find_models_dir(args.models_dir)
    locator, manifest = _locator(models_dir, args.manifest)
    print(f"models directory: {models_dir} ({why})")
    for name, entry in manifest.items():
        status = locator.status(name, verify=args.verify)
        print(_model_line(entry, status))
        print(f"      {entry.repo_id}{'@' + entry.revision[:12] if entry.revision else ''} -> {status['directory']}")
        print(f"      used by: {', '.join(entry.used_by) or '-'}; {entry.licence_notice}")
        for f in status["files"]:
            size = format_size(f["size_bytes"]) if f["present"] else "missing"
            check = f", sha256 {f['sha256']}" if f["present"] else ""
            print(f"        {f['filename']:<28} {size}{check}")
        for warning in status["warnings"]:
            print(f"      warning: {warning['message']}")
        for extra in status["extras"]:
            print(f"      hand-placed: {extra}")
    if not args.verify:
        print("(sha256 not checked; add --verify to hash the files)")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from myspinbot.errors import MySpinBotError
    from myspinbot.models.fetch import fetch_model, format_size

    models_dir, why = find_models_dir(args.models_dir)
    _, manifest = _locator(models_dir, args.manifest)
    unknown = [n for n in args.models if n not in manifest]
    if unknown:
        print(f"error: unknown model(s): {', '.join(unknown)}; known: {', '.join(manifest)}", file=sys.stderr)
        return 2
    print(f"models directory: {models_dir} ({why})")
    failed = []
    for name in dict.fromkeys(args.models):
        entry = manifest[name]
        target = models_dir / entry.folder
        print(f"{name}: {entry.repo_id} -> {target / entry.subdir if entry.subdir else target} "
              f"({format_size(entry.size_bytes)}; {entry.licence_notice})")
        bars: list = []  # created on the first progress report, so an early refusal prints no empty bar

        def on_progress(done: int, total: int | None, name=name, bars=bars) -> None:
            if not bars:
                bars.append(tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                                 disable=args.quiet, dynamic_ncols=True))
            bar = bars[0]
            if total is not None and bar.total != total:
                bar.total = total
            if done != bar.n:
                bar.update(done - bar.n)

        try:
            paths = fetch_model(entry, target, on_progress)
        except MySpinBotError as err:
            for bar in bars:
                bar.close()
            print(f"{name}: error [{err.code}] {err.message}", file=sys.stderr)
            failed.append(name)
            continue
        for bar in bars:
            bar.close()
        for filename, path in paths.items():
            print(f"  {filename}: {path}")
        print(f"{name}: ok (sha256 verified)")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


F5_PACKAGE = "f5-tts==1.1.22"
EXTRAS = {"f5": "requirements-f5.txt"}


def cmd_extras(args: argparse.Namespace) -> int:
    """Install optional engines into this Python. F5-TTS is installed without its own dependency
    list (which pulls training tools: gradio, bitsandbytes, ...) plus only what inference imports."""
    import subprocess

    repo = Path(__file__).resolve().parent
    for extra in args.extras:
        if extra not in EXTRAS:
            print(f"unknown extra '{extra}'; known: {', '.join(sorted(EXTRAS))}", file=sys.stderr)
            return 2
        pip = [sys.executable, "-m", "pip", "install"]
        print(f"installing extra '{extra}' ...")
        subprocess.run(pip + ["-r", str(repo / EXTRAS[extra])], check=True)
        if extra == "f5":
            subprocess.run(pip + ["--no-deps", F5_PACKAGE], check=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="install.py", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", metavar="NAME", help="download these models from the Hugging Face hub")
    parser.add_argument("--list", action="store_true", help="list the model manifest and what is on disk")
    parser.add_argument("--models-dir", metavar="DIR", help="ComfyUI's models directory (see above for the default)")
    parser.add_argument("--verify", action="store_true", help="with --list: hash the files and compare sha256")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--manifest", metavar="FILE", help=argparse.SUPPRESS)  # a different manifest (tests)
    parser.add_argument("--extras", nargs="+", metavar="EXTRA", help="install optional engines: f5 (F5-TTS voice cloning)")
    args = parser.parse_args(argv)
    if args.extras:
        return cmd_extras(args)
    _import_pack()
    if args.models:
        return cmd_fetch(args)
    if args.list:
        return cmd_list(args)
    return cmd_status(args)


if __name__ == "__main__":
    sys.exit(main())

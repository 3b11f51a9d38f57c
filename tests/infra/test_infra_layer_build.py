"""layers/build_layer.py: layers and bundles for the Lambda platform, reproducible and cached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
FIXED_MTIME = 315_532_800


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.usefixtures("built_assets")
def test_repeated_build_reuses_the_dependency_layer() -> None:
    # Given a completed build (the session fixture)
    # When building again with the same inputs
    result = subprocess.run(
        [sys.executable, str(ROOT / "layers" / "build_layer.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    # Then pip is skipped
    assert "deps layer unchanged" in result.stdout


@pytest.mark.usefixtures("built_assets")
def test_dependency_layer_holds_linux_arm64_wheels_for_python312() -> None:
    # Given the compiled extension of pydantic-core in the dependency layer
    extensions = [p.name for p in (BUILD / "layers/deps/python/pydantic_core").glob("*.so")]
    # Then it was built for CPython 3.12 on aarch64 Linux, not for the host
    assert extensions
    assert all("cpython-312-aarch64-linux-gnu" in name for name in extensions)


@pytest.mark.usefixtures("built_assets")
def test_layers_and_bundles_hold_no_host_bytecode_or_scripts() -> None:
    for root in (BUILD / "layers/deps", BUILD / "layers/engine", BUILD / "functions"):
        assert not [p for p in _files(root) if p.suffix == ".pyc"]
        assert not (root / "python" / "bin").exists()


@pytest.mark.usefixtures("built_assets")
def test_every_built_file_has_the_fixed_mtime() -> None:
    for root in (BUILD / "layers/engine", BUILD / "functions"):
        assert {int(p.stat().st_mtime) for p in _files(root)} == {FIXED_MTIME}


@pytest.mark.usefixtures("built_assets")
def test_function_bundle_keeps_the_functions_package_path() -> None:
    # Given the api bundle
    bundle = BUILD / "functions" / "api"
    # Then `functions.api.handler` is importable from its root, as Lambda imports it
    assert (bundle / "functions" / "__init__.py").is_file()
    assert (bundle / "functions" / "api" / "handler.py").is_file()
    assert (BUILD / "layers/engine/python/taskengine/names.py").is_file()

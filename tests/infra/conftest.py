"""One synthesis of the deployable stack per test session, shared by every infra test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk
from aws_cdk.assertions import Template
from infra_queries import Synthesized

from infra.app import build_app

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "layers" / "build_layer.py"
CDK_JSON = ROOT / "cdk.json"


@pytest.fixture(scope="session")
def built_assets() -> None:
    """The real layer and function bundle build (pip runs only when its inputs changed)."""
    subprocess.run([sys.executable, str(BUILD_SCRIPT)], check=True, capture_output=True)


@pytest.fixture(scope="session")
def synthesized(built_assets: None, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The TaskEngine stack with default context, synthesised with cdk-nag's checks on."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    # The context `cdk synth` passes: cdk.json's, plus construct paths in resource metadata.
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    context["aws:cdk:enable-path-metadata"] = True
    app, stack = build_app(cdk.App(outdir=str(outdir), context=context))
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_json: dict[str, Any] = json.loads(
        Path(artifact.template_full_path).read_text(encoding="utf-8")
    )
    return Synthesized(
        template=Template.from_json(template_json),
        template_json=template_json,
        template_path=Path(artifact.template_full_path),
        assembly_dir=Path(assembly.directory),
    )

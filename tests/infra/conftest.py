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
from cdk_nag import AwsSolutionsChecks
from infra_queries import NagRun, Synthesized

from infra import app as infra_app
from infra.app import build_app
from infra.stack import CONTEXT_DELETION_PROTECTION

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


@pytest.fixture(scope="session")
def _disposable_synthesis(
    built_assets: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Synthesized, tuple[NagRun, ...]]:
    """The stack as `cdk synth -c taskengine:deletionProtection=false` makes it, and nag's runs.

    The session's second (and last) synthesis. The AwsSolutionsChecks that build_app registers
    are swapped for a subclass that keeps each report, so a test can see that cdk-nag ran in a
    real synthesis and what it found: the validation report leaves out a plugin that passed.
    """
    runs: list[NagRun] = []

    class RecordingChecks(AwsSolutionsChecks):
        def validate(
            self, context: cdk.IPolicyValidationContext
        ) -> cdk.PolicyValidationPluginReport:
            report = super().validate(context)
            runs.append(
                NagRun(
                    plugin=self.name,
                    success=report.success,
                    findings=tuple(violation.rule_name for violation in report.violations),
                )
            )
            return report

    outdir = tmp_path_factory.mktemp("cdk.out.disposable")
    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    context["aws:cdk:enable-path-metadata"] = True
    context[CONTEXT_DELETION_PROTECTION] = False
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(infra_app, "AwsSolutionsChecks", RecordingChecks)
        app, stack = build_app(cdk.App(outdir=str(outdir), context=context))
        assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template_json: dict[str, Any] = json.loads(
        Path(artifact.template_full_path).read_text(encoding="utf-8")
    )
    synthesized = Synthesized(
        template=Template.from_json(template_json),
        template_json=template_json,
        template_path=Path(artifact.template_full_path),
        assembly_dir=Path(assembly.directory),
    )
    return synthesized, tuple(runs)


@pytest.fixture(scope="session")
def synthesized_without_deletion_protection(
    _disposable_synthesis: tuple[Synthesized, tuple[NagRun, ...]],
) -> Synthesized:
    """The stack with deletion protection off: nothing of it outlives the stack."""
    return _disposable_synthesis[0]


@pytest.fixture(scope="session")
def nag_runs(_disposable_synthesis: tuple[Synthesized, tuple[NagRun, ...]]) -> tuple[NagRun, ...]:
    """Each cdk-nag run (plugin, outcome, findings) while the build_app app was synthesised."""
    return _disposable_synthesis[1]

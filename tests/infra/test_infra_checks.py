"""cdk-nag and cfn-lint over the synthesised stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from infra_queries import Synthesized

from infra.app import add_checks

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def test_stack_synthesises_with_no_unacknowledged_nag_findings(synthesized: Synthesized) -> None:
    # Given the stack was synthesised with the AwsSolutions checks (synth raises otherwise)
    report = json.loads((synthesized.assembly_dir / "validation-report.json").read_text())
    # Then the validation report holds no failing plugin report
    assert [
        r for r in report["pluginReports"] if r.get("summary", {}).get("status") != "success"
    ] == []


def test_nag_checks_fail_synth_on_an_unacknowledged_finding(tmp_path: Path) -> None:
    # Given an app with the same checks and a queue that allows plain HTTP
    app = cdk.App(outdir=str(tmp_path))
    add_checks(app)
    stack = cdk.Stack(app, "Insecure")
    sqs.Queue(stack, "Plain", encryption=sqs.QueueEncryption.SQS_MANAGED)
    # When synthesising
    # Then synthesis fails and names the finding
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    assert "AwsSolutions-SQS4" in (tmp_path / "validation-report.json").read_text()


def test_template_has_no_cfn_lint_errors(synthesized: Synthesized) -> None:
    # When cfn-lint checks the synthesised template (warnings allowed: CDK's own DependsOn)
    result = subprocess.run(
        [str(CFN_LINT), "--non-zero-exit-code", "error", str(synthesized.template_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # Then it reports no error
    assert result.returncode == 0, result.stdout + result.stderr

"""cdk-nag and cfn-lint over the synthesised stack."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct
from infra_queries import NagRun, Synthesized

from infra.app import add_checks, build_app

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"

# (construct path, rule id), e.g. ("TaskEngine/Engine/Functions/Api", "AwsSolutions-L1")
Entry = tuple[str, str]


@pytest.fixture(scope="module")
def nag_review(built_assets: None) -> tuple[set[Entry], set[Entry]]:
    """Every acknowledgement the app makes, and what cdk-nag finds with none of them applied.

    The app is built as build_app builds it (cdk.json's context) while Validations.of(...)
    .acknowledge only records, then AwsSolutionsChecks runs over the construct tree directly,
    without a synthesis (acknowledgements are read from the tree, so none apply).
    """
    acknowledged: set[Entry] = set()
    real_of = cdk.Validations.of

    class Recorder:
        def __init__(self, scope: IConstruct) -> None:
            self._scope = scope

        def acknowledge(self, *rules: cdk.Acknowledgment) -> None:
            for rule in rules:
                rule_id = re.sub(r"^annotation::", "", rule.id, flags=re.IGNORECASE)
                acknowledged.add((self._scope.node.path, rule_id))

        def __getattr__(self, name: str) -> Any:
            return getattr(real_of(self._scope), name)

    context = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cdk.Validations, "of", staticmethod(Recorder))
        app, _ = build_app(cdk.App(context=context))
    report = AwsSolutionsChecks().validate_scope(app)
    findings = {
        (resource.construct_path or "", violation.rule_name)
        for violation in report.violations
        for resource in violation.violating_resources
    }
    return acknowledged, findings


def _covers(acknowledgement: Entry, finding: Entry) -> bool:
    """cdk-nag's rule: an acknowledgement covers its construct and everything below it."""
    path, rule = acknowledgement
    found_at, found_rule = finding
    return rule == found_rule and (found_at == path or found_at.startswith(f"{path}/"))


def test_nag_checks_run_when_the_app_is_synthesised(nag_runs: tuple[NagRun, ...]) -> None:
    # Given the app build_app makes, synthesised (the validation report leaves out a plugin
    # that found nothing, so the run is recorded by the fixture instead)
    # Then the AwsSolutions pack ran once over it and left no finding unacknowledged
    assert nag_runs == (NagRun(plugin="AwsSolutions", success=True, findings=()),)


def test_every_nag_finding_is_acknowledged(nag_review: tuple[set[Entry], set[Entry]]) -> None:
    # Given what cdk-nag finds in the stack with no acknowledgement applied
    acknowledged, findings = nag_review
    assert findings, "cdk-nag found nothing at all: did it look at the stack?"
    # Then an acknowledgement on the resource or one of its parents covers each finding
    uncovered = [f for f in findings if not any(_covers(a, f) for a in acknowledged)]
    assert sorted(uncovered) == []


def test_every_acknowledgement_matches_a_nag_finding(
    nag_review: tuple[set[Entry], set[Entry]],
) -> None:
    # Given every acknowledgement the code makes
    acknowledged, findings = nag_review
    # Then each one covers at least one real finding (a stale one would hide a future one)
    stale = [a for a in acknowledged if not any(_covers(a, f) for f in findings)]
    assert sorted(stale) == []


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

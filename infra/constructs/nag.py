"""Acknowledging cdk-nag findings next to the resource that causes them."""

from __future__ import annotations

import aws_cdk as cdk
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule: str, reason: str, *, finding: str = "") -> None:
    """Acknowledge the AwsSolutions `rule` (e.g. "IAM5") on `scope` and everything below it.

    IAM4 and IAM5 are acknowledged one finding at a time: `finding` names it, as cdk-nag reports
    it (e.g. "Resource::*"), so a new wildcard added later is still reported.
    """
    rule_id = f"AwsSolutions-{rule}[{finding}]" if finding else f"AwsSolutions-{rule}"
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=rule_id, reason=reason))


def arn_reference(resource: cdk.CfnResource, suffix: str = "") -> str:
    """How cdk-nag spells `Fn::GetAtt <resource>.Arn` in a finding, plus a literal suffix."""
    logical_id = cdk.Stack.of(resource).resolve(resource.logical_id)
    return f"Resource::<{logical_id}.Arn>{suffix}"


def nag_arn(stack: cdk.Stack, arn: str) -> str:
    """How cdk-nag spells an ARN built by `stack.format_arn`: pseudo parameters as <AWS::...>."""
    resolved = stack.resolve(arn)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    return "".join(part if isinstance(part, str) else f"<{part['Ref']}>" for part in parts)

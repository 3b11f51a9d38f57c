"""What a deleted stack leaves behind."""

from __future__ import annotations

import aws_cdk as cdk


def removal_policy(deletion_protection: bool) -> cdk.RemovalPolicy:
    """Keep data, keys and logs past the stack while deletion protection is on; else remove."""
    return cdk.RemovalPolicy.RETAIN if deletion_protection else cdk.RemovalPolicy.DESTROY

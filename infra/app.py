"""CDK entry point (cdk.json): one TaskEngine stack, checked by cdk-nag's AwsSolutions pack."""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.stack import TaskEngineStack

DEFAULT_STACK_NAME = "TaskEngine"
CONTEXT_STACK_NAME = "taskengine:stackName"


def add_checks(app: cdk.App) -> None:
    """Make synthesis fail on any unacknowledged cdk-nag AwsSolutions finding."""
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def build_app(app: cdk.App | None = None) -> tuple[cdk.App, TaskEngineStack]:
    """The app with its stack, checked by cdk-nag when synthesised."""
    app = app or cdk.App()
    add_checks(app)
    stack_name = str(app.node.try_get_context(CONTEXT_STACK_NAME) or DEFAULT_STACK_NAME)
    stack = TaskEngineStack(
        app,
        stack_name,
        description="taskengine: runs other services' background tasks reliably",
        env=cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
            region=os.environ.get("CDK_DEFAULT_REGION"),
        ),
    )
    return app, stack


def main() -> None:
    app, _ = build_app()
    app.synth()


if __name__ == "__main__":
    main()

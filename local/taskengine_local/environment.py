"""The environment the in-process handlers read, as their Lambda configuration sets it."""

from __future__ import annotations

from collections.abc import Mapping

from taskengine import names
from taskengine_local import aws_constants
from taskengine_local.resources import Resources
from taskengine_local.samples import functions_setting


def handler_environment(
    *,
    endpoint_url: str,
    resources: Resources,
    redis_url: str,
    redispatch_after_seconds: int,
    dispatch_lookahead_seconds: int,
    local_functions: Mapping[str, str],
    verbose: bool,
) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_DEFAULT_REGION": aws_constants.REGION,
        "AWS_REGION": aws_constants.REGION,
        "AWS_ACCESS_KEY_ID": aws_constants.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": aws_constants.ACCESS_KEY,
        names.ENV_TABLE_NAME: resources.table_name,
        names.ENV_WORK_QUEUE_URL: resources.work_queue_url,
        names.ENV_DEAD_LETTER_QUEUE_URL: resources.dead_letter_queue_url,
        names.ENV_HEADER_KEY_ID: resources.header_key_id,
        names.ENV_REDIS_URL: redis_url,
        names.ENV_LOCAL_MODE: "true",
        names.ENV_ALLOW_LOOPBACK_TARGETS: "true",
        f"{names.ENV_PREFIX}REDISPATCH_AFTER_SECONDS": str(redispatch_after_seconds),
        f"{names.ENV_PREFIX}DISPATCH_LOOKAHEAD_SECONDS": str(dispatch_lookahead_seconds),
        f"{names.ENV_PREFIX}LOCAL_FUNCTIONS": functions_setting(dict(local_functions)),
        "POWERTOOLS_SERVICE_NAME": names.SERVICE,
        "POWERTOOLS_METRICS_NAMESPACE": names.METRICS_NAMESPACE,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        # EMF lines are for CloudWatch; locally they only scroll the transitions away.
        "POWERTOOLS_METRICS_DISABLED": "false" if verbose else "true",
    }

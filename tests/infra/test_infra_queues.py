"""Work queue, dead-letter queue and the worker's event source."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match
from infra_queries import Synthesized, by_path, function_id, of_type

from infra.constructs import EngineConfigError, TaskEngine, TaskEngineProps
from infra.constructs.queues import check_visibility_timeout, required_visibility_timeout

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


def test_work_queue_moves_a_message_to_the_dlq_after_five_receives(
    synthesized: Synthesized,
) -> None:
    # Given the synthesised stack
    template = synthesized.template_json
    dlq_id, _ = by_path(template, "Engine/Queues/DeadLetter/Resource")
    # When reading the work queue's redrive policy
    _, work = by_path(template, "Engine/Queues/Work/Resource")
    redrive = work["Properties"]["RedrivePolicy"]
    # Then it names the DLQ with maxReceiveCount 5
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]}, "maxReceiveCount": 5}


def test_visibility_timeout_covers_six_worker_timeouts_plus_the_batching_window(
    synthesized: Synthesized,
) -> None:
    # Given the work queue, the worker and its event source mapping
    template = synthesized.template_json
    _, work = by_path(template, "Engine/Queues/Work/Resource")
    worker = template["Resources"][function_id(template, "Worker")]
    (mapping,) = of_type(template, "AWS::Lambda::EventSourceMapping").values()
    # When comparing the visibility timeout with the consumer's timing
    required = (
        6 * worker["Properties"]["Timeout"]
        + mapping["Properties"]["MaximumBatchingWindowInSeconds"]
    )
    # Then the queue hides a received message at least that long
    assert work["Properties"]["VisibilityTimeout"] >= required


def test_worker_consumes_the_work_queue_with_partial_batch_failures(
    synthesized: Synthesized,
) -> None:
    # Given the synthesised stack
    template = synthesized.template_json
    work_id, _ = by_path(template, "Engine/Queues/Work/Resource")
    # Then the worker's event source reports item failures, with a batch size and a
    # concurrency ceiling
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [work_id, "Arn"]},
            "FunctionName": {"Ref": function_id(template, "Worker")},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": 10,
            "ScalingConfig": {"MaximumConcurrency": 10},
        },
    )


def test_both_queues_are_encrypted_at_rest(synthesized: Synthesized) -> None:
    # Given both queues
    queues = of_type(synthesized.template_json, "AWS::SQS::Queue").values()
    # Then each has server-side encryption on
    assert [q["Properties"].get("SqsManagedSseEnabled") for q in queues] == [True, True]


@pytest.mark.parametrize("queue", ["Work", "DeadLetter"])
def test_queue_refuses_requests_without_tls(synthesized: Synthesized, queue: str) -> None:
    # Given the queue and the one policy attached to it
    template = synthesized.template_json
    queue_id, _ = by_path(template, f"Engine/Queues/{queue}/Resource")
    (policy,) = [
        policy["Properties"]
        for policy in of_type(template, "AWS::SQS::QueuePolicy").values()
        if policy["Properties"]["Queues"] == [{"Ref": queue_id}]
    ]
    # Then the policy denies everyone every action on this queue without TLS
    assert {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "sqs:*",
        "Resource": {"Fn::GetAtt": [queue_id, "Arn"]},
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    } in policy["PolicyDocument"]["Statement"]


def test_queue_names_are_prefixed_with_the_stack_name(synthesized: Synthesized) -> None:
    # Then the physical names follow taskengine.names, prefixed by the stack
    synthesized.template.has_resource_properties(
        "AWS::SQS::Queue", {"QueueName": Match.string_like_regexp("^TaskEngine-taskengine-work$")}
    )


def test_check_rejects_a_visibility_timeout_below_six_worker_timeouts() -> None:
    # Given a worker timeout of 5 minutes and a 1 s batching window (needs 1801 s)
    # When the visibility timeout is 30 minutes (1800 s)
    # Then the check fails and says why
    with pytest.raises(EngineConfigError, match="1800s is below 1801s"):
        check_visibility_timeout(
            cdk.Duration.minutes(30),
            consumer_timeout=cdk.Duration.minutes(5),
            batching_window=cdk.Duration.seconds(1),
        )


def test_default_visibility_timeout_is_the_smallest_safe_value() -> None:
    # When computing the visibility timeout for a 5 minute worker and a 1 s window
    # Then it is 6 x 300 + 1 seconds
    required = required_visibility_timeout(cdk.Duration.minutes(5), cdk.Duration.seconds(1))
    assert required.to_seconds() == 1801


def test_engine_construct_refuses_a_too_short_visibility_timeout() -> None:
    # Given a stack and engine props whose visibility timeout is shorter than the worker's
    stack = cdk.Stack(cdk.App(), "TooShort")
    props = TaskEngineProps(
        worker_timeout=cdk.Duration.minutes(2),
        work_queue_visibility_timeout=cdk.Duration.minutes(5),
    )
    # When the engine is defined
    # Then definition (and so synth) fails with a clear error
    with pytest.raises(EngineConfigError, match="visibility timeout 300s is below 721s"):
        TaskEngine(stack, "Engine", props)

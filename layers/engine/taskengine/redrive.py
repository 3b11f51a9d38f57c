"""Bulk replay of dead letters, read from the DLQ so that the queue and the records agree.

SQS's own message-move API is not used: it would put raw dead letters back on the work queue,
bypassing the task records, and the local stack's SQS does not implement it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from taskengine import names, operations
from taskengine.engine import Engine
from taskengine.errors import ConflictError, DependencyError
from taskengine.models import (
    DeadLetterMessage,
    RedriveReport,
    RedriveRequest,
    RedriveSkip,
    TaskStatus,
    WorkMessage,
)
from taskengine.queue import ReceivedMessage
from taskengine.submission import IDEMPOTENCY_HEADER

# Long enough to handle one receive batch before the messages reappear.
_VISIBILITY_SECONDS = 60
# Bounds the messages one request reads, so a DLQ full of non-matching messages ends quickly.
_MAX_EXAMINED = 500
# Redrive requests sent with an Idempotency-Key are remembered in the task table, in a
# partition of their own; their status attribute is renamed so that they stay out of the
# by_status index, whose key is the tasks' "status".
_KEYS_PARTITION = "IDEM#redrive"
_KEY_FIELD = f"header.{IDEMPOTENCY_HEADER}"


def redrive_once(
    engine: Engine,
    request: RedriveRequest,
    *,
    actor: str,
    key: str | None,
    lambda_context: LambdaContext | None = None,
) -> RedriveReport:
    """Redrive; a repeat of a keyed request returns the first report and replays nothing more.

    Powertools' idempotency utility fits here as it does not for task submission: the result
    is a report to hand back, and no other write has to share a transaction with the key.
    """
    if key is None:
        return redrive(engine, request, actor=actor)

    config = IdempotencyConfig(
        event_key_jmespath="[tenant, key]",
        payload_validation_jmespath="request",
        expires_after_seconds=engine.settings.idempotency_window_seconds,
    )
    if lambda_context is not None:
        config.register_lambda_context(lambda_context)

    @idempotent_function(
        data_keyword_argument="call",
        persistence_store=_request_keys(engine),
        config=config,
        output_serializer=PydanticSerializer(RedriveReport),
        key_prefix="redrive",
    )
    def run(call: dict[str, Any]) -> RedriveReport:
        return redrive(engine, request, actor=actor)

    call = {
        "tenant": names.tenant_token(actor),
        "key": key,
        "request": request.model_dump(mode="json"),
    }
    try:
        report: RedriveReport = run(call=call)
    except IdempotencyValidationError as error:
        raise ConflictError(
            "this Idempotency-Key was used with a different request body", field=_KEY_FIELD
        ) from error
    except IdempotencyAlreadyInProgressError as error:
        raise ConflictError(
            "a redrive with this Idempotency-Key is still running", field=_KEY_FIELD
        ) from error
    except (IdempotencyPersistenceLayerError, IdempotencyInconsistentStateError) as error:
        raise DependencyError("the redrive's idempotency record could not be kept") from error
    return report


def _request_keys(engine: Engine) -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=engine.store.table_name,
        key_attr=names.PK,
        sort_key_attr=names.SK,
        static_pk_value=_KEYS_PARTITION,
        expiry_attr=names.TTL_ATTRIBUTE,
        status_attr="request_status",
        boto3_client=engine.store.client,
    )


def redrive(engine: Engine, request: RedriveRequest, *, actor: str) -> RedriveReport:
    report = RedriveReport(
        dry_run=request.dry_run, examined=0, replayed=[], skipped=[], removed_stale=0
    )
    held: list[ReceivedMessage] = []
    try:
        while len(report.replayed) < request.limit and report.examined < _MAX_EXAMINED:
            batch = engine.queue.receive_dead_letters(_VISIBILITY_SECONDS)
            if not batch:
                break
            for message in batch:
                if len(report.replayed) >= request.limit:
                    held.append(message)
                    continue
                report.examined += 1
                if not _handle(engine, request, actor, message, report):
                    held.append(message)
    finally:
        for message in held:
            engine.queue.release_dead_letter(message)
    return report


def _handle(
    engine: Engine,
    request: RedriveRequest,
    actor: str,
    message: ReceivedMessage,
    report: RedriveReport,
) -> bool:
    """Handle one dead letter; True when it was consumed (deleted), False to put it back."""
    letter = _letter(message.body)
    if letter.task_id is None:
        report.skipped.append(RedriveSkip(task_id=None, reason="no task: " + letter.reason))
        return False
    if letter.task_id in report.replayed:
        # The task failed again while this redrive ran: its new letter waits for the next one,
        # so one request replays a task once however fast it dead-letters.
        report.skipped.append(
            RedriveSkip(task_id=letter.task_id, reason="replayed by this redrive")
        )
        return False

    state = engine.store.get_state(letter.task_id)
    if (
        state is None
        or state.status is not TaskStatus.DEAD_LETTER
        or (state.generation != letter.generation)
    ):
        return _drop_stale(engine, request, message, letter.task_id, report)

    wanted = request.filter
    if (wanted.reason_contains and wanted.reason_contains not in letter.reason) or (
        wanted.target_type and wanted.target_type != state.target_type
    ):
        report.skipped.append(RedriveSkip(task_id=letter.task_id, reason="filtered out"))
        return False
    if request.dry_run:
        report.replayed.append(letter.task_id)
        return False
    return _replay(
        engine, request, actor=actor, message=message, task_id=letter.task_id, report=report
    )


def _letter(body: str) -> DeadLetterMessage:
    """A dead letter the engine wrote, or a work message the queue's redrive policy moved."""
    try:
        return DeadLetterMessage.model_validate_json(body)
    except ValidationError:
        pass
    try:
        work = WorkMessage.model_validate_json(body)
    except ValidationError:
        return DeadLetterMessage(reason="unparseable")
    return DeadLetterMessage(
        task_id=work.task_id, generation=work.generation, reason="moved by the redrive policy"
    )


def _drop_stale(
    engine: Engine,
    request: RedriveRequest,
    message: ReceivedMessage,
    task_id: str,
    report: RedriveReport,
) -> bool:
    """The task was replayed, cancelled or expired since: its letter describes nothing."""
    if request.dry_run:
        report.skipped.append(RedriveSkip(task_id=task_id, reason="stale dead letter"))
        return False
    engine.queue.delete_dead_letter(message)
    report.removed_stale += 1
    return True


def _replay(
    engine: Engine,
    request: RedriveRequest,
    *,
    actor: str,
    message: ReceivedMessage,
    task_id: str,
    report: RedriveReport,
) -> bool:
    try:
        operations.replay(
            engine,
            task_id,
            actor=actor,
            reason=request.reason,
            action_key=f"redrive-{message.message_id}",
        )
    except ConflictError as error:
        report.skipped.append(RedriveSkip(task_id=task_id, reason=str(error)))
        return False
    engine.queue.delete_dead_letter(message)
    report.replayed.append(task_id)
    return True

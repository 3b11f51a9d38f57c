"""DynamoDB access for tasks: one table, conditional writes for every state change."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from taskengine import names
from taskengine.dynamo import (
    dependency_error,
    deserialize,
    error_code,
    is_condition_failure,
    serialize,
    serialize_value,
)
from taskengine.errors import StaleStateError
from taskengine.models import (
    AdminAction,
    AttemptRecord,
    TaskSpec,
    TaskState,
    TaskStatus,
    format_time,
)

if TYPE_CHECKING:
    from types_boto3_dynamodb import DynamoDBClient

STATE = "STATE"
SPEC = "SPEC"
IDEM = "IDEM"
ATTEMPT_PREFIX = "ATTEMPT#"
ACTION_PREFIX = "ACTION#"

_STATE_TIME_FIELDS = (
    "created_at",
    "updated_at",
    "next_attempt_at",
    "first_attempt_at",
    "lease_until",
    "running_since",
)


def task_pk(task_id: str) -> str:
    return f"TASK#{task_id}"


def attempt_sk(generation: int, number: int) -> str:
    return f"{ATTEMPT_PREFIX}{generation:06d}#{number:06d}"


def epoch_seconds(moment: datetime) -> int:
    return int(moment.timestamp())


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class IdempotencyRecord:
    tenant: str
    key: str
    task_id: str
    fingerprint: str
    expires_at: int


@dataclass(frozen=True)
class TaskRecord:
    state: TaskState
    spec: TaskSpec
    attempts: list[AttemptRecord] = field(default_factory=list)
    actions: list[AdminAction] = field(default_factory=list)


@dataclass(frozen=True)
class ClaimResult:
    """The state after a claim, or the state that made the claim lose."""

    claimed: bool
    state: TaskState | None


@dataclass
class Update:
    """A DynamoDB UpdateExpression built from plain values; every name is a placeholder."""

    sets: dict[str, Any] = field(default_factory=dict)
    sets_if_absent: dict[str, Any] = field(default_factory=dict)
    removes: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    bump_version: bool = True

    def expression(self) -> dict[str, Any]:
        attr_names: dict[str, str] = {}
        attr_values: dict[str, Any] = {}
        set_parts: list[str] = []
        for name, value in self.sets.items():
            attr_names[f"#{name}"] = name
            attr_values[f":set_{name}"] = serialize_value(value)
            set_parts.append(f"#{name} = :set_{name}")
        for name, value in self.sets_if_absent.items():
            attr_names[f"#{name}"] = name
            attr_values[f":new_{name}"] = serialize_value(value)
            set_parts.append(f"#{name} = if_not_exists(#{name}, :new_{name})")
        if self.bump_version:
            attr_names["#version"] = "version"
            attr_values[":one"] = serialize_value(1)
            set_parts.append("#version = #version + :one")
        for name in self.removes:
            attr_names[f"#{name}"] = name
        for key, value in self.values.items():
            attr_values[key] = serialize_value(value)
        for condition in self.conditions:
            for token in condition.replace("(", " ").replace(")", " ").replace(",", " ").split():
                if token.startswith("#"):
                    attr_names[token] = token[1:]

        expression = "SET " + ", ".join(set_parts)
        if self.removes:
            expression += " REMOVE " + ", ".join(f"#{name}" for name in self.removes)
        request: dict[str, Any] = {
            "UpdateExpression": expression,
            "ExpressionAttributeNames": attr_names,
            "ExpressionAttributeValues": attr_values,
        }
        if self.conditions:
            request["ConditionExpression"] = " AND ".join(f"({c})" for c in self.conditions)
        return request


class TaskStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        due_shards: int,
        retention_days: int,
    ) -> None:
        self._client = client
        self._table = table_name
        self._due_shards = due_shards
        self._retention = timedelta(days=retention_days)

    @property
    def client(self) -> DynamoDBClient:
        return self._client

    @property
    def table_name(self) -> str:
        return self._table

    # -- item codecs -------------------------------------------------------------------------

    def due_shard(self, task_id: str) -> str:
        return f"{zlib.crc32(task_id.encode()) % self._due_shards:03d}"

    def _state_item(self, state: TaskState, due_at: datetime | None) -> dict[str, Any]:
        data = state.model_dump(mode="python", exclude_none=True)
        for name in _STATE_TIME_FIELDS:
            if name in data:
                data[name] = format_time(data[name])
        data.update(
            {
                names.PK: task_pk(state.task_id),
                names.SK: STATE,
                names.DUE_INDEX_PK: self.due_shard(state.task_id),
                names.DUE_INDEX_SK: format_time(due_at) if due_at else None,
            }
        )
        return serialize(data)

    @staticmethod
    def _state_from_item(item: Mapping[str, Any]) -> TaskState:
        data = deserialize(item)
        for name in _STATE_TIME_FIELDS:
            data[name] = parse_time(data.get(name))
        return TaskState.model_validate(
            {key: value for key, value in data.items() if key in TaskState.model_fields}
        )

    def _spec_item(self, task_id: str, spec: TaskSpec, expires_at: datetime) -> dict[str, Any]:
        item = {
            names.PK: task_pk(task_id),
            names.SK: SPEC,
            # The target is stored as JSON text so that floats keep their exact value and the
            # body is never re-encoded into DynamoDB number types.
            "target": spec.target.model_dump_json(),
            "retry": spec.retry.model_dump_json(),
            names.TTL_ATTRIBUTE: epoch_seconds(expires_at),
        }
        result = serialize(item)
        if spec.sealed_headers is not None:
            result["sealed_headers"] = {"B": spec.sealed_headers}
        return result

    @staticmethod
    def _spec_from_item(item: Mapping[str, Any]) -> TaskSpec:
        sealed = item.get("sealed_headers", {}).get("B")
        return TaskSpec.model_validate(
            {
                "target": _json_loads(item["target"]["S"]),
                "retry": _json_loads(item["retry"]["S"]),
                "sealed_headers": bytes(sealed) if sealed is not None else None,
            }
        )

    def terminal_expiry(self, now: datetime) -> int:
        return epoch_seconds(now + self._retention)

    # -- submit ------------------------------------------------------------------------------

    def create(
        self,
        state: TaskState,
        spec: TaskSpec,
        *,
        due_at: datetime,
        spec_expires_at: datetime,
        idempotency: IdempotencyRecord | None,
        now: datetime,
    ) -> bool:
        """Write a new task (with its idempotency key, atomically); False if the key is taken."""
        state_put: dict[str, Any] = {
            "TableName": self._table,
            "Item": self._state_item(state, due_at),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        spec_put: dict[str, Any] = {
            "TableName": self._table,
            "Item": self._spec_item(state.task_id, spec, spec_expires_at),
        }
        if idempotency is None:
            # Without a key there is nothing to keep atomic with the task, and two single
            # writes cost half a transaction. The spec goes first so a state item never
            # exists without it; a spec orphaned by a failed second write expires by TTL.
            try:
                self._client.put_item(**spec_put)
                self._client.put_item(**state_put)
            except (ClientError, BotoCoreError) as error:
                raise dependency_error("PutItem", error) from error
            return True

        idem_put = {
            "TableName": self._table,
            "Item": serialize(
                {
                    names.PK: _idem_pk(idempotency.tenant, idempotency.key),
                    names.SK: IDEM,
                    "task_id": idempotency.task_id,
                    "fingerprint": idempotency.fingerprint,
                    names.TTL_ATTRIBUTE: idempotency.expires_at,
                }
            ),
            # DynamoDB deletes expired items lazily, so an expired key counts as free.
            "ConditionExpression": "attribute_not_exists(pk) OR #exp < :now",
            "ExpressionAttributeNames": {"#exp": names.TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {":now": {"N": str(epoch_seconds(now))}},
        }
        items = [{"Put": state_put}, {"Put": spec_put}, {"Put": idem_put}]
        try:
            self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as error:
            if error_code(error) == "TransactionCanceledException":
                reasons = error.response.get("CancellationReasons", [])
                if len(reasons) == 3 and reasons[2].get("Code") == "ConditionalCheckFailed":
                    return False
            raise dependency_error("TransactWriteItems", error) from error
        except BotoCoreError as error:
            raise dependency_error("TransactWriteItems", error) from error
        return True

    def get_idempotency(self, tenant: str, key: str, now: datetime) -> IdempotencyRecord | None:
        item = self._get(_idem_pk(tenant, key), IDEM)
        if item is None:
            return None
        data = deserialize(item)
        if int(data[names.TTL_ATTRIBUTE]) < epoch_seconds(now):
            return None
        return IdempotencyRecord(
            tenant=tenant,
            key=key,
            task_id=data["task_id"],
            fingerprint=data["fingerprint"],
            expires_at=int(data[names.TTL_ATTRIBUTE]),
        )

    # -- reads -------------------------------------------------------------------------------

    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key={names.PK: {"S": pk}, names.SK: {"S": sk}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as error:
            raise dependency_error("GetItem", error) from error
        return response.get("Item")

    def get_state(self, task_id: str) -> TaskState | None:
        item = self._get(task_pk(task_id), STATE)
        return self._state_from_item(item) if item else None

    def get_spec(self, task_id: str) -> TaskSpec | None:
        item = self._get(task_pk(task_id), SPEC)
        return self._spec_from_item(item) if item else None

    def load(self, task_id: str) -> TaskRecord | None:
        """Every item of a task in one partition query."""
        state: TaskState | None = None
        spec: TaskSpec | None = None
        attempts: list[AttemptRecord] = []
        actions: list[AdminAction] = []
        for item in self._query_partition(task_pk(task_id)):
            sort_key = item[names.SK]["S"]
            if sort_key == STATE:
                state = self._state_from_item(item)
            elif sort_key == SPEC:
                spec = self._spec_from_item(item)
            elif sort_key.startswith(ATTEMPT_PREFIX):
                attempts.append(AttemptRecord.model_validate(_json_loads(item["record"]["S"])))
            elif sort_key.startswith(ACTION_PREFIX):
                actions.append(AdminAction.model_validate(_json_loads(item["record"]["S"])))
        if state is None or spec is None:
            return None
        actions.sort(key=lambda action: action.at)
        return TaskRecord(state=state, spec=spec, attempts=attempts, actions=actions)

    def _query_partition(self, pk: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ConsistentRead": True,
        }
        yield from self._paginate(request)

    def _paginate(self, request: dict[str, Any], limit: int | None = None) -> Iterator[Any]:
        seen = 0
        while True:
            try:
                response = self._client.query(**request)
            except (ClientError, BotoCoreError) as error:
                raise dependency_error("Query", error) from error
            for item in response.get("Items", []):
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key

    # -- state changes -----------------------------------------------------------------------

    def update_state(self, task_id: str, update: Update) -> TaskState:
        """Apply a conditional update; raises StaleStateError when the condition fails."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={names.PK: {"S": task_pk(task_id)}, names.SK: {"S": STATE}},
                ReturnValues="ALL_NEW",
                **update.expression(),
            )
        except ClientError as error:
            if is_condition_failure(error):
                raise StaleStateError(f"task {task_id} changed concurrently") from error
            raise dependency_error("UpdateItem", error) from error
        except BotoCoreError as error:
            raise dependency_error("UpdateItem", error) from error
        return self._state_from_item(response["Attributes"])

    def update_state_returning_old(self, task_id: str, update: Update) -> ClaimResult:
        """Like update_state, but a lost condition returns the current state instead of raising."""
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key={names.PK: {"S": task_pk(task_id)}, names.SK: {"S": STATE}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
                **update.expression(),
            )
        except ClientError as error:
            if is_condition_failure(error):
                current: Mapping[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
                return ClaimResult(False, self._state_from_item(current) if current else None)
            raise dependency_error("UpdateItem", error) from error
        except BotoCoreError as error:
            raise dependency_error("UpdateItem", error) from error
        return ClaimResult(True, self._state_from_item(response["Attributes"]))

    def put_attempt(self, task_id: str, attempt: AttemptRecord, expires_at: datetime) -> bool:
        """Record a finished attempt; False when that attempt was already recorded."""
        item = serialize(
            {
                names.PK: task_pk(task_id),
                names.SK: attempt_sk(attempt.generation, attempt.number),
                "record": attempt.model_dump_json(),
                names.TTL_ATTRIBUTE: epoch_seconds(expires_at),
            }
        )
        try:
            # First writer wins: a worker that finishes after its lease expired must not
            # overwrite the scheduler's record of the lost attempt, nor the other way round.
            self._client.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise dependency_error("PutItem", error) from error
        except BotoCoreError as error:
            raise dependency_error("PutItem", error) from error
        return True

    def get_attempt(self, task_id: str, generation: int, number: int) -> AttemptRecord | None:
        item = self._get(task_pk(task_id), attempt_sk(generation, number))
        return AttemptRecord.model_validate_json(item["record"]["S"]) if item else None

    def apply_action(
        self,
        task_id: str,
        update: Update,
        action: AdminAction,
        action_id: str,
        expires_at: datetime,
    ) -> bool:
        """Change the state and record the admin action atomically.

        Returns False when an action with this id was already recorded (a retried request);
        raises StaleStateError when the state condition fails.
        """
        state_update = {
            "TableName": self._table,
            "Key": {names.PK: {"S": task_pk(task_id)}, names.SK: {"S": STATE}},
            **update.expression(),
        }
        action_put = {
            "TableName": self._table,
            "Item": serialize(
                {
                    names.PK: task_pk(task_id),
                    names.SK: f"{ACTION_PREFIX}{action_id}",
                    "record": action.model_dump_json(),
                    names.TTL_ATTRIBUTE: epoch_seconds(expires_at),
                }
            ),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            self._client.transact_write_items(
                TransactItems=[{"Update": state_update}, {"Put": action_put}]  # type: ignore[typeddict-item]
            )
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise dependency_error("TransactWriteItems", error) from error
            reasons = error.response.get("CancellationReasons", [])
            codes = [reason.get("Code") for reason in reasons]
            if len(codes) == 2 and codes[1] == "ConditionalCheckFailed":
                return False
            if codes and codes[0] == "ConditionalCheckFailed":
                raise StaleStateError(f"task {task_id} changed concurrently") from error
            raise dependency_error("TransactWriteItems", error) from error
        except BotoCoreError as error:
            raise dependency_error("TransactWriteItems", error) from error
        return True

    def extend_spec_expiry(self, task_id: str, expires_at: datetime) -> None:
        try:
            self._client.update_item(
                TableName=self._table,
                Key={names.PK: {"S": task_pk(task_id)}, names.SK: {"S": SPEC}},
                UpdateExpression="SET #exp = :exp",
                ExpressionAttributeNames={"#exp": names.TTL_ATTRIBUTE},
                ExpressionAttributeValues={":exp": {"N": str(epoch_seconds(expires_at))}},
            )
        except (ClientError, BotoCoreError) as error:
            raise dependency_error("UpdateItem", error) from error

    def get_action(self, task_id: str, action_id: str) -> AdminAction | None:
        item = self._get(task_pk(task_id), f"{ACTION_PREFIX}{action_id}")
        return AdminAction.model_validate_json(item["record"]["S"]) if item else None

    # -- indexes -----------------------------------------------------------------------------

    def due_shards(self) -> list[str]:
        return [f"{shard:03d}" for shard in range(self._due_shards)]

    def query_due(self, shard: str, until: datetime, limit: int) -> list[TaskState]:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": names.DUE_INDEX,
            "KeyConditionExpression": "#shard = :shard AND #due <= :until",
            "ExpressionAttributeNames": {
                "#shard": names.DUE_INDEX_PK,
                "#due": names.DUE_INDEX_SK,
            },
            "ExpressionAttributeValues": {
                ":shard": {"S": shard},
                ":until": {"S": format_time(until)},
            },
        }
        return [self._state_from_item(item) for item in self._paginate(request, limit)]

    def list_by_status(
        self, status: TaskStatus, before_task_id: str | None, limit: int
    ) -> list[TaskState]:
        condition = "#status = :status"
        values: dict[str, Any] = {":status": {"S": status.value}}
        attr_names = {"#status": names.STATUS_INDEX_PK}
        if before_task_id:
            condition += " AND #task_id < :before"
            values[":before"] = {"S": before_task_id}
            attr_names["#task_id"] = names.STATUS_INDEX_SK
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": names.STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": attr_names,
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit,
        }
        return [self._state_from_item(item) for item in self._paginate(request, limit)]

    def count_by_status(self, status: TaskStatus) -> int:
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": names.STATUS_INDEX,
            "KeyConditionExpression": "#status = :status",
            "ExpressionAttributeNames": {"#status": names.STATUS_INDEX_PK},
            "ExpressionAttributeValues": {":status": {"S": status.value}},
            "Select": "COUNT",
        }
        total = 0
        while True:
            try:
                response = self._client.query(**request)
            except (ClientError, BotoCoreError) as error:
                raise dependency_error("Query", error) from error
            total += int(response.get("Count", 0))
            if "LastEvaluatedKey" not in response:
                return total
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def ping(self) -> None:
        try:
            self._client.describe_table(TableName=self._table)
        except (ClientError, BotoCoreError) as error:
            raise dependency_error("DescribeTable", error) from error


def _idem_pk(tenant: str, key: str) -> str:
    return f"IDEM#{names.tenant_token(tenant)}#{key}"


def _json_loads(text: str) -> Any:
    return json.loads(text)

"""The DynamoDB table's shape, shared by the local stack (create_table) and the CDK app.

Items of one task share the partition key TASK#<task_id>:
  STATE                      small, updated on every transition; carries the sparse due index
                             keys while the task is not terminal and the status index keys.
  SPEC                       written once per generation: target (secret headers sealed), retry.
  ATTEMPT#<gen>#<number>     one per finished attempt.
  ACTION#<id>                one per admin action (who, when, why).
Client idempotency keys live at IDEM#<tenant>#<key> / IDEM.
"""

from __future__ import annotations

from typing import Any, Final

from taskengine import names

KEY_ATTRIBUTES: Final = {
    names.PK: "S",
    names.SK: "S",
    names.DUE_INDEX_PK: "S",
    names.DUE_INDEX_SK: "S",
    names.STATUS_INDEX_PK: "S",
    names.STATUS_INDEX_SK: "S",
}

GLOBAL_SECONDARY_INDEXES: Final = (
    # Sparse: only non-terminal tasks carry due_shard/due_at, so the scheduler reads what is due.
    {"name": names.DUE_INDEX, "pk": names.DUE_INDEX_PK, "sk": names.DUE_INDEX_SK},
    # Admin listing, newest first: task ids are ULIDs and sort by creation time.
    {"name": names.STATUS_INDEX, "pk": names.STATUS_INDEX_PK, "sk": names.STATUS_INDEX_SK},
)


def create_table_request(table_name: str) -> dict[str, Any]:
    """Arguments for DynamoDB CreateTable that match the deployed table."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": kind} for name, kind in KEY_ATTRIBUTES.items()
        ],
        "KeySchema": [
            {"AttributeName": names.PK, "KeyType": "HASH"},
            {"AttributeName": names.SK, "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index["name"],
                "KeySchema": [
                    {"AttributeName": index["pk"], "KeyType": "HASH"},
                    {"AttributeName": index["sk"], "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in GLOBAL_SECONDARY_INDEXES
        ],
    }

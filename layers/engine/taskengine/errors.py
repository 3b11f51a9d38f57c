"""One error tree for the engine; data-access code maps AWS and Redis errors onto it."""

from __future__ import annotations


class EngineError(Exception):
    """Root of every error the engine raises on purpose."""


class TaskNotFoundError(EngineError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"task {task_id} not found")
        self.task_id = task_id


class ConflictError(EngineError):
    """The request is valid but clashes with the task's current state or an earlier request."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidRequestError(EngineError):
    """Input that passed schema validation but breaks a server-side rule."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class StaleStateError(EngineError):
    """A conditional write lost: another actor changed the task first."""


class DependencyError(EngineError):
    """An AWS or Redis call failed in a way worth retrying later."""


class RedisUnavailableError(DependencyError):
    """Redis did not answer; callers fall back to the DynamoDB guard."""

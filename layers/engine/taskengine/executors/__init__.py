"""Executors run one attempt of a target and classify what happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from taskengine.models import AttemptOutcome, HttpTarget, LambdaTarget

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class AttemptContext:
    """Names one execution: the task, its generation and the attempt number."""

    task_id: str
    generation: int
    attempt: int
    timeout_seconds: float

    @property
    def idempotency_key(self) -> str:
        # Stable across every attempt of one generation, so the downstream can deduplicate
        # the call that ran but whose outcome the engine never recorded.
        return f"{self.task_id}.{self.generation}"


class ExecutionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: AttemptOutcome
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    retry_after_seconds: float | None = None


class Executor(Protocol):
    def execute(
        self,
        target: HttpTarget | LambdaTarget,
        secret_headers: dict[str, str],
        context: AttemptContext,
    ) -> ExecutionResult: ...


def short_error(text: str) -> str:
    """Error text fit for storage and logs: one line, bounded length."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_ERROR_CHARS else flat[: MAX_ERROR_CHARS - 1] + "…"

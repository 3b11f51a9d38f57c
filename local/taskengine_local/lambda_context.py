"""A stand-in for the Lambda context object, with the attributes Powertools reads."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from taskengine_local import aws_constants


@dataclass(frozen=True)
class LocalLambdaContext:
    function_name: str
    timeout_seconds: float = 900.0
    memory_limit_in_mb: int = 1024
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_deadline", time.monotonic() + self.timeout_seconds)

    @property
    def invoked_function_arn(self) -> str:
        return aws_constants.lambda_arn(self.function_name)

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

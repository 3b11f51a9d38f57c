"""The engine's constructs: one per concern, composed by TaskEngine."""

from infra.constructs.engine import TaskEngine, TaskEngineProps
from infra.constructs.errors import EngineConfigError

__all__ = ["EngineConfigError", "TaskEngine", "TaskEngineProps"]

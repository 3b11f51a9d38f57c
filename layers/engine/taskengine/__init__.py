"""taskengine: persist, execute, retry, dead-letter and replay background tasks on AWS."""

__version__ = "0.1.0"

"""`python -m taskengine_local dev`: the same CLI without the installed console script."""

from taskengine_local.cli import app

app()

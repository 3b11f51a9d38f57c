"""The engine on a laptop: moto server, an API Gateway stand-in, an SQS poller and a timer.

Development tooling only; none of this ships in the Lambda layer.
"""

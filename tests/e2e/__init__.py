"""End-to-end tests: the local stack over HTTP, against a scripted downstream."""

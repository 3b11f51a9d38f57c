"""Serverless Valkey: the fast path for claims and idempotency, reached over TLS with AUTH."""

from __future__ import annotations

import re
from collections.abc import Sequence

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.constructs.nag import acknowledge

ENGINE = "valkey"
MAJOR_ENGINE_VERSION = "8"
PORT = 6379
READER_PORT = 6380
# A user group must contain a user named "default"; a client that sends `AUTH <token>` with
# no user name signs in as it. That keeps the runtime's contract: the secret is the token.
DEFAULT_USER = "default"
# ElastiCache passwords: 16-128 printable characters; letters and digits are always accepted.
TOKEN_LENGTH = 64


def cache_identifier(name_prefix: str, suffix: str) -> str:
    """A lowercase, letter-first ElastiCache identifier of at most 40 characters."""
    stem = re.sub(r"[^a-z0-9-]+", "-", name_prefix.lower()).strip("-") or "taskengine"
    if not stem[0].isalpha():
        stem = f"te-{stem}"
    return f"{stem[: 39 - len(suffix)]}-{suffix}"


class EngineCache(Construct):
    """A serverless Valkey cache in the private subnets; TLS is always on for serverless caches.

    Access needs the AUTH token kept in `auth_secret` (generated, never in the template) and a
    connection from `client_security_group`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name_prefix: str,
        vpc: ec2.IVpc,
        subnet_ids: Sequence[str],
        client_security_group: ec2.ISecurityGroup,
        max_data_storage_gb: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.auth_secret = secretsmanager.Secret(
            self,
            "AuthToken",
            description="taskengine: AUTH token of the Valkey cache (the secret string)",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=TOKEN_LENGTH, exclude_punctuation=True, include_space=False
            ),
        )
        acknowledge(
            self.auth_secret,
            "SMG4",
            "The token is also the cache user's password; rotating it needs a coordinated "
            "update of the ElastiCache user, which has no managed rotation function.",
        )
        self.security_group = ec2.SecurityGroup(
            self, "SecurityGroup", vpc=vpc, description="taskengine cache", allow_all_outbound=False
        )
        for port in (PORT, READER_PORT):
            self.security_group.add_ingress_rule(
                client_security_group, ec2.Port.tcp(port), "taskengine functions"
            )
        user = elasticache.CfnUser(
            self,
            "DefaultUser",
            engine=ENGINE,
            user_id=cache_identifier(name_prefix, "default"),
            user_name=DEFAULT_USER,
            access_string="on ~* &* +@all",
            authentication_mode={
                "Type": "password",
                "Passwords": [self.auth_secret.secret_value.unsafe_unwrap()],
            },
        )
        user_group = elasticache.CfnUserGroup(
            self,
            "Users",
            engine=ENGINE,
            user_group_id=cache_identifier(name_prefix, "users"),
            user_ids=[user.ref],
        )
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Cache",
            engine=ENGINE,
            major_engine_version=MAJOR_ENGINE_VERSION,
            serverless_cache_name=cache_identifier(name_prefix, "cache"),
            description="taskengine claims, submit keys and rate limits",
            subnet_ids=list(subnet_ids),
            security_group_ids=[self.security_group.security_group_id],
            user_group_id=user_group.ref,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    unit="GB", maximum=max_data_storage_gb
                )
            ),
        )

    @property
    def url(self) -> str:
        """rediss://host:port of the primary endpoint (TLS)."""
        return f"rediss://{self.cache.attr_endpoint_address}:{self.cache.attr_endpoint_port}"

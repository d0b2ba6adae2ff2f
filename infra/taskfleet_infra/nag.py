"""cdk-nag (AwsSolutions pack) wiring. Every acknowledgement names one finding and carries its reason;
`acknowledged()` collects them for the tests and the docs."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from constructs import IConstruct

_ACKNOWLEDGED: list[tuple[str, str, str]] = []


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Suppress one cdk-nag finding (`AwsSolutions-IAM5[Resource::...]` names a single finding) on
    `scope` and its children, with the reason it is acceptable."""
    if len(reason.split()) < 8:
        raise ValueError(f"{rule}: give a real reason for the suppression")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))
    _ACKNOWLEDGED.append((scope.node.path, rule, reason))


def acknowledged() -> list[tuple[str, str, str]]:
    return list(_ACKNOWLEDGED)


def add_checks(app: App) -> None:
    from cdk_nag import AwsSolutionsChecks

    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))

"""Comprehend's resource names (ARNs), built and read back (pure).

Every resource of a repository has an ARN in one ``local`` region of account ``000000000000``:
flywheels, their datasets, their model versions, and endpoints. Reading is lenient about the
partition, region and account (a client that builds an ARN for its own region still names the
same flywheel) and strict about everything else: a malformed ARN is a ``ValueError`` whose
message the API turns into Comprehend's InvalidRequestException.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

REGION: Final = "local"
ACCOUNT: Final = "000000000000"
ARN_PREFIX: Final = f"arn:aws:comprehend:{REGION}:{ACCOUNT}:"
#: Comprehend's ``ComprehendArnName``.
_NAME = r"[a-zA-Z0-9](?:-*[a-zA-Z0-9])*"
_HEAD = r"arn:aws(?:-[^:]+)?:comprehend:[a-zA-Z0-9-]*:[0-9]{12}:"
_RESOURCE = re.compile(
    _HEAD + rf"(?P<kind>[a-zA-Z0-9-]{{1,64}})/(?P<name>{_NAME})"
    rf"(?:/(?P<sub>dataset|version)/(?P<child>{_NAME}))?")

Kind = Literal["flywheel", "dataset", "model", "endpoint"]
MODEL_KIND: Final = "document-classifier"
ENDPOINT_KIND: Final = "document-classifier-endpoint"
MAX_ARN = 256


def flywheel_arn(name: str) -> str:
    return f"{ARN_PREFIX}flywheel/{name}"


def dataset_arn(flywheel: str, dataset: str) -> str:
    return f"{ARN_PREFIX}flywheel/{flywheel}/dataset/{dataset}"


def model_arn(name: str, version: str | None) -> str | None:
    """A flywheel's model version: its versions live in one classifier named after it."""
    return None if version is None else f"{ARN_PREFIX}{MODEL_KIND}/{name}/version/{version}"


def endpoint_arn(name: str) -> str:
    return f"{ARN_PREFIX}{ENDPOINT_KIND}/{name}"


@dataclass(frozen=True)
class Arn:
    """What an ARN names: ``name`` is the flywheel (or the endpoint), ``child`` the dataset or
    the model version."""

    kind: Kind
    name: str
    child: str | None = None


def parse_arn(arn: str, *expected: Kind) -> Arn:
    """The resource ``arn`` names, which must be one of ``expected`` (any when empty)."""
    found = _parse(arn)
    if expected and found.kind not in expected:
        wanted = " or ".join(f"a {kind} ARN" for kind in expected)
        raise ValueError(f"{_shown(arn)} is not {wanted}")
    return found


def _parse(arn: str) -> Arn:
    match = _RESOURCE.fullmatch(arn) if len(arn) <= MAX_ARN else None
    if match is None:
        raise ValueError(f"{_shown(arn)} is not a Comprehend ARN of this repository "
                         f"(like {flywheel_arn('NAME')})")
    kind, name, sub, child = match.group("kind", "name", "sub", "child")
    if kind == "flywheel" and sub is None:
        return Arn("flywheel", name)
    if kind == "flywheel" and sub == "dataset":
        return Arn("dataset", name, child)
    if kind == MODEL_KIND and sub == "version":
        return Arn("model", name, child)
    if kind == ENDPOINT_KIND and sub is None:
        return Arn("endpoint", name)
    raise ValueError(f"{_shown(arn)} names no resource this repository has (flywheels, their "
                     "datasets and model versions, document-classifier endpoints)")


def _shown(arn: str) -> str:
    return repr(arn if len(arn) <= 80 else arn[:77] + "...")

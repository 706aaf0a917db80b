"""An endpoint: Comprehend's ``CreateEndpoint``, declared in ``endpoints/<name>.yaml``.

An endpoint serves a flywheel's model for ClassifyDocument: its active model when the
endpoint names the flywheel (it follows every promotion, as Comprehend's endpoints created with
a ``FlywheelArn`` do), or one fixed version when it names a model version.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from reconciler.core.spec import API_VERSION, ModelVersion, Name, RoleArn, SpecModel, Tags

#: Comprehend's ``ComprehendEndpointName``: at most 40 characters.
EndpointName = Annotated[str, Field(min_length=1, max_length=40,
                                    pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$")]


class EndpointSpec(SpecModel):
    """One endpoint: one YAML file under ``endpoints/``."""

    api_version: Literal["flywheel-reconciler/v1"] = API_VERSION
    kind: Literal["Endpoint"] = "Endpoint"
    name: EndpointName
    flywheel: Name
    #: A fixed version of the flywheel's models; without it the endpoint follows the active one.
    model_version: ModelVersion | None = None
    desired_inference_units: int = Field(default=1, ge=1, le=1000)
    data_access_role_arn: RoleArn | None = None
    tags: Tags

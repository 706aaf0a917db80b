"""The few words the spec, the lake's records and the model files share: name and version
patterns, task modes, dataset types.

Kept apart from :mod:`reconciler.core.spec` (which builds some thirty pydantic models, a quarter
of a second at import) so that what only reads records, such as a one-text ``flywheel
classify``, does not pay for the spec's validation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

# Full matches only: pydantic's (Rust) engine reads `$` as the end of the text, but Python's
# re.match lets `$` match before a final "\n" ("v2\n"), so Python code uses re.fullmatch.
NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9])*$"
VERSION_PATTERN = r"^v[1-9][0-9]*$"

ModelVersion = Annotated[str, Field(pattern=VERSION_PATTERN)]


class Mode(StrEnum):
    MULTI_CLASS = "MULTI_CLASS"
    MULTI_LABEL = "MULTI_LABEL"


class DatasetType(StrEnum):
    TRAIN = "TRAIN"
    TEST = "TEST"

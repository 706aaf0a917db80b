"""The flywheel spec: what a user declares in ``specs/*.yaml`` (the desired state).

Field names are camelCase in YAML and snake_case in Python. Unknown fields are refused everywhere,
so a typo is an error rather than a silently ignored setting. Names and limits follow Amazon
Comprehend's (``ComprehendArnName``, label rules, ``LabelDelimiter``) so a spec can be read by
someone who knows Comprehend's ``CreateFlywheel`` and ``CreateDataset``.
"""

from __future__ import annotations

import posixpath
import re
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from reconciler.core.kinds import NAME_PATTERN as NAME_PATTERN
from reconciler.core.kinds import VERSION_PATTERN as VERSION_PATTERN
from reconciler.core.kinds import DatasetType as DatasetType
from reconciler.core.kinds import Mode as Mode
from reconciler.core.kinds import ModelVersion as ModelVersion
from reconciler.core.layout import DATA_DIR

API_VERSION: Final = "flywheel-reconciler/v1"
LABEL_DELIMITERS = " ~!@#$%^*-_+=|\\:;\t>?/"
#: A cell starting with one of these is run as a formula by spreadsheet programs; labels are
#: written to CSV files (``per_label_f1.csv``), so such labels are refused unless they are plain
#: numbers such as ``-1`` or ``+1``.
FORMULA_STARTS = "=+-@"
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
#: scikit-learn's ``random_state`` must fit in 32 bits.
MAX_SEED = 2**32 - 1
MAX_ITERATIONS = 1_000_000
#: The dataset versions one spec may declare.
MAX_DATASETS = 100

Name = Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN)]
Label = Annotated[str, Field(min_length=1, max_length=5000, pattern=r"^[^\x00-\x1f\x7f]*$")]
#: Comprehend's tag rules: at most 50 per resource, keys 1-128 and values 0-256 characters.
MAX_TAGS = 50
TagKey = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")]
TagValue = Annotated[str, Field(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")]
#: Tags are declared state that changes no model: left out of every dump (pipeline params, the
#: input digest), so tagging a resource never makes DVC or the planner see a change.
Tags = Annotated[dict[TagKey, TagValue], Field(default_factory=dict, max_length=MAX_TAGS,
                                                exclude=True)]


class LocatedValueError(ValueError):
    """A validation error of a whole-model check that knows which field to blame.

    Pydantic reports model-level errors at the model's location; the loader appends ``loc`` so
    the message names the offending field and its line.
    """

    def __init__(self, message: str, *loc: str | int) -> None:
        super().__init__(message)
        self.loc = loc


class Trigger(StrEnum):
    """What starts an iteration: new data (a changed input digest, the GitOps default), or only
    a request (``flywheel iterate``, the API's StartFlywheelIteration), as Comprehend's
    flywheels do; CreateFlywheel declares ``request``."""

    NEW_DATA = "newData"
    REQUEST = "request"


class LanguageCode(StrEnum):
    EN = "en"
    ES = "es"
    FR = "fr"
    DE = "de"
    IT = "it"
    PT = "pt"


class SpecModel(BaseModel):
    """What every declared file's models share: camelCase keys, no unknown field, frozen."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=True,
        use_enum_values=False,
        allow_inf_nan=False,  # C: .inf passes "> 0" and would only fail inside a fit
    )


class TaskConfig(SpecModel):
    """What is classified: Comprehend's ``TaskConfig`` with its ``DocumentClassificationConfig``."""

    language_code: LanguageCode = LanguageCode.EN
    mode: Mode
    labels: list[Label] = Field(min_length=2, max_length=1000)
    label_delimiter: str = Field(default="|", min_length=1, max_length=1)
    min_documents_per_label: int = Field(default=10, ge=1, le=100_000)

    @field_validator("label_delimiter")
    @classmethod
    def _known_delimiter(cls, value: str) -> str:
        if value not in LABEL_DELIMITERS:
            raise ValueError(f"must be one character of {LABEL_DELIMITERS!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _unique_trimmed_labels(cls, labels: list[str]) -> list[str]:
        seen: set[str] = set()
        for index, label in enumerate(labels):
            if label and label[0] in FORMULA_STARTS and not _NUMBER.fullmatch(label):
                raise LocatedValueError(
                    f"label {label[:40]!r} starts with {label[0]!r}: a spreadsheet would run it "
                    "as a formula (labels are written to CSV files)", index)
            if label != label.strip():
                raise ValueError(f"label {label!r} has leading or trailing spaces")
            if label in seen:
                raise ValueError(f"label {label!r} is declared twice")
            seen.add(label)
        return labels

    @model_validator(mode="after")
    def _delimiter_not_in_labels(self) -> TaskConfig:
        if self.mode is Mode.MULTI_LABEL:
            for index, label in enumerate(self.labels):
                if self.label_delimiter in label:
                    raise LocatedValueError(
                        f"label {label!r} contains the label delimiter {self.label_delimiter!r}",
                        "labels", index,
                    )
        return self


class Dataset(SpecModel):
    """One dataset version: a Comprehend CSV file under ``data/``, used for TRAIN or TEST."""

    name: Name
    type: DatasetType
    path: str = Field(min_length=1, max_length=1024)
    description: str | None = Field(default=None, max_length=2048)
    #: A TRAIN dataset's documents must not appear in a TEST dataset (compared by normalised
    #: text); ``true`` accepts the overlap. Left out of dumps while false, so declaring it
    #: changes no existing pipeline's params.
    allow_test_overlap: bool = Field(
        default=False, exclude_if=lambda value: not value,
        description="TRAIN datasets only: accept documents that also appear in a TEST dataset "
                    "(refused by default: the test score would be inflated)")
    tags: Tags

    @field_validator("path")
    @classmethod
    def _inside_data_dir(cls, value: str) -> str:
        if "\\" in value or "\x00" in value:
            raise ValueError("use forward slashes and no NUL characters")
        if value.startswith("/") or (len(value) > 1 and value[1] == ":"):
            raise ValueError(f"{value!r} is absolute; give a path relative to the repository")
        normal = posixpath.normpath(value)
        if normal.startswith("..") or not normal.startswith(DATA_DIR + "/"):
            raise ValueError(f"{value!r} must stay inside the repository's {DATA_DIR}/ folder")
        return normal

    @model_validator(mode="after")
    def _overlap_flag_on_train_only(self) -> Dataset:
        if self.allow_test_overlap and self.type is DatasetType.TEST:
            raise LocatedValueError("only a TRAIN dataset can set allowTestOverlap (set it on "
                                    "the TRAIN dataset that shares documents with this one)",
                                    "allowTestOverlap")
        return self


class Features(SpecModel):
    """TF-IDF features shared by every recipe."""

    ngram_range: tuple[int, int] = (1, 2)
    char_ngram_range: tuple[int, int] | None = None
    min_df: int = Field(default=1, ge=1)
    max_df: float = Field(default=1.0, gt=0.0, le=1.0)
    max_features: int | None = Field(default=None, ge=1)
    sublinear_tf: bool = True
    lowercase: bool = True

    @field_validator("ngram_range", "char_ngram_range")
    @classmethod
    def _ordered_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1 <= value[0] <= value[1] <= 8:
            raise ValueError("must be [low, high] with 1 <= low <= high <= 8")
        return value


class _RecipeBase(SpecModel):
    features: Features = Features()
    holdout_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)


class LinearSvmRecipe(_RecipeBase):
    """TF-IDF + linear SVM (one-vs-rest for multi-label): strong and fast on short texts."""

    algorithm: Literal["linear-svm"] = "linear-svm"
    c: float = Field(default=1.0, gt=0.0, alias="C")
    class_weight: Literal["balanced"] | None = None
    max_iter: int = Field(default=5000, ge=1, le=MAX_ITERATIONS)


class LogisticRegressionRecipe(_RecipeBase):
    """TF-IDF + logistic regression: calibrated-ish probabilities as scores."""

    algorithm: Literal["logistic-regression"]
    c: float = Field(default=10.0, gt=0.0, alias="C")
    class_weight: Literal["balanced"] | None = None
    max_iter: int = Field(default=2000, ge=1, le=MAX_ITERATIONS)


class ComplementNbRecipe(_RecipeBase):
    """TF-IDF + complement naive Bayes: the quickest to train, a sound small-data baseline."""

    algorithm: Literal["complement-nb"]
    alpha: float = Field(default=0.3, gt=0.0)


Recipe = Annotated[
    LinearSvmRecipe | LogisticRegressionRecipe | ComplementNbRecipe,
    Field(discriminator="algorithm"),
]


class Webhook(SpecModel):
    """Where a Degraded flywheel is announced: an HTTP POST of a JSON body, retried."""

    url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s]+$")]
    timeout_seconds: float = Field(default=5.0, gt=0.0, le=60.0)
    retries: int = Field(default=3, ge=0, le=10)


class DegradationAlarm(SpecModel):
    """The degradation alarm (:mod:`reconciler.core.degradation`): ``maxDrop`` is how far the
    active version's F1 may fall below its F1 at promotion; falling below ``minF1`` counts too."""

    max_drop: float | None = Field(default=None, ge=0.0, le=1.0)
    webhook: Webhook | None = None


class DriftThresholds(SpecModel):
    """Past any of these, the flywheel has a DataDrift condition (:mod:`reconciler.core.drift`
    measures each new dataset against the active version's training data): the label
    distribution's population stability index, the share of tokens the active version never
    saw, and how many times longer or shorter the documents are on average."""

    max_label_psi: float | None = Field(default=0.25, ge=0.0, le=100.0)
    max_unseen_tokens: float | None = Field(default=None, ge=0.0, le=1.0)
    max_length_ratio: float | None = Field(default=None, ge=1.0, le=1000.0)


class Promotion(SpecModel):
    """The F1-threshold policy: promote a new version when it is good enough and better enough.

    ``writeBack``: a policy promotion also rewrites the spec's ``activeModel`` line (marked
    ``# flywheel:policy``) and commits it, so git says which version is active.
    ``degradation``: the alarm on the active version's F1 from its promotion onwards.
    """

    min_f1: float = Field(default=0.0, ge=0.0, le=1.0)
    min_improvement: float = Field(default=0.0, ge=-1.0, le=1.0)
    write_back: bool = False
    degradation: DegradationAlarm | None = None


RoleArn = Annotated[str, Field(min_length=20, max_length=2048,
                               pattern=r"^arn:aws(-[^:]+)?:iam::[0-9]{12}:role/.+$")]
KmsKeyId = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^[\x20-\x7e]+$")]
VpcId = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[-0-9a-zA-Z]+$")]


class VpcConfig(SpecModel):
    security_group_ids: list[VpcId] = Field(min_length=1, max_length=5)
    subnets: list[VpcId] = Field(min_length=1, max_length=16)


class DataSecurityConfig(SpecModel):
    model_kms_key_id: KmsKeyId | None = None
    volume_kms_key_id: KmsKeyId | None = None
    data_lake_kms_key_id: KmsKeyId | None = None
    vpc_config: VpcConfig | None = None


class ComprehendSettings(SpecModel):
    """What Comprehend's ``CreateFlywheel`` declares that a local reconciler keeps but does not
    use (no IAM role is assumed, nothing is encrypted with KMS, the lake is ``lake/``): kept so
    that what an API client set, it reads back. Left out of every dump, like tags."""

    data_access_role_arn: RoleArn | None = None
    data_lake_s3_uri: str | None = Field(
        default=None, max_length=512,
        pattern=r"^s3://[a-z0-9][\.\-a-z0-9]{1,61}[a-z0-9](/.*)?$")
    data_security_config: DataSecurityConfig | None = None


class FlywheelSpec(SpecModel):
    """One flywheel: one YAML file under ``specs/``.

    ``datasets`` may be empty: a flywheel made by the API's CreateFlywheel gets its data from
    CreateDataset afterwards, as Comprehend's does; it waits (a plan note) until a TRAIN
    dataset is declared.
    """

    api_version: Literal["flywheel-reconciler/v1"] = API_VERSION
    name: Name
    description: str | None = Field(default=None, max_length=2048)
    task: TaskConfig
    datasets: list[Dataset] = Field(default_factory=list, max_length=MAX_DATASETS)
    recipe: Recipe = LinearSvmRecipe()
    active_model: ModelVersion | None = None
    promotion: Promotion | None = None
    drift: DriftThresholds | None = None
    suspend: bool = False
    trigger: Trigger = Trigger.NEW_DATA
    tags: Tags
    comprehend: ComprehendSettings | None = Field(default=None, exclude=True)

    @field_validator("recipe", mode="before")
    @classmethod
    def _default_algorithm(cls, value: object) -> object:
        """``algorithm`` may be left out: the default recipe is linear-svm."""
        if isinstance(value, dict) and "algorithm" not in value:
            return {"algorithm": "linear-svm", **value}
        return value

    @model_validator(mode="after")
    def _datasets_consistent(self) -> FlywheelSpec:
        names: set[str] = set()
        paths: set[str] = set()
        for index, dataset in enumerate(self.datasets):
            if dataset.name in names:
                raise LocatedValueError(f"dataset name {dataset.name!r} is used twice",
                                        "datasets", index, "name")
            if dataset.path in paths:
                raise LocatedValueError(f"dataset path {dataset.path!r} is used twice",
                                        "datasets", index, "path")
            names.add(dataset.name)
            paths.add(dataset.path)
        return self

    @property
    def train_datasets(self) -> list[Dataset]:
        return [d for d in self.datasets if d.type is DatasetType.TRAIN]

    @property
    def test_datasets(self) -> list[Dataset]:
        return [d for d in self.datasets if d.type is DatasetType.TEST]


def json_schema() -> dict[str, object]:
    """The spec's JSON Schema (by alias, as written in YAML), for editors and CI validation."""
    schema = FlywheelSpec.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Flywheel spec"
    return schema

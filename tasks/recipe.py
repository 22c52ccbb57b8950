"""The recipe model: one YAML file describes a run. Validated on construction; errors name the field.

It lives in tasks/ because the steps take it (tasks never import flows);
``flows.recipe`` reads the YAML file (``load_recipe``) and re-exports these names.

Relative paths in the recipe resolve against the recipe file's folder. Dataset
paths, image roots and the output root may also be ``s3://`` URIs (``storage.fs``
for inputs, ``storage.outfs`` for the output root).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from magicvl.model.model_ref import ref_problem
from magicvl.model.train_config import TrainConfig
from magicvl.scoring.categorize import CategorizeConfig
from magicvl.scoring.combine import CombineConfig
from magicvl.scoring.crossmodal import CrossModalConfig, check_pairs
from magicvl.scoring.dedup import DedupConfig
from magicvl.scoring.filters.config import FiltersConfig
from magicvl.scoring.judge import JudgesConfig
from magicvl.scoring.signals import SIGNALS, SignalParams, get_signal
from magicvl.scoring.translate import TranslateConfig, translated_datasets
from magicvl.storage.fingerprint import stable_hash
from magicvl.storage.fs import check_uri, is_uri, scheme
from magicvl.storage.ingest.spec import DatasetConfig, IngestOptions
from magicvl.storage.options import StorageOptions
from magicvl.storage.outfs import OutPath, as_path
from magicvl.storage.overlap import output_overlap
from magicvl.tasks.resources import StepResources


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and field."""


class RayOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(
        default="local", description="'local' starts a private Ray for the run; else a cluster address."
    )
    num_cpus: int | None = Field(default=None, gt=0, description="CPUs of the local Ray (default: all).")
    max_in_flight: int | None = Field(default=None, gt=0, description="Tasks submitted at once (default: 2 × CPUs).")
    task_retries: int = Field(default=2, ge=0, description="Ray retries of a task whose worker died.")


class ResourcesConfig(BaseModel):
    """Per-step resources (``resources:`` in the recipe); the same recipe runs on a laptop or a GPU cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ingest: StepResources = Field(default_factory=StepResources)
    dedup: StepResources = Field(default_factory=StepResources)
    combine: StepResources = Field(default_factory=StepResources)
    quality: StepResources = Field(default_factory=StepResources, description="Filters, dedup hashing, verdicts.")
    judge: StepResources = Field(default_factory=StepResources, description="Each LLM/VLM judge's actors.")
    categorize: StepResources = Field(default_factory=StepResources, description="The VLM classifier's actors.")
    translate: StepResources = Field(default_factory=StepResources, description="The translation LLM's actors.")
    signals: dict[str, StepResources] = Field(default_factory=dict, description="Signal name → its resources.")

    def signal(self, name: str) -> StepResources:
        return self.signals.get(name) or StepResources()


class Recipe(BaseModel):
    """A whole run: inputs, checks, signals, how scores combine, where outputs go."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output: str = Field(description="Output root folder.")
    datasets: list[DatasetConfig] = Field(min_length=1)
    ingest: IngestOptions = Field(default_factory=IngestOptions)
    storage: StorageOptions = Field(default_factory=StorageOptions)
    signals: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Signal name → its parameters (see `magicvl signals`)."
    )
    combine: CombineConfig = Field(default_factory=CombineConfig)
    cross_modal: CrossModalConfig | None = Field(
        default=None, description="VLMs whose response losses give S_task (one vlm_loss@<name> job each)."
    )
    filters: FiltersConfig = Field(default_factory=FiltersConfig, description="Heuristic and repetition filters.")
    categorize: CategorizeConfig = Field(default_factory=CategorizeConfig, description="Unlabelled samples.")
    dedup: DedupConfig = Field(default_factory=DedupConfig, description="Duplicates across all datasets of the run.")
    judge: JudgesConfig = Field(default_factory=JudgesConfig, description="LLM/VLM judges (off unless configured).")
    translate: TranslateConfig | None = Field(
        default=None, description="Translate English samples into a new dataset <name>_<suffix> (off unless set)."
    )
    ray: RayOptions = Field(default_factory=RayOptions)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    train: TrainConfig | None = Field(default=None, description="Stage training (model/train_config.py).")
    base_dir: Path = Field(default=Path("."), exclude=True, description="Folder relative paths resolve in.")

    @field_validator("output")
    @classmethod
    def _output_uri(cls, v: str) -> str:
        if scheme(v) is not None:
            check_uri(v, "output root")
        return v

    @model_validator(mode="after")
    def _uris_usable(self) -> Recipe:
        for i, d in enumerate(self.datasets):
            for name in ("path", "image_root"):
                value = getattr(d, name)
                if value is not None and scheme(value) is not None:
                    check_uri(value, f"datasets[{i}].{name}")
            if is_uri(d.image_root) and self.ingest.images == "reference":
                raise ValueError(
                    f"datasets[{i}].image_root is on object storage and ingest.images is 'reference': "
                    "referenced images are read again by later steps, which read local paths only; use images: embed"
                )
        return self

    @field_validator("datasets")
    @classmethod
    def _unique(cls, v: list[DatasetConfig]) -> list[DatasetConfig]:
        names = [d.name for d in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"dataset names must be unique; repeated: {dup}")
        return v

    @field_validator("signals")
    @classmethod
    def _signals(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, params in v.items():
            signal = get_signal(name) if name in SIGNALS else None
            if signal is None:
                raise ValueError(f"unknown signal {name!r}; known: {', '.join(sorted(SIGNALS))}")
            try:
                signal.params(**(params or {}))
            except ValidationError as e:
                raise ValueError(f"{name}: {_first_error(e)}") from None
        return {k: dict(p or {}) for k, p in v.items()}

    @model_validator(mode="after")
    def _resources_known(self) -> Recipe:
        unknown = [s for s in self.resources.signals if s not in self.signals]
        if unknown:
            raise ValueError(f"resources.signals names signals not configured in `signals`: {unknown}")
        return self

    @model_validator(mode="after")
    def _log1p_known(self) -> Recipe:
        unknown = [m for m in self.combine.log1p if m not in SIGNALS]
        if unknown:
            raise ValueError(f"combine.log1p names unknown metrics {unknown}")
        check_pairs(self.cross_modal, self.combine.task)
        return self

    @model_validator(mode="after")
    def _output_apart_from_inputs(self) -> Recipe:
        inputs = []  # object-store inputs cannot overlap a local output root
        for i, d in enumerate(self.datasets):
            if not is_uri(d.path):
                inputs.append((f"datasets[{i}].path", self.path(d.path)))
            if d.image_root and not is_uri(d.image_root):
                inputs.append((f"datasets[{i}].image_root", self.path(d.image_root)))
        if is_uri(self.output):
            return self  # an object-store output root cannot overlap local inputs
        if problem := output_overlap(self.output_root, inputs):
            raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _translate_known(self) -> Recipe:
        if self.translate is not None:
            names = [d.name for d in self.datasets]
            unknown = [n for n in self.translate.datasets if n not in names]
            if unknown:
                raise ValueError(f"translate.datasets names datasets not in `datasets`: {unknown}")
            taken = [self.translate.target(n) for n in self.translate.datasets if self.translate.target(n) in names]
            if taken or len(set(self.translate.datasets)) != len(self.translate.datasets):
                raise ValueError(f"translate: target dataset names clash with recipe datasets or repeat: {taken}")
        return self

    @model_validator(mode="after")
    def _tensor_parallel_matches_gpus(self) -> Recipe:
        from magicvl.tasks.gpu_steps import gpu_steps, tensor_parallel_problem

        for step in gpu_steps(self):
            if problem := tensor_parallel_problem(step):
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _vlm_datasets_known(self) -> Recipe:
        names = {d.name for d in self.all_datasets}
        if unknown := [n for n in self.categorize.vlm_datasets or [] if n not in names]:
            raise ValueError(f"categorize.vlm_datasets: {unknown} are not datasets of this recipe ({sorted(names)})")
        return self

    @model_validator(mode="after")
    def _some_signal(self) -> Recipe:
        if not self.signals and self.cross_modal is None:
            raise ValueError(
                "signals: none configured, so no sample gets a complexity score and every record would be "
                "dropped as no_complexity_axis; add one under `signals:` (e.g. token_length: {tokenizer: <path or "
                "id>}, or image_entropy: {}; list: `magicvl signals`) or a `cross_modal:` section"
            )
        return self

    @model_validator(mode="after")
    def _models_loadable(self) -> Recipe:
        for field, value in self.model_refs():
            if problem := ref_problem(value, self.base_dir):
                raise ValueError(f"{field}: {problem}")
        return self

    @model_validator(mode="after")
    def _one_end_of_turn_rule(self) -> Recipe:
        fields = {
            f"signals.{name}.count_end_of_turn": bool(self.signals[name].get("count_end_of_turn", False))
            for name in ("perplexity", "vlm_loss")
            if name in self.signals
        }
        for name, m in (self.cross_modal.models if self.cross_modal else {}).items():
            fields[f"cross_modal.models.{name}.count_end_of_turn"] = m.count_end_of_turn
        if len(set(fields.values())) > 1:
            shown = ", ".join(f"{k}={v}" for k, v in fields.items())
            raise ValueError(f"count_end_of_turn must be the same for every loss signal (one token rule): {shown}")
        return self

    # derived -------------------------------------------------------------------
    @property
    def all_datasets(self) -> list[DatasetConfig]:
        """The recipe's datasets, then those the translation step adds (what quality, signals, combine see)."""
        return self.datasets + translated_datasets(self.datasets, self.translate)

    def model_refs(self) -> list[tuple[str, str]]:
        """(recipe field, value) of every model or tokenizer the run would load with ``from_pretrained``."""
        refs = [
            (f"signals.{name}.{key}", params[key])
            for name, params in self.signals.items()
            for key in ("model", "tokenizer")
            if isinstance(params.get(key), str)
        ]
        if self.cross_modal is not None:
            refs += [(f"cross_modal.models.{n}.model", m.model) for n, m in self.cross_modal.models.items()]
        for name in ("coherence", "hallucination"):
            if (judge := getattr(self.judge, name)) is not None:
                refs.append((f"judge.{name}.model", judge.model))
        if self.categorize.vlm is not None:
            refs.append(("categorize.vlm.model", self.categorize.vlm.model))
        if self.translate is not None:
            refs.append(("translate.model", self.translate.model))
        if self.train is not None:
            refs.append(("train.model", self.train.model))
        return refs

    def path(self, p: str | None) -> Path | str | None:
        """A recipe path made absolute (relative ones resolve in the recipe's folder); an s3:// URI as is."""
        if p is None:
            return None
        if is_uri(p):
            return p
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base_dir / q).resolve()

    @property
    def output_root(self) -> OutPath:
        """The output root: a local Path, or an S3Path reached with ``storage.s3``."""
        return as_path(self.path(self.output), self.storage.s3)

    def signal_params(self, name: str) -> SignalParams:
        """Validated parameters of a configured signal, with model/tokenizer paths made absolute."""
        signal = get_signal(name)
        params = dict(self.signals[name])
        for key in ("tokenizer", "model"):
            if isinstance(params.get(key), str) and not is_uri(params[key]) and self.path(params[key]).exists():
                params[key] = str(self.path(params[key]))
        if signal.placed is not None:  # a device chosen by the step's GPUs, named in the cache key
            params = signal.placed(params, self.resources.signal(name).num_gpus)
        return signal.params(**params)

    def digest(self) -> str:
        """Hash of everything that affects outputs (the recipe hash in manifests)."""
        return stable_hash(self.model_dump(mode="json"), size=12)


def _first_error(e: ValidationError) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"])
    return f"{loc}: {err['msg']}" if loc else err["msg"]


def _format_errors(e: ValidationError, source: str) -> str:
    """One line for one error (a cross-field check's message names its own field), else one line each."""
    lines = []
    for err in e.errors():
        loc = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in err["loc"]).lstrip(".")
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}" if loc else msg)
    if len(lines) == 1:
        return f"invalid recipe {source}: {lines[0]}"
    return "\n".join([f"invalid recipe {source}:", *(f"  {line}" for line in lines)])


def parse_recipe(data: dict[str, Any], base_dir: Path, source: str = "<recipe>") -> Recipe:
    """Validate a recipe mapping; RecipeError lists every bad field."""
    if not isinstance(data, dict):
        raise RecipeError(f"invalid recipe {source}: expected a mapping at the top level")
    try:
        return Recipe(**data, base_dir=base_dir)
    except ValidationError as e:
        raise RecipeError(_format_errors(e, source)) from None

"""One pydantic model holds every setting of a run; it can also be read from TOML or YAML."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..checks.fit import DEFAULT_MARGIN
from ..errors import ConfigError
from ..generation.sampling import DEFAULT_STYLE_WEIGHTS, GenerationMode, parse_style_mix
from ..model.bounds import ARRAY_MAX_ITEMS, STRING_MAX_CHARS, SchemaBounds
from ..model.engine import KvKeys
from ..types import JudgeDesign, QueryStyle

#: sampling temperature when none is given. Calls-first asks only for a request that states given
#: values: at 0.3 the default model wrote 22 correct requests in 80 dev rows, against 15 at 0.7 and
#: 18 at 0.1 (benchmarks/README.md, issue 38). Query-first keeps 0.7: it must vary its calls too.
DEFAULT_TEMPERATURE: dict[str, float] = {"query_first": 0.7, "calls_first": 0.3}


class GenerationConfig(BaseModel):
    """Settings of one ``generate`` run. Unknown keys are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid")

    library: str = Field(description="Python file or module of functions")
    model: str | None = Field(None, description="GGUF path; default: $APIGEN_MODEL or models/")
    rows: int = Field(100, ge=1, description="candidate rows to generate (one request each)")
    out_dir: str = "out"
    seed: int = 0
    styles: dict[QueryStyle, float] = Field(default_factory=lambda: dict(DEFAULT_STYLE_WEIGHTS))
    seed_file: str | None = Field(None, description="few-shot rows in xlam-60k JSONL")
    mode: GenerationMode = Field("calls_first", description="calls_first: calls drawn and run first, the "
                                 "model writes only the request; or query_first (benchmarks/README.md)")
    # one: three tries gave more accepted rows per requested row but fewer correct rows per minute
    # (issue 38's third round, benchmarks/README.md)
    request_candidates: int = Field(1, ge=1, le=8, description="calls-first: the most requests written for each "
                                    "drawn call; another only while none states its call (checks/part.py)")
    n_examples: int = Field(3, ge=0, le=10)
    # the rows of a batch share one shuffled order of the seed examples, so they mostly share
    # their few-shot block and evaluate it once (benchmarks/README.md); 1: each row draws its own
    example_group: int = Field(16, ge=1, description="rows that read the few-shot examples in one order")
    lenient: bool = Field(False, description="skip undescribable functions instead of failing")
    # model
    n_ctx: int = Field(8192, ge=512)
    n_threads: int | None = None
    n_gpu_layers: int = 0
    reencode_weights: bool = Field(True, description="on a CPU, compute a Q4_1 model as Q8_0 (faster)")
    kv_keys: KvKeys = Field("q8_0", description="how batched decoding caches attention keys")
    max_tokens: int | None = Field(
        None, ge=64, description="token cap per generation; default: the longest text the schema admits"
    )
    temperature: float = Field(ge=0.0, le=2.0, description="sampling temperature; default by mode "
                               "(DEFAULT_TEMPERATURE)")
    # bounds on generated values (model/bounds.py): the constraint stops every string and list there
    max_string_chars: int = Field(STRING_MAX_CHARS, ge=8, le=4096,
                                  description="longest string argument the model may write")
    max_list_items: int = Field(ARRAY_MAX_ITEMS, ge=1, le=256, description="longest list argument")
    # sandbox
    call_timeout: float = Field(5.0, gt=0)
    max_containers: int = Field(2, ge=1)
    calls_per_container: int = Field(64, ge=1)
    batch_rows: int = Field(16, ge=1, description="rows generated before their calls are executed")
    # batch_rows 16 rows decoded 8 at a time, each finished row replaced by a waiting one, gave the
    # most rows/min on SmolLM2 (benchmarks/README.md)
    decode_batch: int = Field(8, ge=1, le=64, description="sequences decoded at once (1: one at a time)")
    constraint_backend: Literal["outlines_core", "llguidance"] = Field(
        "llguidance", description="Outlines backend of the JSON constraint")
    # checks
    grounding: bool = Field(True, description="reject argument values the query does not state")
    irrelevance: float = Field(0.0, ge=0.0, le=0.9, description="share of rows made into no-call rows: a "
                               "passing row loses its called functions from the offered tools (checks/irrelevance.py)")
    semantic: bool = Field(True, description="run the semantic checker")
    judge: JudgeDesign = Field("coverage", description="semantic design: coverage, verdict or agreement")
    fit_margin: float | None = Field(None, description="function fit: how much better the called functions "
                                     f"must explain the request than the others (off by default; {DEFAULT_MARGIN} "
                                     "was best on the default model's dev rows)")
    result_chars: int = Field(400, ge=50)

    @model_validator(mode="before")
    @classmethod
    def _temperature_of_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("temperature") is None:
            mode = data.get("mode", cls.model_fields["mode"].default)
            data = {**data, "temperature": DEFAULT_TEMPERATURE.get(mode, DEFAULT_TEMPERATURE["query_first"])}
        return data

    @field_validator("styles", mode="before")
    @classmethod
    def _parse_styles(cls, value: Any) -> Any:
        return parse_style_mix(value) if isinstance(value, str) else value

    def bounds(self) -> SchemaBounds:
        """The value bounds of generated rows."""
        return SchemaBounds(string_max_chars=self.max_string_chars, array_max_items=self.max_list_items)

    def identity(self) -> dict[str, Any]:
        """The settings that decide row contents; a resumed run must match them."""
        identity = self.model_dump(include={"library", "seed", "styles", "seed_file", "mode", "n_examples",
                                            "example_group", "max_tokens", "temperature",
                                            "max_string_chars", "max_list_items", "grounding", "semantic", "judge",
                                            "fit_margin"})
        if self.irrelevance:  # only then, so that runs from before the setting existed still resume
            identity["irrelevance"] = self.irrelevance
        if self.mode == "calls_first":
            identity["request_candidates"] = self.request_candidates
        return identity

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> GenerationConfig:
        """Read a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file; ``overrides`` win."""
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {file}")
        text = file.read_text(encoding="utf-8")
        try:
            if file.suffix == ".toml":
                try:
                    import tomllib
                except ModuleNotFoundError:  # Python 3.10
                    import tomli as tomllib

                data = tomllib.loads(text)
            elif file.suffix in {".yaml", ".yml"}:
                import yaml

                data = yaml.safe_load(text) or {}
            elif file.suffix == ".json":
                data = json.loads(text)
            else:
                raise ConfigError(f"config file must be .toml, .yaml or .json: {file}")
        except ConfigError:
            raise
        except Exception as exc:  # tomllib / yaml / json each raise their own parse errors
            raise ConfigError(f"cannot parse config file {file}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"config file {file} must hold a table of settings")
        return build_config({**data, **{k: v for k, v in overrides.items() if v is not None}})


def build_config(values: dict[str, Any]) -> GenerationConfig:
    """Validate settings, turning pydantic's report into one readable sentence."""
    try:
        return GenerationConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'config'}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}") from exc

"""The client registry's schema: what a `clients/<slug>.yaml` may say.

Validation errors are turned into messages naming the file, line and field by
goalpost.registry.loader. Metrics, goals, alert rules and dashboards join this schema in later
versions; unknown keys are refused so that typos do not pass silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from goalpost.canonical import ENTITIES, ENTITY_NAMES
from goalpost.identifiers import NAME_RE
from goalpost.metrics import MetricOverride

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Name = Annotated[str, Field(pattern=NAME_RE.pattern, max_length=40)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Owner(_Strict):
    """Someone at the client who reads the dashboards and the alert emails."""

    name: str = Field(min_length=1)
    email: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not EMAIL_RE.match(value):
            raise ValueError(f"{value!r} is not an email address (expected name@example.com)")
        return value.lower()


class FileStream(_Strict):
    """One stream of a file source: the files of one kind (e.g. the monthly sales exports)."""

    name: Name
    path: str = Field(min_length=1, description="a file, a folder or a glob; relative paths "
                      "are relative to the project root")
    entity: Literal[ENTITY_NAMES]  # type: ignore[valid-type]
    primary_key: list[str] = Field(default_factory=list)
    columns: dict[str, str] = Field(default_factory=dict)
    format: Literal["auto", "csv", "xlsx"] = "auto"
    delimiter: str = "auto"
    encoding: str = "auto"
    decimal: Literal["auto", ".", ","] = "auto"
    date_format: str = "auto"
    sheet: str | None = None

    @field_validator("delimiter")
    @classmethod
    def _delimiter(cls, value: str) -> str:
        value = {"tab": "\t", "\\t": "\t"}.get(value, value)
        if value != "auto" and len(value) != 1:
            raise ValueError("use one character (, ; | or tab) or auto")
        return value

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str) -> str:
        if value == "auto":
            return value
        import codecs

        try:
            return codecs.lookup(value).name
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (try utf-8, cp1252, latin-1)") from None

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        entity = info.data.get("entity")
        if entity is None:
            return value
        known = {field.name for field in ENTITIES[entity]}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown field(s) {', '.join(unknown)} for entity {entity}; the keys are "
                f"canonical fields ({', '.join(sorted(known))}), the values your file's columns"
            )
        return value


EntityName = Literal[ENTITY_NAMES]  # type: ignore[valid-type]
ENTITIES_HELP = (
    "the canonical entities this source feeds (default: every entity its streams carry); "
    "when two systems hold the same records (sales in both the POS exports and its API), "
    "name the one that is the truth for each entity, so nothing is counted twice"
)


def _check_entities(source: str, wanted: list[str] | None, carried: set[str]) -> None:
    extra = sorted(set(wanted or ()) - carried)
    if extra:
        raise ValueError(
            f"source {source} cannot feed {', '.join(extra)}: its streams carry "
            f"{', '.join(sorted(carried)) or 'no canonical entity'}")


class FileSource(_Strict):
    """A system whose data arrives as exported files (CSV, CSV.gz, XLSX)."""

    name: Name
    connector: Literal["files"]
    streams: list[FileStream] = Field(min_length=1)
    entities: list[EntityName] | None = Field(default=None, description=ENTITIES_HELP)

    @model_validator(mode="after")
    def _unique_streams(self) -> FileSource:
        names = [stream.name for stream in self.streams]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stream names must be unique; repeated: {', '.join(dupes)}")
        _check_entities(self.name, self.entities, self.carried_entities())
        return self

    def carried_entities(self) -> set[str]:
        return {stream.entity for stream in self.streams}

    def fed_entities(self) -> set[str]:
        """The canonical entities this source's records go into."""
        carried = self.carried_entities()
        return carried if self.entities is None else carried & set(self.entities)


class ApiSource(_Strict):
    """A system read through its REST API with a connector manifest.

    `connector` names a shipped manifest (see `goalpost connectors`), or is `rest` with the
    manifest written inline under `manifest:` (the low-code path). `config` holds the
    manifest's settings; secrets are written `env:NAME`, never as values. `streams` picks some
    of the manifest's streams (all by default).
    """

    name: Name
    connector: str
    config: dict[str, Any] = Field(default_factory=dict)
    streams: list[str] | None = None
    manifest: dict[str, Any] | None = None
    entities: list[EntityName] | None = Field(default=None, description=ENTITIES_HELP)

    @field_validator("connector")
    @classmethod
    def _connector(cls, value: str) -> str:
        from pipelines.connectors.manifest import catalogue

        if value != "rest" and value not in catalogue():
            raise ValueError(f"unknown connector {value!r}; one of files, rest, "
                             + ", ".join(catalogue()))
        return value

    @model_validator(mode="after")
    def _known_connector(self) -> ApiSource:
        if self.connector == "rest":
            if self.manifest is None:
                raise ValueError("connector rest needs a `manifest:` (see the README)")
        elif self.manifest is not None:
            raise ValueError("`manifest:` goes with connector rest only")
        from goalpost.errors import GoalpostError

        try:
            spec = self.load_manifest()
        except GoalpostError as exc:
            raise ValueError(exc.message) from None
        from pipelines.connectors.secrets import settings_problems

        problems = settings_problems(spec, self.config)
        if problems:
            raise ValueError("; ".join(problems))
        unknown = sorted(set(self.streams or ()) - set(spec.streams))
        if unknown:
            raise ValueError(f"unknown stream(s) {', '.join(unknown)} of connector "
                             f"{self.connector}; it has {', '.join(spec.streams)}")
        _check_entities(self.name, self.entities, self.carried_entities())
        return self

    def carried_entities(self) -> set[str]:
        """The canonical entities of the selected streams (per the manifest)."""
        spec = self.load_manifest()
        return {spec.streams[name].entity for name in self.stream_names()
                if spec.streams[name].entity}

    def fed_entities(self) -> set[str]:
        """The canonical entities this source's records go into."""
        carried = self.carried_entities()
        return carried if self.entities is None else carried & set(self.entities)

    def load_manifest(self):  # noqa: ANN201 - pipelines.connectors.manifest.Manifest
        from pipelines.connectors.manifest import load_manifest, parse_manifest

        if self.connector == "rest":
            return parse_manifest(dict(self.manifest or {}, name=self.name),
                                  f"source {self.name}: manifest")
        return load_manifest(self.connector)

    def stream_names(self) -> list[str]:
        """The selected streams, parents first (a partitioned stream needs its parent)."""
        spec = self.load_manifest()
        wanted = set(self.streams or spec.streams)
        for name in list(wanted):
            partitions = spec.streams[name].partitions
            if partitions is not None and partitions.from_stream:
                wanted.add(partitions.from_stream)
        ordered = [n for n in spec.streams if n in wanted]
        return sorted(ordered, key=lambda n: 1 if spec.streams[n].partitions and
                      spec.streams[n].partitions.from_stream else 0)


def _source_kind(value: Any) -> str:
    connector = value.get("connector") if isinstance(value, dict) else getattr(
        value, "connector", None)
    return "files" if connector in (None, "files") else "api"


Source = Annotated[
    Annotated[FileSource, Tag("files")] | Annotated[ApiSource, Tag("api")],
    Discriminator(_source_kind),
]


class Client(_Strict):
    """A client of the consultancy, as declared in clients/<slug>.yaml."""

    name: str = Field(min_length=1)
    timezone: str = "UTC"
    currency: str = "EUR"
    country: str = "FR"
    schedule: str = "0 6 * * *"
    owners: list[Owner] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    metrics: dict[Name, MetricOverride] = Field(
        default_factory=dict, description="overrides of standard metrics (label, direction, "
        "target, ...) and the client's own metrics")
    extensions: list[Name] | None = Field(
        default=None, description="the extensions to run after each build, built-in or the "
        "consultant's own (default: every built-in)")
    extension_settings: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="settings per extension, e.g. "
        "{forecast: {horizon_days: 60}}")

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{3}", value):
            raise ValueError(f"{value!r} is not an ISO 4217 currency code (e.g. EUR, GBP, USD)")
        return value.upper()

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", value):
            raise ValueError(f"{value!r} is not an ISO 3166 country code (e.g. FR, GB, US)")
        return value.upper()

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        if not croniter.is_valid(value) or len(value.split()) != 5:
            raise ValueError(
                f"{value!r} is not a 5-field cron expression (e.g. '0 6 * * *' for 06:00 daily)"
            )
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> Client:
        names = [source.name for source in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        return self

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        import extensions

        folder = Path(extensions.__file__).parent
        unknown = [name for name in value if not (folder / f"{name}.py").is_file()
                   or name in ("api", "runner")]
        if unknown:
            raise ValueError(f"unknown extension(s) {', '.join(unknown)}: an extension is a "
                             f"module extensions/<name>.py (`goalpost extensions list`)")
        return list(dict.fromkeys(value))

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, MetricOverride]) -> dict[str, MetricOverride]:
        from goalpost.metrics import resolve

        resolve(value)  # ValueError naming the metric and its field
        return value

    def metric_registry(self):  # noqa: ANN201 - dict[str, goalpost.metrics.Metric]
        """The client's metrics: standard ones with its overrides, plus its own."""
        from goalpost.metrics import resolve

        return resolve(self.metrics)

    def source(self, name: str) -> Source | None:
        return next((source for source in self.sources if source.name == name), None)

"""Where an ``openai:`` model is served: one URL, a comma-separated list, or an endpoints file.

An endpoints file is YAML: the servers, each with its own limits, and optional defaults for all::

    defaults:                  # optional; every endpoint's field falls back to these
      max_concurrency: 32
    endpoints:
      - url: http://gpu01:8000/v1
      - url: http://gpu02:8000/v1
        max_concurrency: 64
      - url: https://api.example.com/v1
        rpm: 500               # requests per minute
        tpm: 200000            # tokens per minute
        api_key_env: EXAMPLE_API_KEY   # the variable holding its key, never the key itself
    unhealthy_after: 3         # consecutive failures before an endpoint is set aside
    probe_interval_s: 5        # how often a set-aside endpoint is asked whether it is back
    request_timeout_s: 120     # one attempt on one endpoint, before the call moves on
    max_attempts: 6            # attempts of one call over all endpoints (default: 2 x endpoints)

Every problem names the file, the field and the line::

    endpoints.yaml:7: endpoints[1].max_concurrency: Input should be greater than or equal to 1

Examples
--------
>>> split_base_urls("http://a:8000/v1, http://b:8000/v1")
['http://a:8000/v1', 'http://b:8000/v1']
>>> config = endpoints_from_text("endpoints:\\n  - url: http://a:8000/v1\\n    rpm: 60\\n")
>>> config.endpoints[0].max_concurrency, config.endpoints[0].rpm
(8, 60.0)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from societas.llm.types import LLMConfigError

__all__ = [
    "DEFAULT_ENDPOINT_CONCURRENCY",
    "EndpointSpec",
    "EndpointsConfig",
    "EndpointsFileError",
    "endpoints_from_text",
    "load_endpoints",
    "public_url",
    "split_base_urls",
]

DEFAULT_ENDPOINT_CONCURRENCY = 8
_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SECRET_FIELDS = ("api_key", "key", "token", "secret", "password")

FieldPath = tuple[str | int, ...]
PositiveRate = Annotated[float, Field(gt=0)]


class EndpointsFileError(LLMConfigError):
    """An endpoints file is malformed; ``problems`` lists each as ``(field path, line, text)``."""

    def __init__(self, problems: Sequence[tuple[str, int | None, str]], source: str) -> None:
        self.problems = tuple(problems)
        self.source = source
        lines = []
        for where, line, text in self.problems:
            place = f"{source}:{line}" if line is not None else source
            lines.append(": ".join(part for part in (place, where, text) if part))
        super().__init__("\n".join(lines))


class EndpointSpec(BaseModel):
    """One OpenAI-compatible server of a pool and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(min_length=1)
    max_concurrency: int = Field(default=DEFAULT_ENDPOINT_CONCURRENCY, ge=1, le=4096)
    rpm: PositiveRate | None = None
    tpm: PositiveRate | None = None
    api_key_env: str | None = Field(default=None, pattern=_ENV_NAME)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL, such as http://host:8000/v1")
        return url.strip().rstrip("/")

    @property
    def public_url(self) -> str:
        """The URL without any user name, password or query (safe to log and store)."""
        return public_url(self.url)


class EndpointsConfig(BaseModel):
    """A parsed endpoints file (or URL list): the servers and how their health is watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoints: tuple[EndpointSpec, ...] = Field(min_length=1)
    unhealthy_after: int = Field(default=3, ge=1, le=1000)
    probe_interval_s: float = Field(default=5.0, gt=0, le=3600)
    request_timeout_s: float = Field(default=120.0, gt=0, le=3600)
    max_attempts: int | None = Field(default=None, ge=1, le=1000)


def public_url(url: str) -> str:
    """``url`` without credentials or query, e.g. for logs.

    >>> public_url("https://user:hunter2@api.example.com/v1?key=abc")
    'https://api.example.com/v1'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def split_base_urls(text: str) -> list[str]:
    """The URLs of a comma-separated ``--base-url`` or ``SOCIETAS_BASE_URL`` value."""
    return [part.strip() for part in text.split(",") if part.strip()]


def endpoints_from_urls(urls: Sequence[str]) -> EndpointsConfig:
    """A pool configuration of ``urls`` with default limits; bad URLs raise LLMConfigError."""
    try:
        return EndpointsConfig(endpoints=tuple(EndpointSpec(url=url) for url in urls))
    except ValidationError as error:
        messages = "; ".join(str(detail["msg"]) for detail in error.errors(include_url=False))
        raise LLMConfigError(
            f"bad base URL list {[public_url(u) for u in urls]}: {messages}"
        ) from None


def load_endpoints(path: str | Path, env: Mapping[str, str] | None = None) -> EndpointsConfig:
    """Read an endpoints file; every problem is an :class:`EndpointsFileError`.

    Each ``api_key_env`` must name a variable that is set (in ``env``, default the process
    environment); its value is never read into an error.
    """
    file = Path(path)
    try:
        text = file.read_text("utf-8")
    except FileNotFoundError:
        raise EndpointsFileError([("", None, "no such file")], str(file)) from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as error:
        problem = f"cannot read: {type(error).__name__}"
        raise EndpointsFileError([("", None, problem)], str(file)) from None
    return endpoints_from_text(text, str(file), env)


def endpoints_from_text(
    text: str, source: str = "<endpoints>", env: Mapping[str, str] | None = None
) -> EndpointsConfig:
    """Parse and validate endpoints YAML; ``source`` names it in error messages."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = int(mark.line) + 1 if mark is not None else None
        raise EndpointsFileError([("", line, f"invalid YAML: {error.problem}")], source) from None
    except yaml.YAMLError as error:
        raise EndpointsFileError([("", None, f"invalid YAML: {error}")], source) from None
    if not isinstance(data, dict):
        message = "an endpoints file is a mapping with an 'endpoints' list"
        raise EndpointsFileError([("", 1, message)], source)
    problems = _secret_fields(data) or _bad_defaults(data.get("defaults"))
    if not problems:
        try:
            config = EndpointsConfig.model_validate(_with_defaults(data))
        except ValidationError as error:
            problems = _validation_problems(error)
        else:
            problems = _duplicates(config) + _unset_key_variables(config, env)
            if not problems:
                return config
    located = [(_render(path), _line_of(root, path), message) for path, message in problems]
    raise EndpointsFileError(located, source)


def _validation_problems(error: ValidationError) -> list[tuple[FieldPath, str]]:
    details = error.errors(include_url=False)
    bad_items = any(len(detail["loc"]) > 1 for detail in details)
    return [
        (tuple(detail["loc"]), str(detail["msg"]))
        for detail in details
        # A list whose items failed also "has too few valid items": say it once.
        if not (bad_items and detail["type"] == "too_short")
    ]


def _bad_defaults(defaults: Any) -> list[tuple[FieldPath, str]]:
    """Problems of the ``defaults`` mapping, checked on its own so they point at it."""
    if defaults is None:
        return []
    if not isinstance(defaults, dict):
        return [(("defaults",), "must be a mapping of endpoint fields (max_concurrency, rpm...)")]
    if "url" in defaults:
        return [(("defaults", "url"), "every endpoint has its own url")]
    try:
        EndpointSpec.model_validate({**defaults, "url": "http://placeholder"})
    except ValidationError as error:
        return [
            (("defaults", *tuple(detail["loc"])), str(detail["msg"]))
            for detail in error.errors(include_url=False)
        ]
    return []


def _with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    defaults = data.get("defaults") or {}
    rest = {key: value for key, value in data.items() if key != "defaults"}
    endpoints = rest.get("endpoints")
    if defaults and isinstance(endpoints, list):
        rest["endpoints"] = [
            {**defaults, **item} if isinstance(item, dict) else item for item in endpoints
        ]
    return rest


def _secret_fields(data: dict[str, Any]) -> list[tuple[FieldPath, str]]:
    """Keys written into the file itself are refused, without quoting them."""
    problems: list[tuple[FieldPath, str]] = []
    places: list[tuple[FieldPath, Any]] = [(("defaults",), data.get("defaults"))]
    endpoints = data.get("endpoints")
    if isinstance(endpoints, list):
        places += [(("endpoints", index), item) for index, item in enumerate(endpoints)]
    for path, item in places:
        if not isinstance(item, dict):
            continue
        for name in item:
            if str(name).lower() in _SECRET_FIELDS:
                message = "keys are read from the environment: name the variable in api_key_env"
                problems.append(((*path, str(name)), message))
    return problems


def _duplicates(config: EndpointsConfig) -> list[tuple[FieldPath, str]]:
    seen: set[str] = set()
    problems: list[tuple[FieldPath, str]] = []
    for index, spec in enumerate(config.endpoints):
        if spec.url in seen:
            problems.append((("endpoints", index, "url"), f"{spec.public_url} is listed twice"))
        seen.add(spec.url)
    return problems


def _unset_key_variables(
    config: EndpointsConfig, env: Mapping[str, str] | None
) -> list[tuple[FieldPath, str]]:
    source = os.environ if env is None else env
    return [
        (("endpoints", index, "api_key_env"), f"environment variable {spec.api_key_env} is not set")
        for index, spec in enumerate(config.endpoints)
        if spec.api_key_env is not None and not source.get(spec.api_key_env, "").strip()
    ]


def _render(path: FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _line_of(node: yaml.Node | None, path: FieldPath) -> int | None:
    """Line of the deepest node of ``path`` found in the YAML tree."""
    if node is None:
        return None
    line = int(node.start_mark.line) + 1
    for part in path:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    line, child = int(key.start_mark.line) + 1, value
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
            line = int(child.start_mark.line) + 1
        if child is None:
            break
        node = child
    return line

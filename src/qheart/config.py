"""One base for every dataclass config: named presets, nested dicts, files, `--set` overrides.

Encoder, pre-training, model and instruction-tuning configs all derive from `Config`, so each
loads the same way from a preset name, a dict, a JSON/YAML file or a saved run, and a resumed run
can say exactly which fields differ from the one it continues.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, ClassVar, Self


class ConfigError(ValueError):
    """A config that cannot be built or does not match the run it should continue."""


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _config_class(annotation: Any) -> type[Config] | None:
    """The Config subclass a field holds (also inside `X | None`), else None."""
    candidates = [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        candidates = list(typing.get_args(annotation))
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, Config):
            return candidate
    return None


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    return value


@dataclasses.dataclass
class Config:
    """Base of all qheart configs (subclasses are dataclasses with a docstring per field).

    Subclasses set `PRESETS` (name → field overrides; a nested config may be given by its own
    preset name) and validate in `__post_init__`.
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ building

    @classmethod
    def from_name(cls, name: str, **overrides: Any) -> Self:
        """A named preset with optional field overrides."""
        if name not in cls.PRESETS:
            raise ConfigError(f"unknown {cls.__name__} preset {name!r}; known: {sorted(cls.PRESETS)}")
        return cls.from_dict({**cls.PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Build from plain data; nested configs may be dicts, preset names or instances."""
        hints = _field_types(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        values = {}
        for name, value in data.items():
            nested = _config_class(hints[name])
            if nested is not None and isinstance(value, str):
                value = nested.from_name(value)
            elif nested is not None and isinstance(value, dict):
                value = nested.from_dict(value)
            values[name] = value
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | Path) -> Self:
        """A JSON or YAML file: the bare fields, or what `save` wrote ({"config": {...}})."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        text = path.read_text(encoding="utf-8")
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config file must hold a mapping")
        if "config" in data and isinstance(data["config"], dict):
            data = data["config"]
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{path}: {error}") from error

    # ------------------------------------------------------------------ writing

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fields (tuples as lists, nested configs as dicts)."""
        return {f.name: _to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def save(self, path: str | Path) -> Path:
        """Write {"config_type", "qheart_version", "config"} as JSON (what `from_file` reads)."""
        from qheart import __version__

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"config_type": type(self).__name__, "qheart_version": __version__,
                   "config": self.to_dict()}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        tmp.replace(path)
        return path

    # ------------------------------------------------------------------ comparing / overriding

    def differences(self, other: Config) -> list[str]:
        """Dotted names of the fields whose values differ (nested configs compared field-wise)."""
        return _diff(self.to_dict(), other.to_dict(), "")

    def with_overrides(self, assignments: list[str]) -> Self:
        """Apply `key=value` strings (dotted keys reach nested configs; values parsed as YAML,
        so `lr=1e-4`, `freeze_llm=true`, `betas=[0.9, 0.95]` all work)."""
        import yaml

        data = self.to_dict()
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep or not key.strip():
                raise ConfigError(f"--set {assignment!r}: expected key=value")
            parts = key.strip().split(".")
            target = data
            for part in parts[:-1]:
                if not isinstance(target.get(part), dict):
                    raise ConfigError(f"--set {assignment!r}: {part!r} is not a nested config")
                target = target[part]
            if parts[-1] not in target:
                raise ConfigError(f"--set {assignment!r}: unknown field {key.strip()!r}; "
                                  f"known: {sorted(target)}")
            value = yaml.safe_load(raw) if raw.strip() else None
            current = target[parts[-1]]
            if isinstance(value, str) and isinstance(current, int | float) \
                    and not isinstance(current, bool):
                try:  # YAML 1.1 reads "3e-4" as text; the field is a number
                    value = float(value)
                except ValueError:
                    raise ConfigError(f"--set {assignment!r}: {key.strip()} must be a number") \
                        from None
            target[parts[-1]] = value
        return type(self).from_dict(data)


def _diff(a: dict, b: dict, prefix: str) -> list[str]:
    out = []
    for key in sorted(set(a) | set(b)):
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            out += _diff(left, right, f"{prefix}{key}.")
        elif left != right:
            out.append(f"{prefix}{key}")
    return out


def require_same(saved: Config, requested: Config, where: str | Path) -> None:
    """Refuse to continue a run with another config, naming each differing field."""
    changed = saved.differences(requested)
    if changed:
        details = ", ".join(f"{name} ({_get(saved, name)!r} → {_get(requested, name)!r})"
                            for name in changed)
        raise ConfigError(f"{where}: the run was started with another config; differing fields: "
                          f"{details}. Resume without changing them, or use a new output folder.")


def _get(config: Config, dotted: str) -> Any:
    value: Any = config.to_dict()
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value

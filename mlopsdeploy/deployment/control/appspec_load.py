"""Reading ``mlopsdeploy.toml`` into an AppSpec, checked completely on the control machine.

A bad spec is refused naming the file and the key before any host is touched; an app dir without
the file is the bundled app.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any, Literal

from packaging.requirements import InvalidRequirement, Requirement

from mlopsdeploy.deployment.control.appspec import (
    PLACEHOLDERS,
    SPEC_NAME,
    AppSpec,
    AppSpecError,
    Check,
    jsonpath_steps,
)

_SECTIONS = {"install", "start", "model", "secrets", "env", "readiness", "checks"}
_KEYS = {
    "install": {"requirements", "pyproject"},
    "start": {"app", "command", "notify", "timeout"},
    "model": {"env"},
    "secrets": {"names"},
    "readiness": {"url", "url_alone"},
    "checks": {"name", "gradio", "http", "method", "args", "json", "output", "label"}
    | {"contains", "jsonpath", "equals"},
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OBJECT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def bundled_spec(directory: Path) -> AppSpec:
    """The bundled app as a spec: its wheel, ``python -m app``, /readyz plus its canaries."""
    return AppSpec(directory=directory, notify=True, ready_url="/readyz", bundled=True)


def load_app_spec(directory: Path) -> AppSpec:
    """Read and check ``<directory>/mlopsdeploy.toml``; without one, the bundled app's spec.

    Raises AppSpecError naming the file and key for anything the deploy could not act on.
    """
    path = directory / SPEC_NAME
    if not directory.is_dir():
        raise AppSpecError(f"{directory}: no such app directory")
    if not path.is_file():
        return bundled_spec(directory)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise AppSpecError(f"{path}: not valid TOML: {e}") from e
    return _parse(path, data)


def _fail(path: Path, key: str, why: str) -> AppSpecError:
    return AppSpecError(f"{path}: {key}: {why}")


def _table(path: Path, data: dict[str, Any], section: str) -> dict[str, Any]:
    value = data.get(section, {})
    if not isinstance(value, dict):
        raise _fail(path, section, "must be a table")
    unknown = sorted(set(value) - _KEYS[section])
    if unknown:
        raise _fail(
            path, f"{section}.{unknown[0]}", f"unknown key (known: {sorted(_KEYS[section])})"
        )
    return value


def _string(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(path, key, "must be a non-empty string")
    return value


def _parse(path: Path, data: dict[str, Any]) -> AppSpec:
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise _fail(path, unknown[0], f"unknown key (known: {sorted(_SECTIONS)})")
    directory = path.parent
    start = _table(path, data, "start")
    if ("app" in start) == ("command" in start):
        raise _fail(
            path, "start", "give exactly one of start.app (e.g. 'app:demo') or start.command"
        )
    start_app = start_command = None
    if "app" in start:
        start_app = _string(path, "start.app", start["app"])
        if not _OBJECT_PATH.fullmatch(start_app):
            raise _fail(path, "start.app", f"{start_app!r} is not an object path like 'app:demo'")
    else:
        start_command = _string(path, "start.command", start["command"])
        try:
            shlex.split(start_command.format(host="h", port=1))
        except (KeyError, IndexError, ValueError) as e:
            raise _fail(
                path, "start.command", f"only {{host}} and {{port}} may be filled in: {e}"
            ) from e
    notify = start.get("notify", False)
    if not isinstance(notify, bool):
        raise _fail(path, "start.notify", "must be true or false")
    start_timeout = start.get("timeout")
    if start_timeout is not None and (
        isinstance(start_timeout, bool)
        or not isinstance(start_timeout, (int, float))
        or start_timeout <= 0
    ):
        raise _fail(path, "start.timeout", "must be a number of seconds > 0")
    model = _table(path, data, "model")
    model_env = _env_name(path, "model.env", model["env"]) if "env" in model else None
    secrets = _table(path, data, "secrets").get("names", [])
    if not isinstance(secrets, list):
        raise _fail(path, "secrets.names", "must be a list of variable names")
    env = data.get("env", {})
    if not isinstance(env, dict):
        raise _fail(path, "env", "must be a table")
    for key, value in env.items():
        _env_name(path, f"env.{key}", key)
        _template(path, f"env.{key}", _string(path, f"env.{key}", value))
    readiness = _table(path, data, "readiness")
    ready_url = readiness.get("url")
    if ready_url is not None and not _string(path, "readiness.url", ready_url).startswith("/"):
        raise _fail(path, "readiness.url", "must be a path starting with /")
    url_alone = readiness.get("url_alone", False)
    if not isinstance(url_alone, bool):
        raise _fail(path, "readiness.url_alone", "must be true or false")
    checks = _checks(path, data.get("checks", []))
    if url_alone and ready_url is None:
        raise _fail(path, "readiness.url_alone", "needs readiness.url")
    if not checks and not url_alone:
        raise _fail(
            path,
            "checks",
            "no checks: add [[checks]] with an expected answer, or set readiness.url_alone = true"
            " to accept HTTP 200 from readiness.url as healthy",
        )
    return AppSpec(
        directory=directory,
        requirements=_requirements(path, _table(path, data, "install")),
        start_app=start_app,
        start_command=start_command,
        notify=notify,
        start_timeout=None if start_timeout is None else float(start_timeout),
        model_env=model_env,
        secrets=tuple(_env_name(path, "secrets.names", name) for name in secrets),
        env=dict(env),
        ready_url=ready_url,
        url_alone=url_alone,
        checks=checks,
    )


def _env_name(path: Path, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise _fail(path, key, f"{value!r} is not an environment variable name")
    return value


def _template(path: Path, key: str, value: str) -> None:
    try:
        value.format_map({name: "" for name in PLACEHOLDERS})
    except (KeyError, IndexError, ValueError) as e:
        raise _fail(path, key, f"unknown placeholder {e} (known: {list(PLACEHOLDERS)})") from e


def _requirements(path: Path, install: dict[str, Any]) -> tuple[str, ...]:
    """The app's requirement lines, from requirements.txt or pyproject's [project] dependencies."""
    if len(install) != 1:
        raise _fail(
            path, "install", "give exactly one of install.requirements or install.pyproject"
        )
    ((key, value),) = install.items()
    name = _string(path, f"install.{key}", value)
    source = path.parent / name
    if not source.is_file():
        raise _fail(path, f"install.{key}", f"{source} does not exist")
    if key == "pyproject":
        try:
            project = tomllib.loads(source.read_text()).get("project", {})
        except tomllib.TOMLDecodeError as e:
            raise _fail(path, "install.pyproject", f"{source} is not valid TOML: {e}") from e
        return tuple(str(dep) for dep in project.get("dependencies", []))
    lines = []
    for line in source.read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith("#"):
            if line.startswith("-"):
                raise _fail(
                    path,
                    "install.requirements",
                    f"{name}: options such as {line!r} are not supported",
                )
            lines.append(line)
    for line in lines:
        _check_resolves(path, f"install.{key}", name, line)
    return tuple(lines)


def _check_resolves(path: Path, key: str, source: str, line: str) -> None:
    """The lock pins what this environment resolved: each requirement must be installed here."""
    try:
        req = Requirement(line)
    except InvalidRequirement as e:
        raise _fail(path, key, f"{source}: {line!r} is not a requirement: {e}") from e
    if req.marker is not None and not req.marker.evaluate():
        return
    try:
        version = md.version(req.name)
    except md.PackageNotFoundError:
        raise _fail(
            path,
            key,
            f"{source}: {line!r} does not resolve: {req.name} is not installed on the control"
            " machine, and the lock pins what it resolved (pip install it there first)",
        ) from None
    if not req.specifier.contains(version, prereleases=True):
        raise _fail(
            path,
            key,
            f"{source}: {line!r} does not resolve: the control machine has {req.name} {version}",
        )


def _checks(path: Path, entries: Any) -> tuple[Check, ...]:
    if not isinstance(entries, list):
        raise _fail(path, "checks", "must be an array of tables ([[checks]])")
    checks = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(path, f"checks[{index}]", "must be a table")
        name = str(entry.get("name", f"checks[{index}]"))
        key = f"checks[{index}] ({name})"
        unknown = sorted(set(entry) - _KEYS["checks"])
        if unknown:
            raise _fail(
                path, f"{key}.{unknown[0]}", f"unknown key (known: {sorted(_KEYS['checks'])})"
            )
        if ("gradio" in entry) == ("http" in entry):
            raise _fail(path, key, "give exactly one of gradio = '/api_name' or http = '/path'")
        kind: Literal["gradio", "http"] = "gradio" if "gradio" in entry else "http"
        target = _string(path, f"{key}.{kind}", entry[kind])
        if not target.startswith("/"):
            raise _fail(path, f"{key}.{kind}", "must start with /")
        expected = [k for k in ("label", "contains", "jsonpath") if k in entry]
        if len(expected) != 1:
            raise _fail(
                path,
                key,
                "needs exactly one expected answer: label, contains, or jsonpath + equals",
            )
        expect = expected[0]
        jsonpath = ""
        if expect == "jsonpath":
            jsonpath = _string(path, f"{key}.jsonpath", entry["jsonpath"])
            if "equals" not in entry:
                raise _fail(path, f"{key}.equals", "jsonpath needs the value it must equal")
            jsonpath_steps(path, f"{key}.jsonpath", jsonpath)
            value = str(entry["equals"])
        else:
            value = _string(path, f"{key}.{expect}", entry[expect])
        args = entry.get("args", [])
        if not isinstance(args, list):
            raise _fail(path, f"{key}.args", "must be a list of the endpoint's inputs")
        output = entry.get("output")
        if output is not None and (not isinstance(output, int) or output < 0):
            raise _fail(path, f"{key}.output", "must be an output index (0, 1, ...)")
        method = str(entry.get("method", "POST" if "json" in entry else "GET")).upper()
        checks.append(
            Check(
                name=name,
                kind=kind,
                target=target,
                expect=expect,  # type: ignore[arg-type]
                value=value,
                jsonpath=jsonpath,
                method=method,
                args=tuple(args),
                body=entry.get("json"),
                output=output,
            )
        )
    return tuple(checks)

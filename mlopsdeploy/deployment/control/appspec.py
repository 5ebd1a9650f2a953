"""The app spec: what any Python web app must tell the deploy, read from ``mlopsdeploy.toml``.

The deploy, its gate, the resilience suite and the watchdog all need to know the same four
things about an app: how to install it, how to start it, what it reads (model dir, secrets) and
how to tell it *works*. They read them from this one place, so a student's Gradio ``app.py`` is
deployed, gated, broken and watched exactly like the bundled app. A spec is checked completely on
the control machine: a bad one is refused, naming the file and the key, before any host is
touched. An app dir without the file is the bundled app, so nothing changes for it.

Example ``mlopsdeploy.toml``::

    [install]
    requirements = "requirements.txt"

    [start]
    app = "app:demo"                 # or: command = "python app.py --port {port}"

    [model]
    env = "MODEL_DIR"                # set to the release's model dir

    [secrets]
    names = ["HF_TOKEN"]

    [env]
    API_URL = "{api_model}"          # placeholders: {host} {port} {model_dir} {api_model}

    [readiness]
    url = "/"                        # must answer 200 (alone it is healthy only with
                                     # url_alone = true)

    [[checks]]
    name = "happy"
    gradio = "/predict"
    args = ["I am so happy today!"]
    label = "POSITIVE"
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SPEC_NAME = "mlopsdeploy.toml"
PLACEHOLDERS = ("host", "port", "model_dir", "api_model")

_JSONPATH_STEP = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[['\"]([^'\"]+)['\"]\]")


class AppSpecError(ValueError):
    """The app spec cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Check:
    """One request to the running app and the answer it must give.

    + kind: ``gradio`` (an endpoint called through gradio_client) or ``http`` (a JSON request)
    + target: the Gradio api name (``/predict``) or the URL path
    + args: the Gradio endpoint's positional inputs
    + body: the HTTP request's JSON body (None: no body)
    + output: which output of a Gradio endpoint with several outputs is checked
    + expect: ``label``, ``contains`` or ``jsonpath`` (then ``equals`` is the value)
    """

    name: str
    kind: Literal["gradio", "http"]
    target: str
    expect: Literal["label", "contains", "jsonpath"]
    value: str
    jsonpath: str = ""
    method: str = "GET"
    args: tuple[Any, ...] = ()
    body: Any = None
    output: int | None = None


@dataclass(frozen=True)
class AppSpec:
    """What the deploy needs to know about one app (see the module docstring for the file).

    + directory: the app's source dir; its files become the release's ``app/``
    + requirements: requirement lines the lock pins (empty: the bundled app's own wheel)
    + start_app / start_command: an object path (``app:demo``) or a command line, one of them
    + notify: the app tells systemd READY/WATCHDOG itself (only the bundled app does)
    + start_timeout: seconds its first start may take before the gate gives up (at least the
      deploy's own gate timeout is always granted)
    + model_env: the environment variable set to the release's model dir
    + secrets: names of secrets written to the 0600 env file (values read on the control machine)
    + env: further environment of the app, with placeholders filled per host and role
    + ready_url / url_alone: a path that must answer 200; alone healthy only when said explicitly
    """

    directory: Path
    requirements: tuple[str, ...] = ()
    start_app: str | None = None
    start_command: str | None = None
    notify: bool = False
    start_timeout: float | None = None
    model_env: str | None = None
    secrets: tuple[str, ...] = ("HF_TOKEN",)
    env: Mapping[str, str] = field(default_factory=dict)
    ready_url: str | None = None
    url_alone: bool = False
    checks: tuple[Check, ...] = ()
    bundled: bool = False

    def environment(
        self, host: str, port: int, model_dir: str, api_model: str | None
    ) -> dict[str, str]:
        """The app's declared environment for one role; entries naming an unset value are left out.

        Gradio's own server settings are always given, so an app that calls ``demo.launch()``
        itself listens where the deploy expects it.
        """
        values = {"host": host, "port": str(port), "model_dir": model_dir, "api_model": api_model}
        out = {"GRADIO_SERVER_NAME": host, "GRADIO_SERVER_PORT": str(port)}
        if self.model_env:
            out[self.model_env] = model_dir
        for key, template in self.env.items():
            used = {name for name in PLACEHOLDERS if "{" + name + "}" in template}
            if all(values[name] for name in used):
                out[key] = template.format_map({k: v or "" for k, v in values.items()})
        return out

    def exec_start(self, venv: str, app_root: str, host: str, port: int) -> str:
        """The ``ExecStart=`` line: venv tools and the app's own files by absolute path."""
        if self.start_app is not None:
            return (
                f"{venv}/bin/python {app_root}/{LAUNCHER} "
                f"{shlex.quote(self.start_app)} {shlex.quote(host)} {port}"
            )
        assert self.start_command is not None
        argv = shlex.split(self.start_command.format(host=host, port=port))
        if argv[0] in ("python", "python3"):
            argv[0] = f"{venv}/bin/python"
        elif "/" not in argv[0]:
            argv[0] = f"{venv}/bin/{argv[0]}"
        argv[1:] = [
            f"{app_root}/{arg}" if (self.directory / arg).is_file() else arg for arg in argv[1:]
        ]
        return shlex.join(argv)


# Shipped beside the app's files (``app/``) when the spec starts an object path.
LAUNCHER = "_mlopsdeploy_launch.py"


def jsonpath_steps(path: Path | None, key: str, expression: str) -> list[str | int]:
    """The steps of a simple JSONPath (``$.a.b[0]['c d']``): keys and list indexes."""
    if not expression.startswith("$"):
        raise AppSpecError(f"{path}: {key}: JSONPath must start with $")
    steps: list[str | int] = []
    rest = expression[1:]
    while rest:
        match = _JSONPATH_STEP.match(rest)
        if match is None:
            raise AppSpecError(f"{path}: {key}: cannot read JSONPath {expression!r} at {rest!r}")
        name, number, quoted = match.groups()
        steps.append(int(number) if number is not None else (name or quoted))
        rest = rest[match.end() :]
    return steps


def jsonpath_value(document: Any, expression: str) -> Any:
    """The value at ``expression`` in ``document``; KeyError/IndexError/TypeError if absent."""
    for step in jsonpath_steps(None, "jsonpath", expression):
        document = document[step]
    return document


def secret_values(spec: AppSpec, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The values of the spec's secrets besides HF_TOKEN (which the host config supplies).

    Read on the control machine, from its environment; a declared secret that is not set is an
    error naming it, rather than an app that fails later on the host.
    """
    found = []
    for name in spec.secrets:
        if name == "HF_TOKEN":
            continue
        value = env.get(name)
        if not value:
            raise AppSpecError(
                f"{spec.directory / SPEC_NAME}: secrets.names: {name} is not set in the"
                " environment of the deploy"
            )
        found.append((name, value))
    return tuple(found)

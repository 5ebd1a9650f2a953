from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import ConfigError, HostConfig, load_env, load_file, load_hosts


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def test_hosts_file_applies_defaults_to_each_host(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[defaults]
own_key = "~/.ssh/id_course"
default_key = "/keys/default"

[hosts.team10]
address = "vm.course.example"
ssh_port = 22010
app_port = 8010

[hosts.team11]
address = "vm.course.example"
ssh_port = 22011
app_port = 8011
own_key = "/keys/other"
""",
    )
    team10, team11 = load_file(path)
    assert (team10.name, team10.ssh_port, team10.app_port) == ("team10", 22010, 8010)
    assert team10.own_key == Path("~/.ssh/id_course").expanduser()
    assert team10.default_key == Path("/keys/default")
    assert team10.user == "student-admin"
    assert team10.url == "http://vm.course.example:8010"
    assert team10.probe_port == 8011
    assert team11.own_key == Path("/keys/other")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[hosts.a]\naddress = "h"\nown_key = "/k"\nsssh_port = 1\n', "unknown keys"),
        ('[hosts.a]\naddress = "h"\nown_key = "/k"\nssh_port = "x"\n', "ssh_port must be"),
        ('[hosts.a]\naddress = "h"\n', "missing required key 'own_key'"),
        ('[hosts.a]\naddress = "h"\nown_key = "/k"\nkeep_releases = 1\n', "keep_releases"),
        ('[hosts.a]\naddress = "h"\nown_key = "/k"\ninstall = "maybe"\n', "install must"),
        ("[defaults]\n", "no [hosts.<name>]"),
        ("not toml [", "invalid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_file(write(tmp_path, body))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('extra_index_urls = "https://pypi.org/simple"', "extra_index_urls must be a list"),
        ("extra_index_urls = [1]", "extra_index_urls must be a list of strings"),
        ("ssh_port = true", "ssh_port must be an integer, got True"),
        ("app_port = 80.5", "app_port must be an integer"),
        ("user = 7", "user must be a string, got 7"),
        ('default_key = ["/k"]', "default_key must be a string"),
        ('install = ["online"]', "install must be a string"),
    ],
)
def test_each_key_is_type_checked_naming_file_host_and_key(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path, f'[hosts.team10]\naddress = "h"\nown_key = "/k"\n{line}\n')
    with pytest.raises(ConfigError) as raised:
        load_file(path)
    assert str(raised.value).startswith(f"{path}: host 'team10': ")
    assert message in str(raised.value)


def test_a_list_of_index_urls_is_kept_whole(tmp_path: Path) -> None:
    body = '[hosts.a]\naddress = "h"\nown_key = "/k"\nextra_index_urls = ["https://x/simple"]\n'
    (host,) = load_file(write(tmp_path, body))
    assert host.extra_index_urls == ("https://x/simple",)


def test_environment_describes_one_host() -> None:
    env = {"MLOPSDEPLOY_HOST": "10.0.0.5", "MLOPSDEPLOY_KEY": "/k", "MLOPSDEPLOY_APP_PORT": "8010"}
    (host,) = load_env(env)
    assert (host.name, host.address, host.app_port) == ("10.0.0.5", "10.0.0.5", 8010)
    with pytest.raises(ConfigError, match="MLOPSDEPLOY_KEY"):
        load_env({"MLOPSDEPLOY_HOST": "h"})


def test_nothing_configured_means_the_testbed(tmp_path: Path) -> None:
    assert load_hosts({"MLOPSDEPLOY_CONFIG": str(tmp_path / "absent.toml")}) == []


def test_token_comes_from_file_before_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("hf_from_file\n")
    host = HostConfig(name="h", address="a", own_key=Path("/k"), hf_token_file=token_file)
    assert host.read_token({"HF_TOKEN": "hf_from_env"}) == "hf_from_file"
    plain = HostConfig(name="h", address="a", own_key=Path("/k"))
    assert plain.read_token({"HF_TOKEN": "hf_from_env"}) == "hf_from_env"
    assert plain.read_token({}) is None


def test_behind_a_nat_the_app_listens_on_another_port_than_the_public_one(tmp_path: Path) -> None:
    """The course's NAT forwards 8010 to the VM: the unit binds listen_port, probes use 8010."""
    path = write(
        tmp_path,
        '[hosts.team10]\naddress = "vm"\nown_key = "/k"\napp_port = 8010\nlisten_port = 8000\n',
    )
    (team10,) = load_file(path)
    assert team10.url == "http://vm:8010"
    assert (team10.serve_port, team10.probe_port) == (8000, 8001)
    direct = HostConfig(name="d", address="vm", own_key=Path("/k"), app_port=8010)
    assert (direct.serve_port, direct.probe_port) == (8010, 8011)

"""HAProxy's config from the inventory, and reading its runtime API's answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlopsdeploy.config import ConfigError, HostConfig
from mlopsdeploy.deployment.control import haproxy
from mlopsdeploy.deployment.control.haproxy import Backend, backends, parse_stat, render_config

LB = HostConfig(name="lb", address="10.0.0.9", own_key=Path("/k"), app_port=80, groups=("lb",))
# The first columns of HAProxy 2.6's `show stat`, in its order, and the ones read here.
HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,"
    "wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,"
    "lbtot,tracked,type,rate,rate_lim,rate_max,check_status"
)


def stat(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n\n"


def row(px: str, sv: str, scur: int, stot: int, status: str, check: str) -> str:
    middle = "1,1,0,0,0,5,0,,1,3,1,,0,,2,0,,1"
    return f"{px},{sv},0,0,{scur},1,,{stot},0,0,,0,,0,0,0,0,{status},{middle},{check}"


def app(name: str, address: str, port: int = 8000, **kw) -> HostConfig:
    return HostConfig(name=name, address=address, own_key=Path("/k"), app_port=port, **kw)


def test_backends_are_the_app_hosts_at_the_port_the_app_listens_on() -> None:
    hosts = [app("web1", "10.0.0.1"), app("web2", "10.0.0.2", 8010, listen_port=8000, workers=1)]
    assert backends(hosts) == [
        Backend("web1", "10.0.0.1", 8000, maxconn=32),  # 2 workers (the default)
        Backend("web2", "10.0.0.2", 8000, maxconn=16),
    ]


def test_a_host_name_haproxy_cannot_take_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="host 'web 1': behind a load balancer"):
        backends([app("web 1", "10.0.0.1")])


def test_config_balances_over_every_backend_checked_on_readyz() -> None:
    text = render_config(LB, backends([app("web1", "10.0.0.1"), app("web2", "10.0.0.2")]))
    lines = [line.strip() for line in text.splitlines()]
    assert "bind :80" in lines
    assert "option httpchk GET /readyz" in lines
    assert "http-check expect status 200" in lines
    assert "timeout check 5s" in lines  # a slow /readyz on a busy host is not a dead host
    assert "timeout queue 60s" in lines  # beyond maxconn, requests wait in HAProxy
    assert "server web1 10.0.0.1:8000 check inter 2s fall 3 rise 2 maxconn 32" in lines
    assert "server web2 10.0.0.2:8000 check inter 2s fall 3 rise 2 maxconn 32" in lines
    # a backend dying mid-request: the request goes to another one instead of failing
    # and one answering "model not loaded yet" while it starts: the request is asked elsewhere
    assert "retry-on conn-failure empty-response 503" in lines
    assert "option redispatch 1" in lines
    assert "option http-buffer-request" in lines  # a POST is resent only if held whole
    assert f"stats socket {haproxy.ADMIN_SOCKET} mode 660 level admin expose-fd listeners" in lines


def test_stat_gives_each_app_server_without_frontend_and_backend_rows() -> None:
    output = stat(
        row("app", "FRONTEND", 1, 50, "OPEN", ""),
        row("app", "web1", 1, 30, "UP", "L7OK"),
        row("app", "web2", 0, 20, "DRAIN", "L7OK"),
        row("app", "web3", 0, 0, "DOWN", "L4CON"),
        row("app", "BACKEND", 1, 50, "UP", ""),
        row("stats", "FRONTEND", 0, 0, "OPEN", ""),
    )
    seen = parse_stat(output)
    assert list(seen) == ["web1", "web2", "web3"]
    assert seen["web1"] == haproxy.ServerState("web1", "UP", 1, 30, "L7OK")
    assert (seen["web2"].status, seen["web3"].check) == ("DRAIN", "L4CON")


def test_wait_for_reports_the_last_state_when_time_is_up(monkeypatch) -> None:
    answers = iter([stat(row("app", "web1", 0, 0, "DOWN", "L4CON"))] * 3)
    monkeypatch.setattr(haproxy, "runtime_command", lambda lb, command: next(answers))
    with pytest.raises(haproxy.StateTimeout, match=r"^lb: web1 not UP after 0s: DOWN, check L4CON"):
        haproxy.wait_for(LB, "web1", lambda s: s.status == "UP", 0, "UP", interval=0)


def test_set_state_reports_what_haproxy_refused(monkeypatch) -> None:
    monkeypatch.setattr(haproxy, "runtime_command", lambda lb, command: "No such server.\n")
    with pytest.raises(haproxy.DeployError, match=r"refused to set web9 drain: No such server\."):
        haproxy.set_state(LB, "web9", "drain")

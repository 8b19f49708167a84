"""expose_cpu_cores: the XLA flag it sets, and when it must leave things alone."""

from __future__ import annotations

import sys

import pytest

from sedflow_jax import host_devices


@pytest.mark.parametrize("cores, min_devices, expect", [(2, 1, 2), (2, 4, 4), (16, 4, 8), (1, 1, None), (1, 4, 4)])
def test_device_count_flag(monkeypatch, cores, min_devices, expect):
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as before the first import of JAX (nothing imports it here)
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_foo=1")
    monkeypatch.setattr(host_devices.os, "cpu_count", lambda: cores)
    assert host_devices.expose_cpu_cores(min_devices=min_devices) is (expect is not None)
    flags = host_devices.os.environ["XLA_FLAGS"]
    if expect is None:
        assert flags == "--xla_cpu_foo=1"
    else:
        assert flags == f"--xla_cpu_foo=1 --xla_force_host_platform_device_count={expect}"


def test_too_late_or_already_set_changes_nothing(monkeypatch):
    import jax  # noqa: F401  (started)

    monkeypatch.setenv("XLA_FLAGS", "")
    assert host_devices.expose_cpu_cores(min_devices=4) is False  # JAX already started
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=3")
    assert host_devices.expose_cpu_cores(min_devices=4) is False
    assert host_devices.os.environ["XLA_FLAGS"] == "--xla_force_host_platform_device_count=3"

"""The project's own Lua-level cases written for `moonwire test`, as Test::Nginx's data-driven
files are for OpenResty: each folder of Tests/lua/ holds an app (scripts/) and its *_test.lua
files, run against the shared www/ of the integration tests."""
import pytest

from harness import REPO, WWW, run_cli

CASES = REPO / "Tests" / "lua"


@pytest.mark.parametrize("area", sorted(p.name for p in CASES.iterdir() if p.is_dir()))
def test_lua_cases_pass(area):
    folder = CASES / area
    result = run_cli("test", "--scripts", folder / "scripts", "--www", WWW, folder, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 failed" in result.stdout.splitlines()[-1], result.stdout

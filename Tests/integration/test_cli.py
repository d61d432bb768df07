"""moonwire check and moonwire version."""
from harness import run_cli as run


def test_version():
    result = run("version")
    assert result.returncode == 0 and result.stdout.startswith("moonwire ")


def test_check_passes_a_good_tree(tmp_path):
    (tmp_path / "main.lua").write_text("local lib = require 'lib.util'\nfunction OnCommandGet() end\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.lua").write_text("return {}\n")
    result = run("check", "--scripts", str(tmp_path))
    assert result.returncode == 0 and "ok" in result.stdout


def test_check_reports_syntax_error_with_file_and_line(tmp_path):
    (tmp_path / "main.lua").write_text("local a = 1\nlocal b = = 2\n")
    result = run("check", "--scripts", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path.name}/main.lua:2:" in result.stdout


def test_check_reports_errors_in_other_files(tmp_path):
    (tmp_path / "main.lua").write_text("return true\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "broken.lua").write_text("\n\nfunction (\n")
    result = run("check", "--scripts", str(tmp_path))
    assert result.returncode == 1 and "lib/broken.lua:3:" in result.stdout


def test_check_reports_runtime_errors_at_top_level(tmp_path):
    (tmp_path / "main.lua").write_text("local x = nil\nprint(x.field)\n")
    result = run("check", "--scripts", str(tmp_path))
    assert result.returncode == 1 and "main.lua:2:" in result.stdout


def test_serve_refuses_to_start_on_broken_scripts(tmp_path):
    (tmp_path / "main.lua").write_text("this is not lua\n")
    result = run("serve", "--port", "0", "--scripts", str(tmp_path))
    assert result.returncode == 1 and "main.lua:1:" in result.stdout + result.stderr

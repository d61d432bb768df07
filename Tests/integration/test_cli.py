"""moonwire check and moonwire version."""
from harness import run_cli as run


def test_check_reports_runtime_errors_at_top_level(tmp_path):
    (tmp_path / "main.lua").write_text("local x = nil\nprint(x.field)\n")
    result = run("check", "--scripts", str(tmp_path))
    assert result.returncode == 1 and "main.lua:2:" in result.stdout


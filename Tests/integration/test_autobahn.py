"""The Autobahn|Testsuite WebSocket cases (517, permessage-deflate included), run by kosoku
against an echo script; every case must be OK (or INFORMATIONAL), none NON-STRICT.
Timing-sensitive cases that fail under a loaded machine (the 6.4.* fail-fast ones) get one
quiet re-run alone before the verdict."""
import json
import pathlib
import subprocess

import pytest

KOSOKU = pathlib.Path(__file__).resolve().parents[2] / ".venv" / "bin" / "kosoku"

# About 7 of the suite's minutes: one xdist worker runs it while the other takes the rest.
pytestmark = pytest.mark.xdist_group("autobahn")

# kosoku's 12.*/13.* cases hash the echoed text without encoding it when a message comes
# back uncompressed (Autobahn itself does not care): compress every message here.
ECHO = """
moonwire.options{ websocket = { compression_threshold = 0 } }
function OnMessage(ws, text) ws:send(text) end
function OnBinary(ws, data) ws:send_binary(data) end
"""


def run_cases(address, outdir, cases=(), parallel=4):
    args = [str(KOSOKU), "-p", str(parallel), "-o", str(outdir), address]
    for case in cases:
        args += ["-i", case]
    subprocess.run(args, capture_output=True, text=True, timeout=1500)
    index = json.loads((outdir / "index.json").read_text())
    results = next(iter(index.values()))
    return {case: result for case, result in results.items()}


def failed(results):
    """Cases not OK. NON-STRICT counts as failed: 6.4.3 and 6.4.4 are NON-STRICT when invalid
    UTF-8 is failed only once its frame is whole, not as soon as its bytes arrive.
    INFORMATIONAL (7.1.6, 7.13.1, 7.13.2) is what Autobahn says of cases it does not judge."""
    good = {"OK", "INFORMATIONAL"}
    return sorted(case for case, r in results.items() if r["behavior"] not in good or r["behaviorClose"] not in good)


@pytest.mark.skipif(not KOSOKU.exists(), reason="kosoku is installed by Tests/tools/setup.sh")
def test_autobahn_all_cases(moonwire, tmp_path, capsys):
    server = moonwire(ECHO, threads=2)
    address = f"127.0.0.1:{server.port}"
    results = run_cases(address, tmp_path / "all")
    retried = failed(results)
    if retried:
        results.update(run_cases(address, tmp_path / "retry", retried, parallel=1))
    still = failed(results)
    behaviors = {}
    for r in results.values():
        behaviors[r["behavior"]] = behaviors.get(r["behavior"], 0) + 1
    with capsys.disabled():
        print(f"\nAutobahn: {len(results)} cases, {behaviors}, re-run alone: {retried or 'none'}, failed: {still or 'none'}")
    assert len(results) == 517
    assert still == []

"""The report's trajectory viewer, driven in headless Chromium over the DevTools protocol:
open report.html, pick an outcome, click an episode (a real mouse event at the row's
coordinates), and read what the page shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from toolzoo.analysis.report import write_report
from toolzoo.core import CallRecord, ItemScore, Message, Outcome, Score, SubtaskInstance, Task, ToolCall, Trajectory

from tests.analysis.fake_runs import write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
websocket = pytest.importorskip("websocket", reason="websocket-client drives Chromium's DevTools protocol")


def _episode() -> Trajectory:
    task = Task(id="viewer-task", domain="retail_orders", seed=1, length=3, subtasks=[
        SubtaskInstance(template="status_of", ask="What is the status of order A17?"),
        SubtaskInstance(template="cancel_order", ask="Cancel order B22 <script>alert(1)</script>"),
        SubtaskInstance(template="refund_item", ask="Refund the lamp."),
    ])
    call = ToolCall.make("get_order", {"order_id": "A17"}, id="call_1")
    msgs = [
        Message(role="system", content="You are a retail agent."),
        Message(role="user", content="What is the status of order A17?"),
        Message(role="assistant", content=None, tool_calls=[call]),
        Message(role="tool", tool_call_id="call_1", name="get_order", content='{"status": "shipped"}'),
        Message(role="assistant", content="Order A17 has shipped."),
        Message(role="user", content="Cancel order B22 <script>alert(1)</script>"),
        Message(role="assistant", content="Done, B22 is cancelled."),
    ]
    score = Score(value=0.33, items=[
        ItemScore(id="subtask_0:status_of", passed=True, value=1.0, reason="answer matched"),
        ItemScore(id="subtask_1:cancel_order", passed=False, value=0.0, reason="order B22 still open"),
    ])
    return Trajectory(episode_id="ep-viewer", task=task, messages=msgs,
                      calls=[CallRecord(name="get_order", args={"order_id": "A17"}, result={"status": "shipped"})],
                      outcome=Outcome(success=False, failure="agent", reason="subtask 1 not done",
                                      subtasks_completed=1, first_failed=1),
                      scores={"verifiable": score})


class DevTools:
    def __init__(self, ws_url: str):
        self.ws = websocket.create_connection(ws_url, timeout=20)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(msg["error"])
                return msg["result"]

    def js(self, expr: str):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError(f"page script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def click(self, selector: str) -> None:
        box = self.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                      "e.scrollIntoView(); const r = e.getBoundingClientRect();"
                      "return [r.left + r.width / 2, r.top + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


@pytest.fixture
def page(tmp_path: Path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    run = write_run(tmp_path / "agentA", t50=4.0, lengths=(1, 2, 4), tasks_per_length=3, trials=2, seed=3)
    with (run / "trajectories.jsonl").open("a") as f:
        f.write(_episode().model_dump_json() + "\n")
    res = write_report([run], tmp_path / "report", reps=20)
    html = Path(res["html"])
    profile = tmp_path / "chrome-profile"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", "--no-first-run",
         html.as_uri()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.time() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.time() > deadline or proc.poll() is not None:
                pytest.fail("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        targets = []
        while not targets and time.time() < deadline:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as r:  # loopback only
                targets = [t for t in json.loads(r.read()) if t.get("type") == "page" and t["url"].startswith("file:")]
            time.sleep(0.1)
        dt = DevTools(targets[0]["webSocketDebuggerUrl"])
        ready = time.time() + 60  # the page has rendered its list when the count is filled in
        while not dt.js("(document.getElementById('episode-count') || {}).textContent") and time.time() < ready:
            time.sleep(0.1)
        yield dt, html
        dt.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_viewer_browses_and_opens_an_episode_in_chromium(page) -> None:
    dt, html = page
    text = html.read_text()
    assert "<script src" not in text and "src='http" not in text and "<link" not in text  # self-contained
    n_rows = dt.js("document.querySelectorAll('#episode-list tr.episode-row').length")
    assert n_rows == 3 * 3 * 2 + 1, (n_rows, dt.js("document.readyState"), dt.js("location.href"))
    # Filter by length and outcome with the page's own controls.
    dt.js("{ const s = document.getElementById('filter-length'); s.value = '3'; s.dispatchEvent(new Event('change')) }")
    assert dt.js("document.querySelectorAll('#episode-list tr.episode-row').length") == 1
    dt.js("{ const s = document.getElementById('filter-length'); s.value = ''; s.dispatchEvent(new Event('change')) }")
    dt.js("{ const o = document.getElementById('filter-outcome'); o.value = 'success'; o.dispatchEvent(new Event('change')) }")
    rows = dt.js("[...document.querySelectorAll('#episode-list tr.episode-row')].map(r => r.cells[4].textContent)")
    assert rows and set(rows) == {"success"}
    dt.js("{ const o = document.getElementById('filter-outcome'); o.value = 'agent'; o.dispatchEvent(new Event('change')) }")

    dt.click("tr[data-episode='ep-viewer']")
    detail = dt.js("document.getElementById('episode-detail').innerText")
    assert "Episode ep-viewer" in detail and "viewer-task" in detail
    header = dt.js("Object.fromEntries([...document.querySelectorAll('#episode-header tr')]"
                   ".map(r => [r.cells[0].textContent, r.cells[1].textContent]))")
    assert header["failure kind"] == "agent" and header["reason"] == "subtask 1 not done"
    assert header["counts for rate"] == "yes" and header["length"] == "3 subtasks"
    verdicts = dt.js("[...document.querySelectorAll('#subtask-verdicts tr')].slice(1)"
                     ".map(r => [r.cells[1].textContent, r.cells[3].textContent, r.cells[5].textContent])")
    assert verdicts == [["status_of", "passed", "answer matched"],
                        ["cancel_order", "failed", "order B22 still open"],
                        ["refund_item", "not reached", ""]]
    conv = dt.js("[...document.querySelectorAll('#conversation .msg')].map(m => m.innerText)")
    assert len(conv) == 7 and conv[1].startswith("user")
    assert "get_order" in conv[2] and '"order_id": "A17"' in conv[2]  # the tool call and its arguments
    assert "shipped" in conv[3] and "call_1" in conv[3]  # the tool result, tied to its call
    assert "<script>alert(1)</script>" in conv[5]  # shown as text, never run as markup
    assert dt.js("document.querySelectorAll('#conversation script').length") == 0
    calls = dt.js("[...document.querySelectorAll('#tool-calls tr')].slice(1).map(r => r.cells[0].textContent + ' ' + r.cells[2].textContent)")
    assert calls == ['get_order {"status": "shipped"}']
    assert dt.js("document.querySelector('tr.selected').dataset.episode") == "ep-viewer"

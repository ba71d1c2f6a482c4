"""The report's trajectory viewer: episodes embedded as JSON, browsed and read in the page.

Self-contained: the data sits in a ``<script type="application/json">`` block and a short
script renders it with ``textContent`` (never ``innerHTML``, so an agent's message cannot inject
markup); nothing is fetched. Episodes can be filtered by length and outcome; clicking one shows
its header (task, length, outcome, failure kind and reason), the verdict per subtask, the
judges' scores, the conversation with tool calls and results, and the tool-call records.
"""

from __future__ import annotations

import json
from typing import Any

from toolzoo.core import Trajectory

MAX_TEXT = 4000  # characters kept per message / result, so a long run stays a small page
MAX_EPISODES = 5000


def _cut(s: Any) -> str:
    text = s if isinstance(s, str) else json.dumps(s, sort_keys=True, default=str)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f"… [{len(text) - MAX_TEXT} more characters]"


def subtask_verdicts(t: Trajectory) -> list[dict[str, Any]]:
    """One row per subtask: ``passed`` / ``failed`` / ``not reached`` / ``unknown``.

    A judge item named ``subtask_<i>:...`` decides when present; otherwise the outcome's
    ``first_failed`` does (before it passed, at it failed, after it not reached).
    """
    o = t.outcome
    judged: dict[int, tuple[bool | None, str, str]] = {}
    for judge, score in t.scores.items():
        for it in score.items:
            head = it.id.split(":", 1)[0]
            if head.startswith("subtask_") and head[8:].isdigit():
                judged.setdefault(int(head[8:]), (it.passed, it.reason, judge))
    out = []
    for i, sub in enumerate(t.task.subtasks):
        reason, by = "", "outcome"
        if i in judged:
            passed, reason, by = judged[i]
            verdict = "unknown" if passed is None else ("passed" if passed else "failed")
        elif o is not None and o.success and o.failure is None:
            verdict = "passed"
        elif o is not None and o.first_failed is not None:
            verdict = "passed" if i < o.first_failed else "failed" if i == o.first_failed else "not reached"
        else:
            verdict = "unknown"
        out.append({"index": i, "template": sub.template, "ask": _cut(sub.ask), "verdict": verdict,
                    "reason": _cut(reason), "by": by})
    return out


def episode_payload(t: Trajectory, run: str = "") -> dict[str, Any]:
    """What the viewer shows of one trajectory (JSON-ready)."""
    from toolzoo.analysis.data import counts_for_rate

    o = t.outcome
    kind = "unscored" if o is None else (None if o.failure is None else str(o.failure))
    msgs = []
    for m in t.messages:
        msgs.append({
            "role": m.role, "content": _cut(m.content or ""), "name": m.name,
            "tool_call_id": m.tool_call_id,
            "tool_calls": [{"id": c.id, "name": c.function.name, "arguments": _cut(c.function.arguments)}
                           for c in (m.tool_calls or [])],
        })
    return {
        "id": t.episode_id, "run": run, "task": t.task.id, "domain": t.task.domain,
        "length": t.task.length, "trial": t.trial,
        "success": bool(o.success) if o is not None else False,
        "counted": counts_for_rate(kind), "failure": kind,
        "outcome": "success" if (o is not None and o.success and kind is None) else (kind or "agent"),
        "reason": _cut(o.reason) if o is not None else "no outcome recorded",
        "first_failed": o.first_failed if o is not None else None,
        "subtasks_completed": o.subtasks_completed if o is not None else 0,
        "subtasks": subtask_verdicts(t),
        "judges": {k: {"value": s.value, "reasons": [_cut(r) for r in s.reasons],
                       "items": [{"id": i.id, "passed": i.passed, "reason": _cut(i.reason)} for i in s.items]}
                   for k, s in t.scores.items()},
        "messages": msgs,
        "calls": [{"name": c.name, "args": _cut(c.args), "error": c.error, "result": _cut(c.result)}
                  for c in t.calls],
    }


_CSS = """
#viewer .controls{margin:.5em 0}#viewer .panes{display:flex;gap:1em;align-items:flex-start}
#episode-list{max-height:600px;overflow:auto;min-width:330px}#episode-list tr{cursor:pointer}
#episode-list tr.selected{background:#def}#episode-detail{flex:1;min-width:0}
.msg{border-left:4px solid #ccc;margin:.4em 0;padding:.2em .6em;white-space:pre-wrap;text-align:left}
.msg.user{border-color:#4a8}.msg.assistant{border-color:#48c}.msg.tool{border-color:#c84}
.msg.system{border-color:#999}.call{font-family:monospace;color:#333}
.v-passed{color:#080}.v-failed{color:#c00}.v-unknown,.v-not{color:#888}
#episode-detail td,#episode-detail th{text-align:left}
"""

_JS = r"""
(function(){
  const data = JSON.parse(document.getElementById('episodes-data').textContent);
  const el = (tag, text, cls) => { const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const lenSel = document.getElementById('filter-length'), outSel = document.getElementById('filter-outcome');
  const lengths = [...new Set(data.map(e => e.length))].sort((a, b) => a - b);
  for (const L of lengths) { const o = el('option', L); o.value = String(L); lenSel.appendChild(o); }
  const outcomes = [...new Set(data.map(e => e.outcome))].sort();
  for (const k of outcomes) { const o = el('option', k); o.value = k; outSel.appendChild(o); }
  const body = document.querySelector('#episode-list tbody');
  function renderList(){
    body.textContent = '';
    const L = lenSel.value, k = outSel.value; let shown = 0;
    data.forEach((e, i) => {
      if ((L && String(e.length) !== L) || (k && e.outcome !== k)) return;
      const tr = el('tr'); tr.className = 'episode-row'; tr.dataset.index = i; tr.dataset.episode = e.id;
      for (const v of [e.run, e.id, e.task, e.length, e.outcome]) tr.appendChild(el('td', v));
      tr.addEventListener('click', () => show(i, tr)); body.appendChild(tr); shown++;
    });
    document.getElementById('episode-count').textContent = shown + ' of ' + data.length + ' episodes';
  }
  function show(i, tr){
    document.querySelectorAll('#episode-list tr.selected').forEach(r => r.classList.remove('selected'));
    if (tr) tr.classList.add('selected');
    const e = data[i], d = document.getElementById('episode-detail'); d.textContent = '';
    d.appendChild(el('h3', 'Episode ' + e.id));
    const head = el('table'); head.id = 'episode-header';
    const rows = [['run', e.run], ['task', e.task + ' (' + e.domain + ')'], ['length', e.length + ' subtasks'],
      ['trial', e.trial], ['outcome', e.outcome], ['failure kind', e.failure === null ? 'none' : e.failure],
      ['counts for rate', e.counted ? 'yes' : 'no (excluded)'], ['reason', e.reason],
      ['subtasks completed', e.subtasks_completed], ['first failed', e.first_failed === null ? '—' : e.first_failed]];
    for (const [k, v] of rows) { const r = el('tr'); r.appendChild(el('th', k)); r.appendChild(el('td', v)); head.appendChild(r); }
    d.appendChild(head);
    d.appendChild(el('h4', 'Verdict per subtask'));
    const st = el('table'); st.id = 'subtask-verdicts';
    const h = el('tr'); for (const c of ['#', 'template', 'ask', 'verdict', 'by', 'reason']) h.appendChild(el('th', c)); st.appendChild(h);
    for (const s of e.subtasks) { const r = el('tr');
      r.appendChild(el('td', s.index)); r.appendChild(el('td', s.template)); r.appendChild(el('td', s.ask));
      r.appendChild(el('td', s.verdict, 'verdict v-' + s.verdict.split(' ')[0])); r.appendChild(el('td', s.by)); r.appendChild(el('td', s.reason));
      st.appendChild(r); }
    d.appendChild(st);
    const judges = Object.entries(e.judges);
    if (judges.length) { d.appendChild(el('h4', 'Judges'));
      for (const [name, j] of judges) { d.appendChild(el('div', name + ': ' + j.value));
        for (const it of j.items) d.appendChild(el('div', '  ' + it.id + ': ' + (it.passed === null ? 'undecided' : it.passed ? 'passed' : 'failed') + (it.reason ? ' — ' + it.reason : ''), 'call')); } }
    d.appendChild(el('h4', 'Conversation'));
    const conv = el('div'); conv.id = 'conversation';
    for (const m of e.messages) {
      const box = el('div', null, 'msg ' + m.role);
      box.appendChild(el('b', m.role + (m.name ? ' (' + m.name + ')' : '') + (m.tool_call_id ? ' [' + m.tool_call_id + ']' : '') + ': '));
      box.appendChild(el('span', m.content));
      for (const c of m.tool_calls) box.appendChild(el('div', '→ ' + c.name + '(' + c.arguments + ')  [' + c.id + ']', 'call tool-call'));
      conv.appendChild(box); }
    d.appendChild(conv);
    if (e.calls.length) { d.appendChild(el('h4', 'Tool calls and results'));
      const ct = el('table'); ct.id = 'tool-calls';
      const hh = el('tr'); for (const c of ['tool', 'arguments', 'result', 'error']) hh.appendChild(el('th', c)); ct.appendChild(hh);
      for (const c of e.calls) { const r = el('tr');
        for (const v of [c.name, c.args, c.result, c.error || '']) r.appendChild(el('td', v, 'call')); ct.appendChild(r); }
      d.appendChild(ct); }
  }
  lenSel.addEventListener('change', renderList); outSel.addEventListener('change', renderList);
  renderList();
})();
"""


def viewer_section(episodes: list[dict[str, Any]]) -> str:
    """The viewer's HTML (style, controls, embedded data and script) for ``episodes``."""
    eps = [e for e in episodes if e][:MAX_EPISODES]
    if not eps:
        return ""
    # ``</`` inside a script block would end it early; the JSON escape keeps the data inert.
    blob = json.dumps(eps, ensure_ascii=False, default=str).replace("</", "<\\/")
    note = f" (first {MAX_EPISODES})" if len([e for e in episodes if e]) > MAX_EPISODES else ""
    return f"""<style>{_CSS}</style>
<section id="viewer"><h2>Trajectories{note}</h2>
<div class="controls">length <select id="filter-length"><option value="">all</option></select>
outcome <select id="filter-outcome"><option value="">all</option></select> <span id="episode-count"></span></div>
<div class="panes"><div id="episode-list"><table><thead><tr><th>run</th><th>episode</th><th>task</th>
<th>length</th><th>outcome</th></tr></thead><tbody></tbody></table></div>
<div id="episode-detail"><p>Click an episode to read it.</p></div></div></section>
<script type="application/json" id="episodes-data">{blob}</script>
<script>{_JS}</script>"""

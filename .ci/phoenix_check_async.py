#!/usr/bin/env python3
"""Reads the comprehensive async example's traces back from Phoenix's REST API
and checks what issue 4 asks of them.

Usage: phoenix_check_async.py BASE_URL PROJECT EXPECTED_SPANS [TIMEOUT_SECONDS]

Polls GET /v1/projects/{PROJECT}/spans until EXPECTED_SPANS spans are there
(Phoenix ingests asynchronously), then checks, from the spans as Phoenix
returns them (events included) and from GET /v1/sessions/{id}:

- one trace per concurrent research run, each rooted at ResearchFlow, with
  exactly one root, no orphan (every parent_id in the same trace) and
  flow > node > phase depth;
- suspend and resume: `pocketflow.lifecycle` span events with attribute
  `state` = `suspended` and `resuming`, and as many of them as each span's
  `pocketflow.lifecycle.suspensions` says (unless the exporter capped them);
- each run's session (`session.id`, which Phoenix groups traces by) on every
  span of its trace, and Phoenix's sessions (GET /v1/sessions/{id}) holding
  those traces;
- the FollowUps composition trace.

Standard library only; shares the REST helpers of phoenix_check.py. Exits 1
with a message naming every failed check.
"""

import re
import sys
import urllib.parse

sys.dont_write_bytecode = True  # no .ci/__pycache__ from the import below
from phoenix_check import get, wait_for_spans  # noqa: E402 - after the line above

RESEARCH_ROOT = "ResearchFlow"
RESEARCH_RUNS = 3  # the example's three concurrent runs
SESSIONS = {f"research-{i}" for i in range(RESEARCH_RUNS)}
USER = "example-user"
RESEARCH_NODES = ("Normalize", "FetchSources", "Enrich", "SummarizeSources", "Analysis")
NESTED = ("Analysis", "Score")  # the nested flow and its node
PHASES = ("prep", "exec", "post", "item", "fallback")
RESEARCH_EVENTS = ("pocketflow.timeout", "pocketflow.async_error", "pocketflow.context", "pocketflow.retry")
FOLLOW_UPS_ROOT = "FollowUps"
FOLLOW_UPS_SESSION = "follow-ups"
FOLLOW_UP_FLOW = "FollowUpFlow"
FOLLOW_UP_RUNS = 2
LIFECYCLE = "pocketflow.lifecycle"
FINAL_STATES = ("completed", "failed", "cancelled")


def attrs(span):
    return span.get("attributes") or {}


def lifecycle_states(span):
    return [
        (e.get("attributes") or {}).get("state") for e in span.get("events") or [] if e.get("name") == LIFECYCLE
    ]


def session_traces(base, session_id):
    """The trace ids Phoenix groups under session_id. Phoenix keys sessions
    by session_id alone, across projects: a session belongs to the project
    that first used its id and gathers every later trace with that id,
    whatever its project (GET /v1/projects/{p}/sessions lists only the
    sessions a project created). So ask for the session itself."""
    session = get(base, "/v1/sessions/" + urllib.parse.quote(session_id, safe=""))["data"]
    return {t["trace_id"] for t in session.get("traces") or []}


class Trace:
    def __init__(self, trace_id, spans):
        self.id = trace_id
        self.spans = spans
        self.by_id = {s["context"]["span_id"]: s for s in spans}
        self.roots = [s for s in spans if not s.get("parent_id")]
        self.orphans = [(s["name"], s["parent_id"]) for s in spans if s.get("parent_id") and s["parent_id"] not in self.by_id]

    @property
    def root(self):
        return self.roots[0] if len(self.roots) == 1 else None

    @property
    def root_name(self):
        return self.root["name"] if self.root else None

    def parent(self, span):
        return self.by_id.get(span.get("parent_id"))

    def depth(self):
        """Spans on the longest root-to-leaf path (a lone root is 1)."""
        best = 0
        for span in self.spans:
            n, seen = 1, {span["context"]["span_id"]}
            while (span := self.parent(span)) is not None and span["context"]["span_id"] not in seen:
                seen.add(span["context"]["span_id"])
                n += 1
            best = max(best, n)
        return best

    def named(self, name):
        return [s for s in self.spans if s["name"] == name]

    def label(self):
        session = attrs(self.root).get("session.id") if self.root else None
        return f"{self.root_name or '?'} trace {self.id} (session {session!r})"


def check(base, project, expected, got):
    failures = []
    stats = {}

    def expect(ok, message):
        if not ok:
            failures.append(message)
        return ok

    expect(len(got) == expected, f"{len(got)} spans in Phoenix, the exporter reported {expected}")
    span_ids = [s["context"]["span_id"] for s in got]
    expect(len(span_ids) == len(set(span_ids)), "duplicate span ids")

    grouped = {}
    for span in got:
        grouped.setdefault(span["context"]["trace_id"], []).append(span)
    traces = [Trace(tid, spans) for tid, spans in grouped.items()]

    # Every trace, whatever it is: one root, no orphan.
    for trace in traces:
        expect(
            len(trace.roots) == 1,
            f"trace {trace.id}: expected exactly one root span, found {[s['name'] for s in trace.roots]}",
        )
        expect(not trace.orphans, f"trace {trace.id}: spans whose parent is not in the trace: {trace.orphans}")

    research = [t for t in traces if t.root_name == RESEARCH_ROOT]
    follow_ups = [t for t in traces if t.root_name == FOLLOW_UPS_ROOT]
    others = [t for t in traces if t not in research and t not in follow_ups]
    expect(
        len(research) == RESEARCH_RUNS,
        f"expected {RESEARCH_RUNS} traces rooted at {RESEARCH_ROOT!r} (one per concurrent run), found "
        f"{len(research)}; traces by root: {sorted(str(t.root_name) for t in traces)}",
    )
    expect(
        len(follow_ups) == 1,
        f"expected one trace rooted at {FOLLOW_UPS_ROOT!r}, found {len(follow_ups)}",
    )
    expect(not others, f"unexpected traces: {[t.label() for t in others]}")

    # --- the research runs ------------------------------------------------------
    run_sessions = {}
    depths, suspended, resuming = [], 0, 0
    for trace in research:
        root = trace.root
        if root is None:
            continue
        where = trace.label()
        depth = trace.depth()
        depths.append(depth)
        expect(depth >= 3, f"{where}: depth {depth}, expected at least 3 (flow > node > phase)")
        # flow > node > phase, literally: a phase span (told by its
        # pocketflow.span attribute, named after its node: FetchSources.exec)
        # whose parent is a node span whose parent is the root.
        chain = [
            s
            for s in trace.spans
            if (phase := attrs(s).get("pocketflow.span")) in PHASES
            and (node := trace.parent(s)) is not None
            and node["name"] in RESEARCH_NODES
            and node.get("parent_id") == root["context"]["span_id"]
            and s["name"] == f"{node['name']}.{phase}"
        ]
        expect(chain, f"{where}: no phase span under a node span under {RESEARCH_ROOT!r}")
        names = {s["name"] for s in trace.spans}
        for node in RESEARCH_NODES + NESTED:
            expect(node in names, f"{where}: no {node!r} span")
        for score in trace.named(NESTED[1]):
            parent = trace.parent(score)
            expect(
                parent is not None and parent["name"] == NESTED[0],
                f"{where}: {NESTED[1]!r} is not under the nested flow {NESTED[0]!r}",
            )
        expect(root.get("span_kind") == "CHAIN", f"{where}: root span_kind {root.get('span_kind')!r}, expected 'CHAIN'")

        # The run's session and user, on every span (Phoenix reads session.id).
        session = attrs(root).get("session.id")
        if expect(
            isinstance(session, str) and re.fullmatch(r"research-\d+", session),
            f"{where}: root session.id is {session!r}, expected research-N",
        ):
            run_sessions.setdefault(session, []).append(trace.id)
        wrong = sorted({(s["name"], attrs(s).get("session.id")) for s in trace.spans if attrs(s).get("session.id") != session})
        expect(not wrong, f"{where}: spans without the run's session.id {session!r}: {wrong[:10]}")
        wrong = sorted({(s["name"], attrs(s).get("user.id")) for s in trace.spans if attrs(s).get("user.id") != USER})
        expect(not wrong, f"{where}: spans without user.id {USER!r}: {wrong[:10]}")

        # Suspend and resume, as span events.
        states = [state for s in trace.spans for state in lifecycle_states(s)]
        expect(
            "suspended" in states and "resuming" in states,
            f"{where}: no {LIFECYCLE} events with state 'suspended' and 'resuming' (states seen: {sorted(set(map(str, states)))})",
        )
        suspended += states.count("suspended")
        resuming += states.count("resuming")
        events = {e.get("name") for s in trace.spans for e in s.get("events") or []}
        for event in RESEARCH_EVENTS:
            expect(event in events, f"{where}: no {event!r} span event")

    got_sessions = set(run_sessions)
    expect(got_sessions == SESSIONS, f"research sessions are {sorted(got_sessions)}, expected {sorted(SESSIONS)}")
    shared = {s: ids for s, ids in run_sessions.items() if len(ids) > 1}
    expect(not shared, f"research runs share a session: {shared}")
    expect(
        any(attrs(s).get("pocketflow.span") == "fallback" for t in research for s in t.spans),
        "no research trace has a 'fallback' span (the quantum run falls back to a cached answer)",
    )

    # Every span's lifecycle events made it through Phoenix: as many
    # suspended/resuming events as the span's own suspension count, unless
    # the exporter summarized the repeated cycles past its cap, in which case
    # the list still has each state's first transition and ends with the
    # final state, and nothing is reported lost (pocketflow.dropped_events).
    capped = 0
    for span in got:
        a = attrs(span)
        if "pocketflow.lifecycle.suspensions" not in a:
            continue
        states = lifecycle_states(span)
        expect(
            not a.get("pocketflow.dropped_events"),
            f"span {span['name']!r}: {a.get('pocketflow.dropped_events')} events reported lost",
        )
        if 0 < states.count("suspended") < a["pocketflow.lifecycle.suspensions"]:
            capped += 1
            expect(
                states[0] == "created" and states[-1] in FINAL_STATES and "resuming" in states,
                f"span {span['name']!r} ({span['context']['span_id']}): summarized lifecycle events lack a "
                f"milestone: {states[:3]} … {states[-3:]}",
            )
        else:
            n = a["pocketflow.lifecycle.suspensions"]
            expect(
                states.count("suspended") == n and states.count("resuming") == n,
                f"span {span['name']!r} ({span['context']['span_id']}): pocketflow.lifecycle.suspensions is {n} but "
                f"Phoenix returns {states.count('suspended')} 'suspended' and {states.count('resuming')} 'resuming' events",
            )

    # --- the follow-up composition ----------------------------------------------
    for trace in follow_ups:
        root = trace.root
        where = trace.label()
        kind = attrs(root).get("pocketflow.composition.kind")
        expect(kind == "batch", f"{where}: pocketflow.composition.kind is {kind!r}, expected 'batch'")
        flows = trace.named(FOLLOW_UP_FLOW)
        expect(
            len(flows) == FOLLOW_UP_RUNS,
            f"{where}: {len(flows)} {FOLLOW_UP_FLOW!r} spans, expected {FOLLOW_UP_RUNS}",
        )
        expect(
            all(f.get("parent_id") == root["context"]["span_id"] for f in flows),
            f"{where}: a {FOLLOW_UP_FLOW!r} span is not a child of {FOLLOW_UPS_ROOT!r}",
        )
        wrong = sorted({(s["name"], attrs(s).get("session.id")) for s in trace.spans if attrs(s).get("session.id") != FOLLOW_UPS_SESSION})
        expect(not wrong, f"{where}: spans without session.id {FOLLOW_UPS_SESSION!r}: {wrong[:10]}")
        stats["follow_ups"] = (len(trace.spans), trace.depth())

    # --- Phoenix's own view of the sessions -------------------------------------
    want = {s: set(ids) for s, ids in run_sessions.items()}
    if follow_ups:
        want[FOLLOW_UPS_SESSION] = {follow_ups[0].id}
    grouped_ok = 0
    for session, ids in sorted(want.items()):
        try:
            held = session_traces(base, session)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            expect(False, f"GET /v1/sessions/{session} failed: {error}")
            continue
        if expect(
            ids <= held,
            f"Phoenix session {session!r} does not hold trace(s) {sorted(ids - held)} (it holds {sorted(held)})",
        ):
            grouped_ok += 1
    stats["phoenix_sessions"] = grouped_ok

    stats.update(
        traces=len(traces),
        research=len(research),
        depths=sorted(depths),
        suspended=suspended,
        resuming=resuming,
        capped=capped,
        sessions=sorted(got_sessions),
    )
    return failures, stats


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base, project, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 60.0

    got = wait_for_spans(base, project, expected, timeout)
    failures, stats = check(base, project, expected, got)
    if failures:
        print(f"phoenix_check_async: FAIL: project {project!r} ({len(got)} spans):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        sys.exit(1)
    follow_spans, follow_depth = stats.get("follow_ups", (0, 0))
    print(
        f"phoenix_check_async: ok: project {project!r}: {len(got)} spans in {stats['traces']} traces: "
        f"{stats['research']} x {RESEARCH_ROOT} (sessions {', '.join(stats['sessions'])}; depths {stats['depths']}; "
        f"{stats['suspended']} suspended / {stats['resuming']} resuming events, {stats['capped']} spans capped "
        f"by the exporter), {FOLLOW_UPS_ROOT} ({follow_spans} spans, depth {follow_depth}); "
        f"{stats.get('phoenix_sessions', 0)} Phoenix sessions hold their traces",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

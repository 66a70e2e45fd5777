#!/usr/bin/env python3
"""Reads the quickstart's trace back from Phoenix's REST API and checks it.

Usage: phoenix_check.py BASE_URL PROJECT EXPECTED_SPANS [TIMEOUT_SECONDS]

Polls GET /v1/projects/{PROJECT}/spans until EXPECTED_SPANS spans are there
(Phoenix ingests asynchronously), then checks the trace's shape. Standard
library only. Exits 1 with a message naming every failed check.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NODES = ("LoadTickets", "Classify", "DraftRefunds", "Summarize")
PHASES = ("prep", "exec", "post", "item", "fallback")
ROOT = "TicketTriage"

# Loopback only: never go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(base, path, params=None):
    url = base.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with OPENER.open(url, timeout=10) as response:
        return json.load(response)


def projects(base):
    return [p["name"] for p in get(base, "/v1/projects").get("data", [])]


def spans(base, project):
    """Every span of the project, following next_cursor."""
    out, cursor = [], None
    path = "/v1/projects/" + urllib.parse.quote(project, safe="") + "/spans"
    while True:
        params = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = get(base, path, params)
        out.extend(page.get("data", []))
        cursor = page.get("next_cursor")
        if not cursor:
            return out


def wait_for_spans(base, project, expected, timeout):
    deadline = time.monotonic() + timeout
    got, last_error = [], None
    while True:
        try:
            if project in projects(base):
                got = spans(base, project)
                if len(got) >= expected:
                    # Give a straggler batch a moment, then take the final view.
                    time.sleep(1)
                    return spans(base, project)
        except (urllib.error.URLError, OSError, ValueError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            detail = f"; last error: {last_error}" if last_error else ""
            sys.exit(
                f"phoenix_check: FAIL: project {project!r}: {len(got)} of {expected} spans "
                f"arrived within {timeout}s (projects: {safe_projects(base)}){detail}"
            )
        time.sleep(0.5)


def safe_projects(base):
    try:
        return projects(base)
    except Exception as error:  # noqa: BLE001 - only for the message
        return f"<unavailable: {error}>"


def check(project, expected, got):
    failures = []

    def expect(ok, message):
        if not ok:
            failures.append(message)

    def attrs(span):
        return span.get("attributes") or {}

    expect(len(got) == expected, f"{len(got)} spans in Phoenix, the exporter reported {expected}")

    trace_ids = {s["context"]["trace_id"] for s in got}
    expect(len(trace_ids) == 1, f"expected exactly one trace id, found {len(trace_ids)}: {sorted(trace_ids)}")

    span_ids = [s["context"]["span_id"] for s in got]
    expect(len(span_ids) == len(set(span_ids)), "duplicate span ids")
    known = set(span_ids)

    roots = [s for s in got if not s.get("parent_id")]
    expect(len(roots) == 1, f"expected exactly one span without parent, found {[s['name'] for s in roots]}")
    root = roots[0] if len(roots) == 1 else None
    if root is not None:
        expect(root["name"] == ROOT, f"root span is {root['name']!r}, expected {ROOT!r}")
        expect(root.get("span_kind") == "CHAIN", f"root span_kind is {root.get('span_kind')!r}, expected 'CHAIN'")
        expect(
            attrs(root).get("langfuse.trace.name") == ROOT,
            f"root attribute langfuse.trace.name is {attrs(root).get('langfuse.trace.name')!r}, expected {ROOT!r}",
        )

    orphans = [(s["name"], s["parent_id"]) for s in got if s.get("parent_id") and s["parent_id"] not in known]
    expect(not orphans, f"spans whose parent is not in the trace: {orphans}")

    names = [s["name"] for s in got]
    for node in NODES:
        expect(names.count(node) == 1, f"node span {node!r} appears {names.count(node)} times, expected once")
        node_span = next((s for s in got if s["name"] == node), None)
        if node_span is not None and root is not None:
            expect(
                node_span.get("parent_id") == root["context"]["span_id"],
                f"node span {node!r} is not a child of {ROOT!r}",
            )
    # A phase span is told by its pocketflow.span attribute, and named after
    # the node (or flow) it belongs to: Classify.exec, also for an exec under
    # one of Classify's items.
    by_id = {s["context"]["span_id"]: s for s in got}

    def phase_of(span):
        phase = attrs(span).get("pocketflow.span")
        return phase if phase in PHASES else None

    def owner_of(span):
        seen = set()
        while (span := by_id.get(span.get("parent_id"))) is not None and span["context"]["span_id"] not in seen:
            seen.add(span["context"]["span_id"])
            if attrs(span).get("pocketflow.span") in ("node", "flow"):
                return span["name"]
        return None

    phase_spans = [s for s in got if phase_of(s)]
    for phase in PHASES:
        expect(any(phase_of(s) == phase for s in phase_spans), f"no {phase!r} phase span")
    misnamed = sorted(
        {(s["name"], f"{owner_of(s)}.{phase_of(s)}") for s in phase_spans if s["name"] != f"{owner_of(s)}.{phase_of(s)}"}
    )
    expect(not misnamed, f"phase spans not named after their node (name, expected): {misnamed}")
    unexpected = sorted(set(names) - set(NODES) - {ROOT} - {s["name"] for s in phase_spans})
    expect(not unexpected, f"unexpected span names: {unexpected}")

    kinds = sorted({s.get("span_kind") for s in got})
    expect("UNKNOWN" not in kinds, f"some spans have span_kind UNKNOWN (openinference.span.kind missing): {kinds}")

    # input.value / output.value are what Phoenix shows as a span's Input and
    # Output; the REST API returns them as flat, dotted attribute keys.
    with_input = [s for s in got if attrs(s).get("input.value")]
    with_output = [s for s in got if attrs(s).get("output.value")]
    expect(with_input, "no span carries input.value")
    expect(with_output, "no span carries output.value")
    if root is not None:
        output = attrs(root).get("output.value") or ""
        expect("summary" in output, f"root output.value has no 'summary': {output[:200]!r}")

    # The quickstart's flaky model calls fail before retries/fallback rescue
    # them: those attempts must arrive as ERROR spans with their message.
    errors = [s for s in got if s.get("status_code") == "ERROR"]
    expect(errors, "no span has status ERROR (the quickstart's failed attempts)")
    expect(all(s.get("status_message") for s in errors), "an ERROR span has no status message")

    return failures, trace_ids, kinds, len(with_input), len(with_output), len(errors)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base, project, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 60.0

    got = wait_for_spans(base, project, expected, timeout)
    failures, trace_ids, kinds, n_in, n_out, n_err = check(project, expected, got)
    if failures:
        print(f"phoenix_check: FAIL: project {project!r} ({len(got)} spans):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        sys.exit(1)
    print(
        f"phoenix_check: ok: project {project!r}: {len(got)} spans, trace {next(iter(trace_ids))}, "
        f"span kinds {kinds}, {n_in} with input.value, {n_out} with output.value, {n_err} ERROR",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

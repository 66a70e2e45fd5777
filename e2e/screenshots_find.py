#!/usr/bin/env python3
"""Finds the quickstart's trace in Jaeger or Phoenix once all of it arrived.

Usage:
  screenshots_find.py jaeger  QUERY_BASE_URL SERVICE EXPECTED_SPANS TIMEOUT
  screenshots_find.py phoenix BASE_URL       PROJECT EXPECTED_SPANS TIMEOUT

Polls the backend's HTTP API until a trace whose root span is the
quickstart's flow (TicketTriage) holds EXPECTED_SPANS spans (both backends
ingest asynchronously, Jaeger behind the collector's batch), then prints one
line: for Jaeger the trace id; for Phoenix the project's id and the trace id,
which make the UI's URL /projects/<project id>/traces/<trace id>. Standard
library only; exits 1 with a message if the trace never completes.
"""

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = "TicketTriage"

# Loopback only: never go through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(base, path, params=None):
    url = base.rstrip("/") + path
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with OPENER.open(url, timeout=10) as response:
        return json.load(response)


def jaeger(base, service):
    """(trace id, span count) of the newest TicketTriage trace, or None."""
    traces = get(base, "/api/traces", {"service": service, "limit": 20}).get("data") or []
    found = []
    for trace in traces:
        spans = trace.get("spans") or []
        roots = [s for s in spans if not any(r.get("refType") == "CHILD_OF" for r in s.get("references") or [])]
        if any(s.get("operationName") == ROOT for s in roots):
            start = min(s.get("startTime", 0) for s in spans)
            found.append((start, trace["traceID"], len(spans)))
    if not found:
        return None
    _, trace_id, count = max(found)
    return trace_id, count


def phoenix(base, project):
    """(project id, trace id, span count) of the newest TicketTriage trace, or None."""
    ids = [p["id"] for p in get(base, "/v1/projects").get("data", []) if p.get("name") == project]
    if not ids:
        return None
    spans, cursor = [], None
    path = "/v1/projects/" + urllib.parse.quote(project, safe="") + "/spans"
    while True:
        params = {"limit": 1000}
        if cursor:
            params["cursor"] = cursor
        page = get(base, path, params)
        spans.extend(page.get("data", []))
        cursor = page.get("next_cursor")
        if not cursor:
            break
    roots = [s for s in spans if s.get("name") == ROOT and not s.get("parent_id")]
    if not roots:
        return None
    root = max(roots, key=lambda s: s.get("start_time", ""))
    trace_id = root["context"]["trace_id"]
    count = sum(1 for s in spans if s["context"]["trace_id"] == trace_id)
    return ids[0], trace_id, count


def main():
    if len(sys.argv) != 6 or sys.argv[1] not in ("jaeger", "phoenix"):
        sys.exit(__doc__)
    backend, base, name, expected, timeout = sys.argv[1:]
    expected, deadline = int(expected), time.monotonic() + float(timeout)
    seen, last_error = None, None
    while True:
        try:
            seen = jaeger(base, name) if backend == "jaeger" else phoenix(base, name)
            if seen and seen[-1] >= expected:
                print(*seen[:-1])
                return
        except (urllib.error.URLError, OSError, ValueError, KeyError) as error:
            last_error = error
        if time.monotonic() >= deadline:
            got = f"{seen[-1]} of {expected} spans" if seen else f"no {ROOT} trace"
            detail = f"; last error: {last_error}" if last_error else ""
            sys.exit(f"screenshots_find: {backend} at {base}, {name!r}: {got} after {timeout}s{detail}")
        time.sleep(0.5)


if __name__ == "__main__":
    main()

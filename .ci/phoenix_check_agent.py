#!/usr/bin/env python3
"""Reads the agent example's trace back from Phoenix's REST API and checks
that Phoenix shows its model calls as LLM spans with model, token counts,
cost and messages, and its nodes with the kinds they declare.

Usage: phoenix_check_agent.py BASE_URL PROJECT EXPECTED_SPANS [TIMEOUT_SECONDS]

Standard library only. Exits 1 with a message naming every failed check.
"""

import sys

sys.dont_write_bytecode = True  # no .ci/__pycache__ from the import below
from phoenix_check import wait_for_spans  # noqa: E402 - after the line above

ROOT = "ResearchAgent"
GENERATION = "chat stand-in-chat-1"
# Three decisions (search, search, answer) and the answer.
GENERATIONS = 4
NODE_KINDS = {"DecideAction": ("AGENT", 3), "SearchWeb": ("TOOL", 2), "AnswerQuestion": ("CHAIN", 1)}


def messages(attributes, key):
    """The messages under `key`: Phoenix may return them as a list of
    `{"message": {"role", "content"}}` or as flat dotted keys."""
    value = attributes.get(key)
    if isinstance(value, list):
        return [(m.get("message") or {}) for m in value]
    nested = attributes
    for part in key.split("."):
        nested = nested.get(part) if isinstance(nested, dict) else None
    if isinstance(nested, list):
        return [(m.get("message") or {}) for m in nested]
    out, i = [], 0
    while f"{key}.{i}.message.role" in attributes:
        out.append(
            {
                "role": attributes.get(f"{key}.{i}.message.role"),
                "content": attributes.get(f"{key}.{i}.message.content"),
            }
        )
        i += 1
    return out


def lookup(attributes, key):
    if key in attributes:
        return attributes[key]
    nested = attributes
    for part in key.split("."):
        if not isinstance(nested, dict) or part not in nested:
            return None
        nested = nested[part]
    return nested


def check(expected, got):
    failures = []

    def expect(ok, message):
        if not ok:
            failures.append(message)

    expect(len(got) == expected, f"{len(got)} spans in Phoenix, the exporter reported {expected}")
    trace_ids = {s["context"]["trace_id"] for s in got}
    expect(len(trace_ids) == 1, f"expected one trace id, found {sorted(trace_ids)}")
    roots = [s for s in got if not s.get("parent_id")]
    expect([s["name"] for s in roots] == [ROOT], f"roots are {[s['name'] for s in roots]}, expected [{ROOT!r}]")

    for node, (kind, count) in NODE_KINDS.items():
        spans = [s for s in got if s["name"] == node]
        expect(len(spans) == count, f"{node}: {len(spans)} spans, expected {count}")
        kinds = sorted({s.get("span_kind") for s in spans})
        expect(kinds == [kind], f"{node}: span_kind {kinds}, expected {kind!r}")

    generations = [s for s in got if s["name"] == GENERATION]
    expect(len(generations) == GENERATIONS, f"{len(generations)} {GENERATION!r} spans, expected {GENERATIONS}")
    for span in generations:
        attributes = span.get("attributes") or {}
        where = f"{GENERATION} {span['context']['span_id']}"
        expect(span.get("span_kind") == "LLM", f"{where}: span_kind {span.get('span_kind')!r}, expected 'LLM'")
        expect(lookup(attributes, "llm.model_name") == "stand-in-chat-1", f"{where}: llm.model_name missing")
        prompt = lookup(attributes, "llm.token_count.prompt")
        completion = lookup(attributes, "llm.token_count.completion")
        total = lookup(attributes, "llm.token_count.total")
        expect(
            isinstance(prompt, (int, float)) and isinstance(completion, (int, float)) and prompt > 0 and completion > 0,
            f"{where}: token counts {prompt!r}, {completion!r}",
        )
        expect(total == (prompt or 0) + (completion or 0), f"{where}: llm.token_count.total {total!r}")
        cost = lookup(attributes, "llm.cost.total")
        expect(isinstance(cost, (int, float)) and cost > 0, f"{where}: llm.cost.total {cost!r}")
        inputs = messages(attributes, "llm.input_messages")
        outputs = messages(attributes, "llm.output_messages")
        expect([m.get("role") for m in inputs] == ["system", "user"], f"{where}: input messages {inputs!r}")
        expect(
            inputs and "## QUESTION" in (inputs[-1].get("content") or ""),
            f"{where}: the user message has no question: {inputs!r}",
        )
        expect(
            [m.get("role") for m in outputs] == ["assistant"] and outputs[0].get("content"),
            f"{where}: output messages {outputs!r}",
        )
    return failures


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    base, project, expected = sys.argv[1], sys.argv[2], int(sys.argv[3])
    timeout = float(sys.argv[4]) if len(sys.argv) == 5 else 60.0
    got = wait_for_spans(base, project, expected, timeout)
    failures = check(expected, got)
    if failures:
        print(f"phoenix_check_agent: FAIL: project {project!r} ({len(got)} spans):", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        sys.exit(1)
    print(
        f"phoenix_check_agent: ok: project {project!r}: {len(got)} spans, {GENERATIONS} LLM spans with model, "
        f"token counts, cost and messages; agent, tool and chain nodes",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()

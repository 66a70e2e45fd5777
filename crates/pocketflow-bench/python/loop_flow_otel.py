"""The Python side of pocketflow-bench's side-by-side case: the same loop
workload in PocketFlow (PyPI `pocketflow` 0.0.3), traced with the
OpenTelemetry Python SDK (default `BatchSpanProcessor`, OTLP exporter) to the
same receiver the Rust cases send to.

Each flow is 10 nodes in a chain; each node gets a node span and prep, exec
and post spans under the flow's span (41 spans per flow, as in the Rust
workload), with the JSON of inputs and outputs as attributes.

    python3 loop_flow_otel.py --flows 5000 --endpoint http://127.0.0.1:4317 --protocol grpc

Prints one JSON line: the case, the flows and spans produced, the seconds to
produce them and to shut the SDK down (which flushes), and the nanoseconds per
span on the application thread. What was delivered is counted by the bench at
the receiver: the SDK drops spans when its queue is full and does not say so.
"""

import argparse
import json
import time

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from pocketflow import Flow, Node

NODES = 10


class Step(Node):
    """A node whose three phases run inside spans of their own."""

    def __init__(self, index, tracer):
        super().__init__()
        self.index = index
        self.tracer = tracer
        self.name = f"Step{index}"

    def prep(self, shared):
        return self.index

    def exec(self, prep_res):
        return prep_res + 1

    def post(self, shared, prep_res, exec_res):
        return None

    def _run(self, shared):
        with self.tracer.start_as_current_span(self.name) as node:
            with self.tracer.start_as_current_span(f"{self.name}.prep") as span:
                p = self.prep(shared)
                span.set_attribute("output.value", json.dumps(p))
            node.set_attribute("input.value", json.dumps(p))
            with self.tracer.start_as_current_span(f"{self.name}.exec") as span:
                span.set_attribute("input.value", json.dumps(p))
                e = self._exec(p)
                span.set_attribute("output.value", json.dumps(e))
            node.set_attribute("output.value", json.dumps(e))
            with self.tracer.start_as_current_span(f"{self.name}.post"):
                return self.post(shared, p, e)


def build_flow(tracer):
    first = Step(0, tracer)
    last = first
    for i in range(1, NODES):
        step = Step(i, tracer)
        last >> step
        last = step
    return Flow(start=first)


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--flows", type=int, default=5000)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    args = parser.parse_args()

    provider = TracerProvider(resource=Resource.create({"service.name": "pocketflow-python-bench"}))
    provider.add_span_processor(BatchSpanProcessor(exporter(args.protocol, args.endpoint)))
    tracer = provider.get_tracer("pocketflow-bench")

    start = time.perf_counter()
    for _ in range(args.flows):
        flow = build_flow(tracer)
        with tracer.start_as_current_span("LoopFlow") as span:
            shared = {}
            span.set_attribute("input.value", json.dumps(shared))
            flow.run(shared)
    produced = time.perf_counter() - start
    provider.shutdown()
    delivered = time.perf_counter() - start
    spans = args.flows * (1 + 4 * NODES)
    print(
        json.dumps(
            {
                "case": f"python_otel_{args.protocol}",
                "flows": args.flows,
                "spans": spans,
                "produce_seconds": round(produced, 4),
                "shutdown_seconds": round(delivered, 4),
                "ns_per_span": round(produced * 1e9 / spans, 1),
            }
        )
    )


if __name__ == "__main__":
    main()

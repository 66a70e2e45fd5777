"""The Python figures of engine_overhead.rs: the same 1,000-node loop in
PocketFlow (PyPI `pocketflow`), sync and async, no tracing.

    python3 -m venv /tmp/pf && /tmp/pf/bin/pip install pocketflow==0.0.3
    /tmp/pf/bin/python crates/pocketflow/benches/python_baseline.py

Prints the best of 20 runs per loop, as microseconds per node.
"""

import asyncio
import time

from pocketflow import AsyncFlow, AsyncNode, Flow, Node

NODES = 1000
TICKS = NODES // 2 - 1


class Tick(Node):
    def prep(self, shared):
        return shared["n"]

    def exec(self, n):
        return n + 1

    def post(self, shared, prep_res, n):
        shared["n"] = n


class Check(Node):
    def prep(self, shared):
        return shared["n"]

    def exec(self, n):
        return n < TICKS

    def post(self, shared, prep_res, again):
        return "again" if again else "done"


class Done(Node):
    def exec(self, prep_res):
        return None


class ATick(AsyncNode):
    async def prep_async(self, shared):
        return shared["n"]

    async def exec_async(self, n):
        return n + 1

    async def post_async(self, shared, prep_res, n):
        shared["n"] = n


class ACheck(AsyncNode):
    async def prep_async(self, shared):
        return shared["n"]

    async def exec_async(self, n):
        return n < TICKS

    async def post_async(self, shared, prep_res, again):
        return "again" if again else "done"


class ADone(AsyncNode):
    async def exec_async(self, prep_res):
        return None


def loop(check, tick, done, flow_class):
    check - "again" >> tick
    tick >> check
    check - "done" >> done
    return flow_class(start=check)


def best(run, runs=20):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) / NODES * 1e6


def main():
    sync_flow = loop(Check(), Tick(), Done(), Flow)
    async_flow = loop(ACheck(), ATick(), ADone(), AsyncFlow)
    event_loop = asyncio.new_event_loop()
    print(f"sync Node:      {best(lambda: sync_flow.run({'n': 0})):.2f} µs per node")
    print(f"async AsyncNode: {best(lambda: event_loop.run_until_complete(async_flow.run_async({'n': 0}))):.2f} µs per node")


if __name__ == "__main__":
    main()

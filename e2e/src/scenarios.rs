//! The three scenarios of the run (see the crate docs), each on its own
//! collectors and Langfuse-contract receivers, all sharing one Jaeger.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use pocketflow_test_support::otlp::ReceivedTrace;

use crate::examples::ExampleRun;
use crate::jaeger::JaegerQuery;
use crate::langfuse::{LangfuseContract, check_langfuse_attributes};
use crate::services::{Service, ServiceSpec, free_addr};
use crate::{E2eError, Setup, check};

/// How long spans may take from the example to a receiver: the batch
/// processor waits up to 1 s, a retry after an outage up to 30 s.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);

/// How long the Langfuse-contract receiver is down in the outage scenario.
const OUTAGE: Duration = Duration::from_secs(10);

/// The examples the outage and scale-out scenarios run; they must be among
/// the exporting examples.
const REQUIRED_EXAMPLES: [&str; 2] = ["quickstart", "comprehensive_async_example"];

/// Jaeger, running, with its OTLP endpoint and query client.
#[derive(Debug)]
struct Jaeger {
    _service: Service,
    otlp: SocketAddr,
    query: JaegerQuery,
}

/// A collector's listening addresses.
#[derive(Debug, Clone)]
struct CollectorPorts {
    grpc: SocketAddr,
    http: SocketAddr,
    health: SocketAddr,
    metrics: SocketAddr,
}

impl CollectorPorts {
    fn free() -> Result<Self, E2eError> {
        Ok(Self { grpc: free_addr()?, http: free_addr()?, health: free_addr()?, metrics: free_addr()? })
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("OTLP_GRPC_ENDPOINT".into(), self.grpc.to_string()),
            ("OTLP_HTTP_ENDPOINT".into(), self.http.to_string()),
            ("HEALTH_CHECK_ENDPOINT".into(), self.health.to_string()),
            ("COLLECTOR_METRICS_HOST".into(), self.metrics.ip().to_string()),
            ("COLLECTOR_METRICS_PORT".into(), self.metrics.port().to_string()),
        ]
    }

    fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    fn http_url(&self) -> String {
        format!("http://{}", self.http)
    }
}

/// Runs the three scenarios in order.
pub(crate) fn run_all(setup: &Setup) -> Result<(), E2eError> {
    for name in REQUIRED_EXAMPLES {
        if !setup.examples.has(name) || !setup.exporting_examples.iter().any(|e| e == name) {
            return Err(E2eError::Check(format!(
                "example binary {name} is not built (cargo build --examples) or not among --exporting-examples"
            )));
        }
    }
    let jaeger = start_jaeger(setup)?;
    println!("e2e-collector: Jaeger v2 at {} (UI and query API)", jaeger.query.base());
    through_the_agent(setup, &jaeger)?;
    langfuse_outage(setup, &jaeger)?;
    scale_out(setup, &jaeger)?;
    Ok(())
}

fn start_jaeger(setup: &Setup) -> Result<Jaeger, E2eError> {
    let (otlp, query_http, query_grpc) = (free_addr()?, free_addr()?, free_addr()?);
    let service = Service::start(ServiceSpec {
        name: "jaeger",
        program: &setup.jaeger,
        config: &setup.jaeger_config,
        env: vec![
            ("JAEGER_OTLP_GRPC".into(), otlp.to_string()),
            ("JAEGER_QUERY_HTTP".into(), query_http.to_string()),
            ("JAEGER_QUERY_GRPC".into(), query_grpc.to_string()),
        ],
        ready_ports: vec![otlp, query_http],
        log_dir: &setup.work,
    })?;
    Ok(Jaeger { _service: service, otlp, query: JaegerQuery::new(format!("http://{query_http}"))? })
}

/// Starts a collector with `collector-config/<config>` and `env` on top of
/// its ports.
fn start_collector(
    setup: &Setup,
    name: &str,
    config: &str,
    ports: &CollectorPorts,
    env: Vec<(String, String)>,
) -> Result<Service, E2eError> {
    let config = setup.configs.join(config);
    let mut all = ports.env();
    all.extend(env);
    Service::start(ServiceSpec {
        name,
        program: &setup.collector,
        config: &config,
        env: all,
        ready_ports: vec![ports.grpc, ports.http, ports.health],
        log_dir: &setup.work,
    })
}

/// The environment of a collector that forwards to `langfuse` and `jaeger`
/// and keeps its Langfuse queue in `<work>/<queue>`.
fn forwarding_env(setup: &Setup, langfuse: &LangfuseContract, jaeger: &Jaeger, queue: &str) -> Vec<(String, String)> {
    let mut env = langfuse.collector_env();
    env.push(("JAEGER_OTLP_ENDPOINT".into(), jaeger.otlp.to_string()));
    env.push(("COLLECTOR_QUEUE_DIR".into(), queue_dir(&setup.work, queue)));
    env
}

fn queue_dir(work: &Path, name: &str) -> String {
    work.join(name).to_string_lossy().into_owned()
}

fn total(runs: &[ExampleRun]) -> usize {
    runs.iter().map(|r| r.exported).sum()
}

/// Waits until `langfuse` holds exactly `expected` distinct spans.
fn expect_all_delivered(langfuse: &LangfuseContract, expected: usize, what: &str) -> Result<(), E2eError> {
    let have = langfuse.wait_for_distinct_spans(expected, DELIVERY_TIMEOUT);
    if have != expected {
        return Err(E2eError::Check(format!(
            "{what}: the Langfuse-contract receiver holds {have} distinct span(s); the examples exported {expected}"
        )));
    }
    Ok(())
}

/// Checks each trace against Langfuse's attributes and against Jaeger.
fn expect_whole_in_jaeger(jaeger: &Jaeger, traces: &[ReceivedTrace]) -> Result<(), E2eError> {
    for trace in traces {
        check_langfuse_attributes(trace)?;
        let got = jaeger.query.wait_for_trace(&trace.trace_id, check::for_jaeger(trace).len(), DELIVERY_TIMEOUT)?;
        check::same_trace(trace, got.as_ref())?;
    }
    Ok(())
}

/// Scenario 1: examples → agent.yaml → Langfuse contract + Jaeger.
fn through_the_agent(setup: &Setup, jaeger: &Jaeger) -> Result<(), E2eError> {
    let started = Instant::now();
    let langfuse = LangfuseContract::start()?;
    let ports = CollectorPorts::free()?;
    let agent =
        start_collector(setup, "agent", "agent.yaml", &ports, forwarding_env(setup, &langfuse, jaeger, "agent-queue"))?;
    let mut runs = Vec::new();
    for name in &setup.exporting_examples {
        runs.push(setup.examples.run(name, &ports.grpc_url(), "grpc", &format!("e2e-{name}"))?);
    }
    // The agent's OTLP/HTTP receiver too, as an SDK configured for HTTP uses it.
    runs.push(setup.examples.run("quickstart", &ports.http_url(), "http/protobuf", "e2e-quickstart-http")?);
    // Compressed, both ways: the collector answers a gzipped gRPC request
    // with a gzipped response.
    let gzip = [("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")];
    runs.push(setup.examples.run_with("quickstart", &ports.grpc_url(), "grpc", "e2e-quickstart-grpc-gzip", &gzip)?);
    runs.push(setup.examples.run_with(
        "quickstart",
        &ports.http_url(),
        "http/protobuf",
        "e2e-quickstart-http-gzip",
        &gzip,
    )?);
    let expected = total(&runs);
    expect_all_delivered(&langfuse, expected, "through the agent")?;
    let requests = langfuse.check_requests()?;
    let traces = langfuse.traces();
    expect_whole_in_jaeger(jaeger, &traces)?;
    agent.stop()?;
    let events = traces.iter().flat_map(|t| &t.spans).filter(|s| check::is_event_observation(s)).count();
    if events == 0 {
        return Err(E2eError::Check("through the agent: no event observation reached Langfuse".into()));
    }
    println!(
        "e2e-collector: through the agent: {} example run(s), {} trace(s), {expected} span(s): all at the \
         Langfuse-contract receiver ({requests} request(s), contract kept, {events} of them event observations) \
         and whole in Jaeger without the event observations, their events as logs ({:.1} s)",
        runs.len(),
        traces.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Scenario 2: the Langfuse-contract receiver is down for 10 s, the agent
/// restarts meanwhile, and nothing is lost.
fn langfuse_outage(setup: &Setup, jaeger: &Jaeger) -> Result<(), E2eError> {
    let started = Instant::now();
    let mut langfuse = LangfuseContract::start()?;
    let ports = CollectorPorts::free()?;
    let env = forwarding_env(setup, &langfuse, jaeger, "outage-queue");
    let agent = start_collector(setup, "outage-agent", "agent.yaml", &ports, env.clone())?;
    let mut runs = vec![setup.examples.run("quickstart", &ports.grpc_url(), "grpc", "e2e-before-outage")?];
    expect_all_delivered(&langfuse, total(&runs), "before the outage")?;

    langfuse.go_down();
    let down_at = Instant::now();
    runs.push(setup.examples.run("comprehensive_async_example", &ports.grpc_url(), "grpc", "e2e-during-outage")?);
    runs.push(setup.examples.run("quickstart", &ports.grpc_url(), "grpc", "e2e-during-outage")?);
    // Restart the agent while Langfuse is down: what it holds for Langfuse
    // must survive on disk (a memory queue would lose it here).
    agent.stop()?;
    let agent = start_collector(setup, "outage-agent-restarted", "agent.yaml", &ports, env)?;
    runs.push(setup.examples.run("quickstart", &ports.grpc_url(), "grpc", "e2e-during-outage")?);
    let held_during_outage = langfuse.distinct_spans();
    thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    let outage = down_at.elapsed();
    langfuse.come_back()?;

    let expected = total(&runs);
    expect_all_delivered(&langfuse, expected, "after the outage")?;
    langfuse.check_requests()?;
    let traces = langfuse.traces();
    expect_whole_in_jaeger(jaeger, &traces)?;
    let duplicates = langfuse.spans().len() - expected;
    agent.stop()?;
    println!(
        "e2e-collector: Langfuse outage: down {:.1} s with an agent restart in between; {} of {expected} span(s) had \
         arrived before the outage, all {expected} after it ({} trace(s), whole in Jaeger; {duplicates} duplicate \
         delivery(ies)) ({:.1} s)",
        outage.as_secs_f64(),
        held_during_outage,
        traces.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Scenario 3: a load-balancing agent in front of two gateways.
fn scale_out(setup: &Setup, jaeger: &Jaeger) -> Result<(), E2eError> {
    /// Enough traces that both gateways get some: with two gateways
    /// sharing the hash ring, all 24 traces landing on one gateway has a
    /// probability below one in a million.
    const QUICKSTART_RUNS: usize = 12;
    const COMPREHENSIVE_RUNS: usize = 3;

    let started = Instant::now();
    let (langfuse_1, langfuse_2) = (LangfuseContract::start()?, LangfuseContract::start()?);
    let (ports_1, ports_2, agent_ports) = (CollectorPorts::free()?, CollectorPorts::free()?, CollectorPorts::free()?);
    let start_gateway = |name: &str, ports: &CollectorPorts, langfuse: &LangfuseContract| {
        let env = forwarding_env(setup, langfuse, jaeger, &format!("{name}-queue"));
        start_collector(setup, name, "gateway.yaml", ports, env)
    };
    let gateway_1 = start_gateway("gateway-1", &ports_1, &langfuse_1)?;
    let gateway_2 = start_gateway("gateway-2", &ports_2, &langfuse_2)?;
    let agent = start_collector(
        setup,
        "loadbalancing-agent",
        "agent-loadbalancing.yaml",
        &agent_ports,
        vec![("GATEWAY_1".into(), ports_1.grpc.to_string()), ("GATEWAY_2".into(), ports_2.grpc.to_string())],
    )?;
    let mut runs = Vec::new();
    for _ in 0..QUICKSTART_RUNS {
        runs.push(setup.examples.run("quickstart", &agent_ports.grpc_url(), "grpc", "e2e-scale-out")?);
    }
    for _ in 0..COMPREHENSIVE_RUNS {
        runs.push(setup.examples.run(
            "comprehensive_async_example",
            &agent_ports.grpc_url(),
            "grpc",
            "e2e-scale-out",
        )?);
    }
    let expected = total(&runs);
    let deadline = Instant::now() + DELIVERY_TIMEOUT;
    while langfuse_1.distinct_spans() + langfuse_2.distinct_spans() < expected && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(250));
    }
    let (traces_1, traces_2) = (langfuse_1.traces(), langfuse_2.traces());
    let held: usize = traces_1.iter().chain(&traces_2).map(|t| t.spans.len()).sum();
    if held != expected {
        return Err(E2eError::Check(format!(
            "scale-out: the two gateways delivered {held} distinct span(s); the examples exported {expected}"
        )));
    }
    let ids_1: BTreeSet<&str> = traces_1.iter().map(|t| t.trace_id.as_str()).collect();
    if let Some(split) = traces_2.iter().find(|t| ids_1.contains(t.trace_id.as_str())) {
        return Err(E2eError::Check(format!("scale-out: trace {} arrived at both gateways", split.trace_id)));
    }
    if traces_1.is_empty() || traces_2.is_empty() {
        return Err(E2eError::Check(format!(
            "scale-out: one gateway got every trace ({} and {}): the agent did not balance",
            traces_1.len(),
            traces_2.len()
        )));
    }
    langfuse_1.check_requests()?;
    langfuse_2.check_requests()?;
    expect_whole_in_jaeger(jaeger, &traces_1)?;
    expect_whole_in_jaeger(jaeger, &traces_2)?;
    agent.stop()?;
    gateway_1.stop()?;
    gateway_2.stop()?;
    println!(
        "e2e-collector: scale-out: {} trace(s), {expected} span(s) through the load-balancing agent; gateway 1 got {} \
         trace(s), gateway 2 got {}, each trace whole at exactly one ({:.1} s)",
        traces_1.len() + traces_2.len(),
        traces_1.len(),
        traces_2.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

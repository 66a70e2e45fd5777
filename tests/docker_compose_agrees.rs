//! `docker-compose.yml`, `.env.example`, `collector-config/*.yaml`,
//! `collector/builder-config.yaml` and the README describe one local setup;
//! nothing runs them together in CI (no Docker daemon), so this test checks
//! that they agree: the variables each reads and their defaults, the Langfuse
//! keys, the mounted files, the collector release, the published ports and
//! which services are default and which are in the `langfuse` profile.
//!
//! Each check returns the disagreements it finds, each naming the file and
//! the thing that disagrees; the `*_notices_*` tests feed each check a broken
//! copy of the real files to show that it can fail.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_norway::{Mapping, Value};

/// The services `docker compose up` starts with no profile.
const DEFAULT_SERVICES: [&str; 2] = ["otel-collector", "jaeger"];
/// The services of `--profile langfuse`: Langfuse v3+ and its stores.
const LANGFUSE_SERVICES: [&str; 6] = ["langfuse-web", "langfuse-worker", "postgres", "clickhouse", "redis", "minio"];
/// Host ports the README's compose instructions send people to, and the
/// service that must publish each.
const README_PORTS: [(u16, &str); 4] =
    [(4317, "otel-collector"), (4318, "otel-collector"), (16686, "jaeger"), (3000, "langfuse-web")];
/// Strings the README's compose instructions must contain.
const README_STRINGS: [&str; 3] = ["docker compose up", "localhost:16686", "--profile langfuse"];
/// Variables in `.env.example` that the application reads rather than
/// compose or the collector (sending straight to Langfuse).
const APP_VARIABLES: [&str; 2] = ["LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"];
const COLLECTOR: &str = "otel-collector";
const COLLECTOR_IMAGE: &str = "otel/opentelemetry-collector-contrib";

/// The files, as text, so that tests can break a copy.
#[derive(Clone)]
struct Files {
    root: PathBuf,
    compose: String,
    env_example: String,
    /// File name (e.g. `agent.yaml`) → text.
    configs: BTreeMap<String, String>,
    builder: String,
    readme: String,
    /// The source that reads the tracing crate's environment variables.
    app_env_source: String,
}

impl Files {
    fn load() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let read =
            |path: &str| std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
        let mut configs = BTreeMap::new();
        for entry in std::fs::read_dir(root.join("collector-config")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                configs.insert(name, std::fs::read_to_string(&path).unwrap());
            }
        }
        assert!(configs.contains_key("agent.yaml"), "collector-config/agent.yaml is missing");
        Self {
            compose: read("docker-compose.yml"),
            env_example: read(".env.example"),
            configs,
            builder: read("collector/builder-config.yaml"),
            readme: read("README.md"),
            app_env_source: read("crates/pocketflow-tracing/src/env.rs"),
            root,
        }
    }

    fn compose(&self) -> Value {
        yaml(&self.compose, "docker-compose.yml")
    }

    fn env(&self) -> EnvExample {
        EnvExample::parse(&self.env_example)
    }
}

/// Parses YAML with anchors resolved and `<<` merge keys applied, as
/// docker compose reads it.
fn yaml(text: &str, what: &str) -> Value {
    let mut value: Value = serde_norway::from_str(text).unwrap_or_else(|e| panic!("{what} is not YAML: {e}"));
    value.apply_merge().unwrap_or_else(|e| panic!("{what}: bad merge key: {e}"));
    value
}

/// `.env.example`: `NAME=value` lines, which docker compose reads, and
/// `#NAME=value` lines, variables only a collector config reads, with that
/// config's default.
#[derive(Debug, Default)]
struct EnvExample {
    set: BTreeMap<String, String>,
    commented: BTreeMap<String, String>,
    not_understood: Vec<String>,
}

impl EnvExample {
    fn parse(text: &str) -> Self {
        let mut env = Self::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            let (target, body) = match line.strip_prefix('#') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_uppercase()) => (&mut env.commented, rest),
                Some(_) => continue,
                None if line.trim().is_empty() => continue,
                None => (&mut env.set, line),
            };
            match body.split_once('=') {
                Some((name, value)) if is_name(name) => {
                    if target.insert(name.to_owned(), value.to_owned()).is_some() {
                        env.not_understood.push(format!("line {}: {name} is listed twice", n + 1));
                    }
                }
                _ => env.not_understood.push(format!("line {}: {line:?}", n + 1)),
            }
        }
        env
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.set.get(name).or_else(|| self.commented.get(name)).map(String::as_str)
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// One `${NAME}`, `${NAME:-default}` or (collector) `${env:NAME:-default}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    name: String,
    default: Option<String>,
}

/// The variable references in one string.
fn references(s: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        // `$${` is compose's escape for a literal `${`.
        let escaped = rest[..start].ends_with('$');
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let inner = &after[..end];
        rest = &after[end + 1..];
        if escaped {
            continue;
        }
        let inner = inner.strip_prefix("env:").unwrap_or(inner);
        let name_len = inner.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(inner.len());
        let (name, tail) = inner.split_at(name_len);
        let default = tail.strip_prefix(":-").or_else(|| tail.strip_prefix('-')).map(str::to_owned);
        found.push(Reference { name: name.to_owned(), default });
    }
    found
}

/// Every string scalar in a YAML value (keys and values), so that comments,
/// which neither compose nor the collector interpolates, are left out.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => {
            for (k, v) in map {
                strings(k, out);
                strings(v, out);
            }
        }
        Value::Tagged(tagged) => strings(&tagged.value, out),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn references_in(value: &Value) -> Vec<Reference> {
    let mut all = Vec::new();
    strings(value, &mut all);
    all.iter().flat_map(|s| references(s)).collect()
}

fn services(compose: &Value) -> &Mapping {
    compose.get("services").and_then(Value::as_mapping).expect("docker-compose.yml has no services")
}

fn service<'a>(compose: &'a Value, name: &str) -> Option<&'a Value> {
    services(compose).get(name)
}

/// A service's environment as name → value (map or `NAME=value` list form).
fn environment(service: &Value) -> BTreeMap<String, String> {
    match service.get("environment") {
        Some(Value::Mapping(map)) => map
            .iter()
            .filter_map(|(k, v)| {
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => serde_norway::to_string(other).ok()?.trim().to_owned(),
                };
                Some((k.as_str()?.to_owned(), value))
            })
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.split_once('=').map_or((s.to_owned(), String::new()), |(k, v)| (k.to_owned(), v.to_owned())))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The host ports a service publishes (short `[ip:]host:container[/proto]`
/// or long `{published: …}` syntax); a bare container port publishes none.
fn published_ports(service: &Value) -> Vec<u16> {
    let Some(ports) = service.get("ports").and_then(Value::as_sequence) else { return Vec::new() };
    ports
        .iter()
        .filter_map(|port| match port {
            Value::String(s) => {
                let s = s.split('/').next().unwrap_or(s);
                let parts: Vec<&str> = s.split(':').collect();
                (parts.len() >= 2).then(|| parts[parts.len() - 2].parse().ok()).flatten()
            }
            Value::Mapping(_) => match port.get("published") {
                Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                Some(Value::String(s)) => s.parse().ok(),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn profiles(service: &Value) -> Vec<String> {
    service
        .get("profiles")
        .and_then(Value::as_sequence)
        .map(|p| p.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn report(problems: &[String]) {
    assert!(problems.is_empty(), "{} disagreement(s):\n  {}", problems.len(), problems.join("\n  "));
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

/// Every variable compose or a collector config reads is in `.env.example`,
/// set if compose reads it, commented out if only a config does; every
/// variable there is read by something; defaults everywhere equal the
/// `.env.example` values; and what a config needs with no default, the
/// collector service passes to it.
fn check_variables(files: &Files) -> Vec<String> {
    let mut problems = Vec::new();
    let env = files.env();
    problems.extend(env.not_understood.iter().map(|l| format!(".env.example: not NAME=value or #NAME=value: {l}")));

    let compose = files.compose();
    let compose_refs = references_in(&compose);
    let compose_names: BTreeSet<&str> = compose_refs.iter().map(|r| r.name.as_str()).collect();
    let mut config_names = BTreeSet::new();

    for r in &compose_refs {
        if !env.set.contains_key(&r.name) {
            let how = if env.commented.contains_key(&r.name) { "only comments out" } else { "does not list" };
            problems.push(format!("docker-compose.yml reads ${{{}}}, which .env.example {how}", r.name));
        }
        match (&r.default, env.value(&r.name)) {
            (None, _) => problems.push(format!(
                "docker-compose.yml reads ${{{}}} with no default, so it does not run without a .env",
                r.name
            )),
            (Some(default), Some(value)) if default != value => problems.push(format!(
                "docker-compose.yml's default for {} is {default:?}, .env.example's value is {value:?}",
                r.name
            )),
            _ => {}
        }
    }

    let collector_env = service(&compose, COLLECTOR).map(environment).unwrap_or_default();
    for (file, text) in &files.configs {
        let config = yaml(text, file);
        for r in references_in(&config) {
            config_names.insert(r.name.clone());
            match env.value(&r.name) {
                None => {
                    problems.push(format!("collector-config/{file} reads {}, which .env.example does not list", r.name))
                }
                Some(value) => {
                    if !compose_names.contains(r.name.as_str()) && env.set.contains_key(&r.name) {
                        problems.push(format!(
                            ".env.example sets {} but docker-compose.yml does not pass it on; only collector-config/{file} reads it, so write it as #{}={value}",
                            r.name, r.name
                        ));
                    }
                    if let Some(default) = &r.default
                        && default != value
                    {
                        problems.push(format!(
                            "collector-config/{file}'s default for {} is {default:?}, .env.example's value is {value:?}",
                            r.name
                        ));
                    }
                }
            }
            if r.default.is_none() && !collector_env.contains_key(&r.name) {
                problems.push(format!(
                    "collector-config/{file} needs {} (it has no default) but service {COLLECTOR} does not set it",
                    r.name
                ));
            }
        }
    }

    for name in env.set.keys().chain(env.commented.keys()) {
        let read_by_app =
            APP_VARIABLES.contains(&name.as_str()) && files.app_env_source.contains(&format!("\"{name}\""));
        if !compose_names.contains(name.as_str()) && !config_names.contains(name) && !read_by_app {
            problems.push(format!(
                ".env.example lists {name}, which neither docker-compose.yml, collector-config/*.yaml nor pocketflow-tracing reads"
            ));
        }
    }
    // Anchors repeat a value (langfuse-web merges langfuse-worker's
    // environment): say each disagreement once.
    let mut seen = BTreeSet::new();
    problems.retain(|p| seen.insert(p.clone()));
    problems
}

/// The collector's Langfuse credentials are those of the project the
/// `langfuse` profile creates, in `.env.example` and in compose's defaults.
fn check_langfuse_keys(files: &Files) -> Vec<String> {
    let mut problems = Vec::new();
    let env = files.env();
    let get = |name: &str| env.set.get(name).cloned().unwrap_or_default();
    for (init, key) in [
        ("LANGFUSE_INIT_PROJECT_PUBLIC_KEY", "LANGFUSE_PUBLIC_KEY"),
        ("LANGFUSE_INIT_PROJECT_SECRET_KEY", "LANGFUSE_SECRET_KEY"),
    ] {
        if get(init).is_empty() || get(init) != get(key) {
            problems.push(format!(".env.example: {init}={:?} but {key}={:?}", get(init), get(key)));
        }
    }
    let expected = BASE64.encode(format!("{}:{}", get("LANGFUSE_PUBLIC_KEY"), get("LANGFUSE_SECRET_KEY")));
    if get("LANGFUSE_AUTH") != expected {
        problems.push(format!(
            ".env.example: LANGFUSE_AUTH={:?} is not base64 of LANGFUSE_PUBLIC_KEY:LANGFUSE_SECRET_KEY ({expected:?})",
            get("LANGFUSE_AUTH")
        ));
    }

    let compose = files.compose();
    let defaults: BTreeMap<String, String> =
        references_in(&compose).into_iter().filter_map(|r| Some((r.name, r.default?))).collect();
    let default = |name: &str| defaults.get(name).cloned().unwrap_or_default();
    let expected = BASE64.encode(format!(
        "{}:{}",
        default("LANGFUSE_INIT_PROJECT_PUBLIC_KEY"),
        default("LANGFUSE_INIT_PROJECT_SECRET_KEY")
    ));
    if default("LANGFUSE_AUTH") != expected {
        problems.push(format!(
            "docker-compose.yml: the default LANGFUSE_AUTH {:?} is not base64 of the default init project keys ({expected:?})",
            default("LANGFUSE_AUTH")
        ));
    }
    problems
}

/// Bind-mounted paths exist, and the collector's `--config` file (at its
/// default and at `.env.example`'s `COLLECTOR_CONFIG`) is in the mounted
/// folder.
fn check_mounted_files(files: &Files, root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let compose = files.compose();
    let env = files.env();
    let mut mounts = BTreeMap::new(); // container path → host path
    for (name, svc) in services(&compose) {
        let name = name.as_str().unwrap_or_default();
        for volume in svc.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            let (source, target) = match volume {
                Value::String(s) => {
                    let mut parts = s.split(':');
                    (parts.next().unwrap_or_default().to_owned(), parts.next().unwrap_or_default().to_owned())
                }
                other => (
                    other.get("source").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    other.get("target").and_then(Value::as_str).unwrap_or_default().to_owned(),
                ),
            };
            if source.starts_with('.') || source.starts_with('/') {
                if !root.join(&source).exists() {
                    problems.push(format!("docker-compose.yml: service {name} mounts {source}, which does not exist"));
                }
                if name == COLLECTOR {
                    mounts.insert(target, source);
                }
            }
        }
    }

    let collector = service(&compose, COLLECTOR);
    let mut command = Vec::new();
    if let Some(c) = collector.and_then(|s| s.get("command")) {
        strings(c, &mut command);
    }
    let Some(config_arg) = command.iter().find_map(|a| a.strip_prefix("--config=")) else {
        problems.push(format!("docker-compose.yml: service {COLLECTOR} has no --config= argument"));
        return problems;
    };
    let mut choices = vec![("its default", config_arg.to_owned())];
    for r in references(config_arg) {
        let placeholder = match &r.default {
            Some(d) => format!("${{{}:-{d}}}", r.name),
            None => format!("${{{}}}", r.name),
        };
        choices = vec![("its default", config_arg.replace(&placeholder, r.default.as_deref().unwrap_or_default()))];
        if let Some(value) = env.value(&r.name) {
            choices.push(("COLLECTOR_CONFIG in .env.example", config_arg.replace(&placeholder, value)));
        }
    }
    for (which, path) in choices {
        let host = mounts.iter().find_map(|(target, source)| {
            path.strip_prefix(&format!("{target}/")).map(|rest| Path::new(source).join(rest))
        });
        match host {
            None => problems.push(format!(
                "docker-compose.yml: the collector's --config {path} ({which}) is in no folder it mounts"
            )),
            Some(host) if !root.join(&host).is_file() => problems.push(format!(
                "docker-compose.yml: the collector's --config {path} ({which}) is {}, which does not exist",
                host.display()
            )),
            Some(_) => {}
        }
    }
    problems
}

/// The collector image is the release `collector/builder-config.yaml` builds.
fn check_collector_release(files: &Files) -> Vec<String> {
    let builder = yaml(&files.builder, "collector/builder-config.yaml");
    let version = builder.get("dist").and_then(|d| d.get("version")).and_then(Value::as_str).unwrap_or_default();
    let compose = files.compose();
    let image = service(&compose, COLLECTOR).and_then(|s| s.get("image")).and_then(Value::as_str).unwrap_or_default();
    match image.split_once(':') {
        Some((name, tag)) if name == COLLECTOR_IMAGE && tag == version => Vec::new(),
        _ => vec![format!(
            "docker-compose.yml: service {COLLECTOR} runs image {image:?}, but collector/builder-config.yaml builds version {version:?} (expected {COLLECTOR_IMAGE}:{version})"
        )],
    }
}

/// The README's compose instructions are there, and each port they send
/// people to is published by the service that serves it, and by no other.
fn check_readme_ports(files: &Files) -> Vec<String> {
    let mut problems = Vec::new();
    for s in README_STRINGS {
        if !files.readme.contains(s) {
            problems.push(format!("README.md does not mention `{s}`"));
        }
    }
    let compose = files.compose();
    let mut publishers: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    for (name, svc) in services(&compose) {
        for port in published_ports(svc) {
            publishers.entry(port).or_default().push(name.as_str().unwrap_or_default().to_owned());
        }
    }
    for (port, expected) in README_PORTS {
        if !files.readme.contains(&format!("localhost:{port}")) {
            problems.push(format!("README.md does not mention localhost:{port} (served by {expected})"));
        }
        let by = publishers.get(&port).cloned().unwrap_or_default();
        if by != [expected] {
            problems.push(format!(
                "docker-compose.yml: host port {port} should be published by {expected} alone, but is by {by:?}"
            ));
        }
    }
    problems
}

/// `docker compose up` starts the collector and Jaeger only; the Langfuse
/// services are all in profile `langfuse`, and no default service waits for
/// one of them.
fn check_profiles(files: &Files) -> Vec<String> {
    let mut problems = Vec::new();
    let compose = files.compose();
    let mut defaults = BTreeSet::new();
    for (name, svc) in services(&compose) {
        let name = name.as_str().unwrap_or_default();
        let profiles = profiles(svc);
        if LANGFUSE_SERVICES.contains(&name) {
            if profiles != ["langfuse"] {
                problems.push(format!("docker-compose.yml: service {name} has profiles {profiles:?}, not [langfuse]"));
            }
        } else if !DEFAULT_SERVICES.contains(&name) {
            problems.push(format!(
                "docker-compose.yml: service {name} is neither a default service ({DEFAULT_SERVICES:?}) nor a Langfuse one"
            ));
        } else if !profiles.is_empty() {
            problems.push(format!("docker-compose.yml: default service {name} has profiles {profiles:?}"));
        } else {
            defaults.insert(name);
            let mut deps = Vec::new();
            match svc.get("depends_on") {
                Some(Value::Mapping(map)) => deps.extend(map.keys().filter_map(Value::as_str)),
                Some(Value::Sequence(list)) => deps.extend(list.iter().filter_map(Value::as_str)),
                _ => {}
            }
            for dep in deps.into_iter().filter(|d| LANGFUSE_SERVICES.contains(d)) {
                problems.push(format!(
                    "docker-compose.yml: default service {name} depends on {dep}, which only the langfuse profile starts"
                ));
            }
        }
    }
    for name in DEFAULT_SERVICES.iter().chain(&LANGFUSE_SERVICES) {
        if service(&compose, name).is_none() {
            problems.push(format!("docker-compose.yml has no service {name}"));
        }
    }
    problems
}

// ---------------------------------------------------------------------------
// The real files agree
// ---------------------------------------------------------------------------

#[test]
fn variables_agree() {
    report(&check_variables(&Files::load()));
}

#[test]
fn langfuse_keys_agree() {
    report(&check_langfuse_keys(&Files::load()));
}

#[test]
fn mounted_config_files_exist() {
    let files = Files::load();
    report(&check_mounted_files(&files, &files.root));
}

#[test]
fn collector_image_is_the_built_release() {
    report(&check_collector_release(&Files::load()));
}

#[test]
fn readme_ports_are_published_by_their_services() {
    report(&check_readme_ports(&Files::load()));
}

#[test]
fn default_services_are_collector_and_jaeger_and_langfuse_is_a_profile() {
    report(&check_profiles(&Files::load()));
}

// ---------------------------------------------------------------------------
// Each check notices a broken copy
// ---------------------------------------------------------------------------

/// Replaces `from` (which must occur) in one of the texts.
fn broken(files: &Files, pick: impl Fn(&mut Files) -> &mut String, from: &str, to: &str) -> Files {
    let mut copy = files.clone();
    let text = pick(&mut copy);
    assert!(text.contains(from), "the real file no longer contains {from:?}: update this test");
    *text = text.replacen(from, to, 1);
    copy
}

fn assert_notices(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a disagreement mentioning {needle:?}, got {problems:#?}"
    );
}

#[test]
fn variables_check_notices_missing_stale_and_differing_variables() {
    let files = Files::load();
    // A compose variable missing from .env.example.
    let f = broken(&files, |f| &mut f.env_example, "\nREDIS_AUTH=", "\nREDIS_AUTH_OLD=");
    let problems = check_variables(&f);
    assert_notices(&problems, "docker-compose.yml reads ${REDIS_AUTH}, which .env.example does not list");
    assert_notices(&problems, ".env.example lists REDIS_AUTH_OLD");
    // A config-only variable missing.
    let f = broken(&files, |f| &mut f.env_example, "#GATEWAY_2=", "#GATEWAY_3=");
    assert_notices(&check_variables(&f), "agent-loadbalancing.yaml reads GATEWAY_2");
    // A config-only variable set as if compose read it.
    let f = broken(&files, |f| &mut f.env_example, "#GATEWAY_1=", "GATEWAY_1=");
    assert_notices(&check_variables(&f), ".env.example sets GATEWAY_1 but docker-compose.yml does not pass it on");
    // Defaults that differ.
    let f =
        broken(&files, |f| &mut f.env_example, "JAEGER_OTLP_ENDPOINT=jaeger:4317", "JAEGER_OTLP_ENDPOINT=jaeger:14317");
    let problems = check_variables(&f);
    assert_notices(&problems, "docker-compose.yml's default for JAEGER_OTLP_ENDPOINT");
    assert_notices(&problems, "jaeger-only.yaml's default for JAEGER_OTLP_ENDPOINT");
    // A variable with no default, and a config need the collector does not pass.
    let f = broken(&files, |f| &mut f.compose, "${LANGFUSE_HOST:-http://langfuse-web:3000}", "${LANGFUSE_HOST}");
    assert_notices(&check_variables(&f), "reads ${LANGFUSE_HOST} with no default");
    let f = broken(&files, |f| &mut f.compose, "      LANGFUSE_AUTH: ", "      LANGFUSE_AUTH_UNUSED: ");
    assert_notices(
        &check_variables(&f),
        "agent.yaml needs LANGFUSE_AUTH (it has no default) but service otel-collector",
    );
    // A line that is not a variable.
    let f = broken(&files, |f| &mut f.env_example, "\nSALT=", "\nSALT ");
    assert_notices(&check_variables(&f), ".env.example: not NAME=value");
}

#[test]
fn langfuse_keys_check_notices_mismatched_keys() {
    let files = Files::load();
    let f = broken(&files, |f| &mut f.env_example, "LANGFUSE_SECRET_KEY=sk-lf-", "LANGFUSE_SECRET_KEY=sk-lf-x");
    let problems = check_langfuse_keys(&f);
    assert_notices(&problems, "LANGFUSE_INIT_PROJECT_SECRET_KEY=");
    assert_notices(&problems, "LANGFUSE_AUTH=");
    let f = broken(
        &files,
        |f| &mut f.compose,
        "${LANGFUSE_INIT_PROJECT_PUBLIC_KEY:-pk-lf-",
        "${LANGFUSE_INIT_PROJECT_PUBLIC_KEY:-pk-lf-x",
    );
    assert_notices(&check_langfuse_keys(&f), "docker-compose.yml: the default LANGFUSE_AUTH");
}

#[test]
fn mounted_files_check_notices_a_missing_config() {
    let files = Files::load();
    let f = broken(&files, |f| &mut f.compose, "${COLLECTOR_CONFIG:-agent.yaml}", "${COLLECTOR_CONFIG:-agent-v2.yaml}");
    assert_notices(&check_mounted_files(&f, &f.root), "--config /etc/otelcol/agent-v2.yaml (its default)");
    let f = broken(&files, |f| &mut f.env_example, "COLLECTOR_CONFIG=agent.yaml", "COLLECTOR_CONFIG=nope.yaml");
    assert_notices(&check_mounted_files(&f, &f.root), "(COLLECTOR_CONFIG in .env.example)");
    let f = broken(&files, |f| &mut f.compose, "./collector-config:/etc/otelcol", "./collector-configs:/etc/otelcol");
    assert_notices(&check_mounted_files(&f, &f.root), "mounts ./collector-configs, which does not exist");
}

#[test]
fn collector_release_check_notices_another_tag() {
    let files = Files::load();
    let f =
        broken(&files, |f| &mut f.compose, "opentelemetry-collector-contrib:", "opentelemetry-collector-contrib:0.1");
    assert_notices(&check_collector_release(&f), "runs image \"otel/opentelemetry-collector-contrib:0.1");
}

#[test]
fn readme_ports_check_notices_moved_ports() {
    let files = Files::load();
    let f = broken(&files, |f| &mut f.compose, "\"16686:16686\"", "\"16687:16686\"");
    assert_notices(&check_readme_ports(&f), "host port 16686 should be published by jaeger alone, but is by []");
    // Jaeger publishing OTLP on the host would clash with the collector.
    let f = broken(&files, |f| &mut f.compose, "\"16686:16686\"", "\"16686:16686\"\n      - 4317:4317");
    assert_notices(&check_readme_ports(&f), "host port 4317 should be published by otel-collector alone");
    let f = broken(&files, |f| &mut f.readme, "--profile langfuse", "--profile lf");
    assert_notices(&check_readme_ports(&f), "README.md does not mention `--profile langfuse`");
}

#[test]
fn profiles_check_notices_a_langfuse_service_started_by_default() {
    let files = Files::load();
    let f = broken(&files, |f| &mut f.compose, "docker.io/redis:7\n    profiles: [langfuse]", "docker.io/redis:7");
    assert_notices(&check_profiles(&f), "service redis has profiles [], not [langfuse]");
    let f = broken(
        &files,
        |f| &mut f.compose,
        "    depends_on:\n      - jaeger",
        "    depends_on:\n      - jaeger\n      - langfuse-web",
    );
    assert_notices(&check_profiles(&f), "default service otel-collector depends on langfuse-web");
    let f = broken(&files, |f| &mut f.compose, "\n  jaeger:\n", "\n  jaeger:\n    profiles: [tracing]\n");
    assert_notices(&check_profiles(&f), "default service jaeger has profiles");
}

#[test]
fn references_are_read_with_their_defaults() {
    let found = references("a ${A} b ${env:B:-x:y} c $${C} d ${D-z}");
    let expected = [
        Reference { name: "A".into(), default: None },
        Reference { name: "B".into(), default: Some("x:y".into()) },
        Reference { name: "D".into(), default: Some("z".into()) },
    ];
    assert_eq!(found, expected);
}

//! The `#[trace_flow]` attribute for [`pocketflow`]: the Rust form of the
//! Python `pocketflow_tracing` decorator `@trace_flow(flow_name=…,
//! session_id=…, user_id=…)`.
//!
//! Use it through `pocketflow`, which re-exports it (default feature
//! `macros`): `use pocketflow::trace_flow;`. The runnable examples are in
//! the docs of that re-export and in `pocketflow`'s
//! `tests/trace_flow_attribute.rs`.
//!
//! In Python the decorator goes on a flow *class*, whose `__init__` builds
//! the flow. In Rust a flow is built by a function, so the attribute goes on
//! that function: it runs the body as written, then names the flow it
//! returns and gives it run options, through `pocketflow::TraceFlow`.
//!
//! ```ignore
//! use pocketflow::{Flow, trace_flow};
//!
//! // Python:
//! //   @trace_flow(flow_name="DataProcessingFlow")
//! //   class DataProcessingFlow(Flow):
//! //       def __init__(self):
//! //           node1 = DataProcessingNode(); node2 = OutputNode()
//! //           node1.next(node2)
//! //           super().__init__(start=node1)
//! #[trace_flow(session_id = "chat-42", user_id = "ada", tags = ["beta"], metadata(plan = "pro"))]
//! fn data_processing_flow() -> Flow {
//!     let mut flow = Flow::new();
//!     let node1 = flow.start(DataProcessingNode);
//!     let node2 = flow.add(OutputNode);
//!     flow.link(node1 >> node2);
//!     flow
//! }
//!
//! let flow = data_processing_flow(); // named "DataProcessingFlow"
//! ```
//!
//! # From the Python decorator
//!
//! | Python `@trace_flow(...)` | Rust `#[trace_flow(...)]` |
//! |---|---|
//! | on a flow class; `__init__` builds the flow | on a function (sync or `async`, any visibility, generic or not) that returns a flow |
//! | `flow_name="…"`, default: the class name | `flow_name = "…"`, default: the function's name in UpperCamelCase (`fn data_processing_flow` → `DataProcessingFlow`) |
//! | `session_id="…"`, `user_id="…"` | the same; they become the flow's `RunOptions` |
//! | — | `tags = ["…", …]`, `metadata(key = value, …)` (string, integer, float or bool literals) |
//! | `config=TracingConfig(…)` | no counterpart: tracing is configured once, where the subscriber is built (`pocketflow_tracing::TracingConfig`) |
//! | wraps `run`/`run_async` and patches every node's hooks to record a trace and spans | nothing to wrap: every run of every flow already makes a `flow` span with a `node` span per step; the attribute only names the flow and sets its options |
//!
//! The options are laid *over* the options the body set
//! (`RunOptions::over`): a `session_id` in
//! the attribute wins over one set in the body, tags and metadata are
//! merged. Options given to a single run (`run_with`) are laid over both.
//! The attribute's name always wins over a name set in the body (as the
//! Python decorator's does); to keep the body's, don't use the attribute.
//!
//! # Expansion
//!
//! ```ignore
//! #[trace_flow(session_id = "chat-42")]
//! fn data_processing_flow() -> Flow { /* body */ }
//! ```
//! becomes, in effect,
//! ```ignore
//! fn data_processing_flow() -> Flow {
//!     let flow: Flow = (move || -> Flow { /* body */ })();
//!     let flow = ::pocketflow::TraceFlow::with_name(flow, "DataProcessingFlow");
//!     let options = ::pocketflow::RunOptions::new()
//!         .session_id("chat-42")
//!         .over(::pocketflow::TraceFlow::run_options(&flow));
//!     let flow = ::pocketflow::TraceFlow::with_run_options(flow, options);
//!     flow
//! }
//! ```
//! (an `async fn`'s body runs as `async move { /* body */ }.await`). The
//! return type must implement `TraceFlow` (every flow kind does); one that
//! doesn't, a `Result<Flow, E>` included, is reported on the return type.
//! Mistakes in the arguments (an unknown or repeated argument, a value of
//! the wrong kind) are compile errors pointing at them.
//!
//! [`pocketflow`]: https://docs.rs/pocketflow

mod args;
mod expand;

/// Names the flow a function builds and sets its run options: the Rust form
/// of Python's `@trace_flow(flow_name=…, session_id=…, user_id=…)`.
///
/// ```text
/// #[trace_flow]
/// #[trace_flow(
///     flow_name = "DataProcessingFlow",       // default: the fn name in UpperCamelCase
///     session_id = "chat-42",
///     user_id = "ada",
///     tags = ["beta", "checkout"],
///     metadata(plan = "pro", retries = 3, ratio = 0.5, internal = true),
/// )]
/// ```
///
/// Every argument is optional and given at most once. Metadata keys are
/// identifiers or string literals (`metadata("model-id" = "x")`); values
/// are string, integer (as `i64`, or `u64` above `i64::MAX`), float (`f64`)
/// or bool literals.
///
/// The function may be sync or `async`, have any visibility and generics,
/// and be a method; it must return a flow (a type implementing
/// `pocketflow::TraceFlow`). The body runs as written; its result is then
/// renamed with `TraceFlow::with_name`, and, when any of `session_id`,
/// `user_id`, `tags`, `metadata` is given, given
/// `RunOptions::new()` with them `.over(flow.run_options())` with
/// `TraceFlow::with_run_options`, so options the body set are kept unless
/// the attribute overrides them.
///
/// See the crate docs for the mapping from the Python decorator, and
/// `pocketflow::trace_flow` for runnable examples.
#[proc_macro_attribute]
pub fn trace_flow(args: proc_macro::TokenStream, item: proc_macro::TokenStream) -> proc_macro::TokenStream {
    expand::trace_flow(args.into(), item.into()).into()
}

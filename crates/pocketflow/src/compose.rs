//! Flows run together under one `composition` span: in parallel, nested, or
//! as a batch. The Rust form of the Python package's
//! `AsyncFlowCompositionManager` (`execute_parallel_flows`,
//! `execute_nested_flow`, `execute_batch_flows`).
//!
//! A composition takes futures, not flows: anything that resolves to
//! `Result<T, FlowError>`, typically `flow.run(&shared)`. So flows of
//! different types, over different shared stores, compose freely, and a sync
//! flow joins in as `async { flow.run(&shared) }`.
//!
//! Every composition runs inside one `composition` span (see
//! `docs/span-schema.md`): the futures are polled inside it, so the `flow`
//! span each of them opens is the composition's child. The span reports its
//! lifecycle like a flow's, and when the composition's future is dropped
//! before it finished, it and every flow span under it end `cancelled`.
//!
//! Unlike the engine's parallel batches, a composition never cancels a flow
//! because another failed: like Python's `gather(return_exceptions=True)`,
//! every flow runs to its end and each result is returned in input order.
//! Each result's value is recorded in the span's `output` (so `T` must be
//! `Serialize`; it is serialized only if a subscriber records the field).
//!
//! The flows are polled by the composition's own future, as with
//! `join_all`: they overlap while they wait (on I/O, timers, models), but
//! they do not run on several threads at once. Spawn tasks inside them for
//! CPU-heavy work.
//!
//! ```
//! use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, SharedStore};
//!
//! struct Answer(&'static str);
//! impl AsyncNode for Answer {
//!     type Prep = ();
//!     type Exec = ();
//!     async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> { Ok(()) }
//!     async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> { Ok(()) }
//!     async fn post(&self, _: &Ctx<'_>, _: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
//!         Ok(self.0.into())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let mut yes = AsyncFlow::named("Yes");
//! yes.start(Answer("yes"));
//! let mut no = AsyncFlow::named("No");
//! no.start(Answer("no"));
//! let (a, b) = (SharedStore::new(), SharedStore::new());
//!
//! let results = Composition::parallel("Both").run([yes.run(&a), no.run(&b)]).await;
//! let actions: Vec<String> = results.into_iter().flatten().map(|action| action.to_string()).collect();
//! assert_eq!(actions, ["yes", "no"]);
//! # }
//! ```

use std::borrow::Cow;
use std::future::Future;

use futures_util::stream::{self, Stream, StreamExt};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use tracing::Span;

use crate::current::{self, InFlight, Run, Scope, Site};
use crate::error::FlowError;
use crate::lifecycle::traced;
use crate::options::RunOptions;
use crate::telemetry;

/// Where compositions start: [`Composition::parallel`],
/// [`Composition::nested`] and [`Composition::batch`]. Each returns a
/// builder of its own, so a kind only offers the settings that mean
/// something for it (a nested flow has no concurrency limit).
///
/// ```
/// use pocketflow::{Composition, RunOptions};
///
/// let fan_out = Composition::parallel("FanOut").limit(4);
/// let follow_up = Composition::nested("Analysis").options(RunOptions::new().session_id("s1"));
/// let per_document = Composition::batch("PerDocument").parallel();
/// assert_eq!((fan_out.max_concurrent(), per_document.max_concurrent()), (4, 0));
/// assert_eq!(follow_up.name(), "Analysis");
/// ```
#[derive(Debug)]
pub enum Composition {}

impl Composition {
    /// Flows that run concurrently (Python's `execute_parallel_flows`);
    /// no limit unless [`ParallelComposition::limit`] sets one.
    ///
    /// ```
    /// use pocketflow::Composition;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let squares = (1..=3).map(|n| async move { Ok(n * n) });
    /// let results = Composition::parallel("Squares").run(squares).await;
    /// assert_eq!(results.into_iter().flatten().collect::<Vec<i32>>(), [1, 4, 9]);
    /// # }
    /// ```
    pub fn parallel(name: impl Into<Cow<'static, str>>) -> ParallelComposition {
        ParallelComposition { name: name.into(), limit: 0, options: RunOptions::new() }
    }

    /// One flow run as a step of something larger (Python's
    /// `execute_nested_flow`), so it gets a span of its own to hang from.
    ///
    /// ```
    /// use pocketflow::Composition;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), pocketflow::FlowError> {
    /// let answer = Composition::nested("Follow-up").run(async { Ok(42) }).await?;
    /// assert_eq!(answer, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn nested(name: impl Into<Cow<'static, str>>) -> NestedComposition {
        NestedComposition { name: name.into(), options: RunOptions::new() }
    }

    /// One flow per item, built only when the item starts (Python's
    /// `execute_batch_flows`); one after another unless
    /// [`BatchComposition::parallel`] or [`BatchComposition::limit`] says
    /// otherwise, as Python's `parallel=False` default.
    ///
    /// ```
    /// use pocketflow::Composition;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let doubled = Composition::batch("Double").run([1, 2, 3], |n| async move { Ok(n * 2) }).await;
    /// assert_eq!(doubled.into_iter().flatten().collect::<Vec<i32>>(), [2, 4, 6]);
    /// # }
    /// ```
    pub fn batch(name: impl Into<Cow<'static, str>>) -> BatchComposition {
        BatchComposition { name: name.into(), limit: 1, options: RunOptions::new() }
    }
}

/// Flows run concurrently under one `composition` span of kind `parallel`:
/// built by [`Composition::parallel`].
///
/// The flows may differ in type and shared store: box their futures to one
/// type. A sync flow runs inside an `async` block (on the polling task, so
/// it blocks the others while it runs; keep such work short, or spawn it).
///
/// ```
/// use std::sync::Mutex;
///
/// use futures_util::future::{BoxFuture, FutureExt};
/// use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, Flow, FlowError, Node, SharedStore};
///
/// /// An async search over the usual JSON store.
/// struct Search;
/// impl AsyncNode for Search {
///     type Prep = ();
///     type Exec = ();
///     async fn prep(&self, _: &Ctx<'_>, _: &SharedStore) -> Result<(), BoxError> { Ok(()) }
///     async fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> { Ok(()) }
///     async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: (), _: ()) -> Result<Action, BoxError> {
///         shared.set("hits", 3)?;
///         Ok("searched".into())
///     }
/// }
///
/// /// A sync counter over a store type of its own.
/// #[derive(serde::Serialize, Default)]
/// struct Counter { count: Mutex<u32> }
/// struct Count;
/// impl Node<Counter> for Count {
///     type Prep = ();
///     type Exec = ();
///     fn prep(&self, _: &Ctx<'_>, counter: &Counter) -> Result<(), BoxError> {
///         *counter.count.lock().map_err(|e| e.to_string())? += 1;
///         Ok(())
///     }
///     fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> { Ok(()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let mut search = AsyncFlow::named("Search");
/// search.start(Search);
/// let mut count = Flow::named("Count");
/// count.start(Count);
/// let (documents, counter) = (SharedStore::new(), Counter::default());
///
/// let flows: [BoxFuture<'_, Result<Action, FlowError>>; 2] =
///     [search.run(&documents).boxed(), async { count.run(&counter) }.boxed()];
/// let results = Composition::parallel("SearchAndCount").limit(2).run(flows).await;
///
/// assert_eq!(results[0].as_ref().ok(), Some(&Action::from("searched")));
/// assert!(results[1].is_ok());
/// assert_eq!(*counter.count.lock().map_err(|e| e.to_string())?, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ParallelComposition {
    name: Cow<'static, str>,
    limit: usize,
    options: RunOptions,
}

impl ParallelComposition {
    /// At most `limit` flows run at once; the others start as running ones
    /// finish, in input order. 0 (the default) means no limit, 1 one after
    /// another.
    ///
    /// ```
    /// use pocketflow::Composition;
    ///
    /// assert_eq!(Composition::parallel("Capped").limit(3).max_concurrent(), 3);
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The run's session, user, tags, metadata and remote parent, recorded
    /// on the composition span: when the composition is the outermost span
    /// of a run, these are the trace's attributes.
    ///
    /// ```
    /// use pocketflow::{Composition, RunOptions};
    ///
    /// let composition = Composition::parallel("Tagged").options(RunOptions::new().tag("nightly"));
    /// assert_eq!(composition.run_options().tag_list(), ["nightly"]);
    /// ```
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The composition's name (its span's `name` field).
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::parallel("FanOut").name(), "FanOut");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The concurrency limit: 0 for none.
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::parallel("FanOut").max_concurrent(), 0);
    /// ```
    pub fn max_concurrent(&self) -> usize {
        self.limit
    }

    /// The options recorded on the composition span.
    ///
    /// ```
    /// assert!(pocketflow::Composition::parallel("FanOut").run_options().is_empty());
    /// ```
    pub fn run_options(&self) -> &RunOptions {
        &self.options
    }

    /// Runs every flow, concurrently up to the limit, and returns each
    /// one's result in input order. A failure never cancels or hides the
    /// others (Python's `gather(return_exceptions=True)`).
    ///
    /// The span records `failed` (how many failed) and `output` (per flow
    /// `{"ok": value}` or `{"error": message}`). Its `error` field, and a
    /// `failed` lifecycle state, are set only when every flow failed (then
    /// `error` is the first flow's error): a composition that got some
    /// results has done its job, and the failed flows' own spans carry
    /// their errors.
    ///
    /// The span is created when the returned future is first polled, as a
    /// child of the span current then, like a flow's.
    ///
    /// ```
    /// use pocketflow::{Composition, FlowError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let flows = (0..3).map(|n| async move {
    ///     if n == 1 { Err(FlowError::NoAttempts { node: "Broken".into() }) } else { Ok(n) }
    /// });
    /// let results = Composition::parallel("Three").run(flows).await;
    /// assert!(matches!(results[..], [Ok(0), Err(_), Ok(2)]));
    /// # }
    /// ```
    pub fn run<T, F>(self, flows: impl IntoIterator<Item = F>) -> impl Future<Output = Vec<Result<T, FlowError>>> + Send
    where
        F: Future<Output = Result<T, FlowError>> + Send,
        T: Serialize + Send,
    {
        let flows: Vec<F> = flows.into_iter().collect();
        async move {
            let count = flows.len();
            run_all(&self.name, "parallel", self.limit, &self.options, count, stream::iter(flows)).await
        }
    }
}

/// One flow under a `composition` span of kind `nested`: built by
/// [`Composition::nested`].
///
/// ```
/// use pocketflow::Composition;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let nested = Composition::nested("Analysis");
/// assert_eq!(nested.run(async { Ok("analysed") }).await.ok(), Some("analysed"));
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NestedComposition {
    name: Cow<'static, str>,
    options: RunOptions,
}

impl NestedComposition {
    /// The run's options, recorded on the composition span (see
    /// [`ParallelComposition::options`]).
    ///
    /// ```
    /// use pocketflow::{Composition, RunOptions};
    ///
    /// let nested = Composition::nested("Analysis").options(RunOptions::new().user_id("ada"));
    /// assert_eq!(nested.run_options().user().map(String::as_str), Some("ada"));
    /// ```
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The composition's name (its span's `name` field).
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::nested("Analysis").name(), "Analysis");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The options recorded on the composition span.
    ///
    /// ```
    /// assert!(pocketflow::Composition::nested("Analysis").run_options().is_empty());
    /// ```
    pub fn run_options(&self) -> &RunOptions {
        &self.options
    }

    /// Runs the flow and returns its result. The span records `count` = 1,
    /// `limit` = 1, `failed` (0 or 1), `output` (a one-entry list, as for
    /// the other kinds) and, when the flow failed, its error.
    ///
    /// ```
    /// use pocketflow::{Composition, FlowError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let failed = Composition::nested("Broken")
    ///     .run(async { Err::<(), _>(FlowError::NoAttempts { node: "Broken".into() }) })
    ///     .await;
    /// assert!(failed.is_err());
    /// # }
    /// ```
    pub async fn run<T, F>(self, flow: F) -> Result<T, FlowError>
    where
        F: Future<Output = Result<T, FlowError>> + Send,
        T: Serialize + Send,
    {
        let (span, site, in_flight) = start(&self.name, "nested", 1, 1, &self.options);
        let recorder = span.clone();
        traced(span, site, async move {
            let _in_flight = in_flight;
            let result = flow.await;
            record_outcomes(&recorder, std::slice::from_ref(&result));
            result
        })
        .await
    }
}

/// One flow per item under a `composition` span of kind `batch`: built by
/// [`Composition::batch`].
///
/// ```
/// use pocketflow::{Action, AsyncFlow, AsyncNode, BoxError, Composition, Ctx, SharedStore};
///
/// struct Upper;
/// impl AsyncNode for Upper {
///     type Prep = String;
///     type Exec = String;
///     async fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<String, BoxError> {
///         Ok(shared.get("text")?)
///     }
///     async fn exec(&self, _: &Ctx<'_>, text: &String) -> Result<String, BoxError> {
///         Ok(text.to_uppercase())
///     }
///     async fn post(&self, _: &Ctx<'_>, shared: &SharedStore, _: String, upper: String) -> Result<Action, BoxError> {
///         shared.set("text", upper)?;
///         Ok(Action::NONE)
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), BoxError> {
/// let mut flow = AsyncFlow::named("Upper");
/// flow.start(Upper);
/// let stores: Vec<SharedStore> = ["a", "b"].map(|t| SharedStore::from_iter([("text", t)])).into();
///
/// let results = Composition::batch("PerText").limit(2).run(&stores, |shared| flow.run(shared)).await;
/// assert!(results.iter().all(Result::is_ok));
/// assert_eq!(stores[1].get::<String>("text")?, "B");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct BatchComposition {
    name: Cow<'static, str>,
    limit: usize,
    options: RunOptions,
}

impl BatchComposition {
    /// At most `limit` items run at once; 0 means no limit, 1 (the
    /// default) one after another.
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::batch("Docs").limit(8).max_concurrent(), 8);
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Every item at once: `limit(0)`, Python's `parallel=True`.
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::batch("Docs").parallel().max_concurrent(), 0);
    /// ```
    pub fn parallel(self) -> Self {
        self.limit(0)
    }

    /// One item after another: `limit(1)`, the default.
    ///
    /// ```
    /// let batch = pocketflow::Composition::batch("Docs").parallel().sequential();
    /// assert_eq!(batch.max_concurrent(), 1);
    /// ```
    pub fn sequential(self) -> Self {
        self.limit(1)
    }

    /// The run's options, recorded on the composition span (see
    /// [`ParallelComposition::options`]).
    ///
    /// ```
    /// use pocketflow::{Composition, RunOptions};
    ///
    /// let batch = Composition::batch("Docs").options(RunOptions::new().session_id("s1"));
    /// assert_eq!(batch.run_options().session().map(String::as_str), Some("s1"));
    /// ```
    pub fn options(mut self, options: RunOptions) -> Self {
        self.options = options;
        self
    }

    /// The composition's name (its span's `name` field).
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::batch("Docs").name(), "Docs");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The concurrency limit: 0 for none, 1 for one after another.
    ///
    /// ```
    /// assert_eq!(pocketflow::Composition::batch("Docs").max_concurrent(), 1);
    /// ```
    pub fn max_concurrent(&self) -> usize {
        self.limit
    }

    /// The options recorded on the composition span.
    ///
    /// ```
    /// assert!(pocketflow::Composition::batch("Docs").run_options().is_empty());
    /// ```
    pub fn run_options(&self) -> &RunOptions {
        &self.options
    }

    /// Runs `flow(item)` for each item and returns each result in item
    /// order. `flow` is called only when the item's turn comes, so in a
    /// sequential batch each flow (and its span) starts after the previous
    /// one finished. Failures are handled as in
    /// [`ParallelComposition::run`]: every item runs, and the span's
    /// `error` is set only when all failed.
    ///
    /// ```
    /// use pocketflow::Composition;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let lengths = Composition::batch("Lengths").run(["a", "bb"], |s| async move { Ok(s.len()) }).await;
    /// assert_eq!(lengths.into_iter().flatten().collect::<Vec<_>>(), [1, 2]);
    /// # }
    /// ```
    pub fn run<I, T, F>(
        self,
        items: impl IntoIterator<Item = I>,
        flow: impl FnMut(I) -> F + Send,
    ) -> impl Future<Output = Vec<Result<T, FlowError>>> + Send
    where
        I: Send,
        F: Future<Output = Result<T, FlowError>> + Send,
        T: Serialize + Send,
    {
        let items: Vec<I> = items.into_iter().collect();
        async move {
            let count = items.len();
            run_all(&self.name, "batch", self.limit, &self.options, count, stream::iter(items).map(flow)).await
        }
    }
}

/// The composition's span (inside the current one, with the options
/// recorded at creation) and its context site. A composition outside any run
/// is a top-level run of its own: it counts as in flight (the guard) and
/// records how many runs were.
#[allow(clippy::ptr_arg, reason = "the name is cloned into the run context, free for a static name")]
fn start(
    name: &Cow<'static, str>,
    kind: &'static str,
    count: usize,
    limit: usize,
    options: &RunOptions,
) -> (Span, Site, Option<InFlight>) {
    let outermost = current::is_outermost();
    let (in_flight, concurrent) = InFlight::start_if_top_level();
    let recorded = (outermost || !options.is_empty()).then_some((options, concurrent));
    let span = telemetry::composition_span(name, kind, count, limit, recorded);
    if outermost {
        telemetry::continued(&span, options);
    }
    let run = outermost.then(|| Run::new(options.clone(), false));
    let site = Site::new(Scope::Composition, name.clone(), None, run.as_ref());
    (span, site, in_flight)
}

/// Runs the futures `flows` yields, at most `limit` at once (0: all), under
/// one composition span, and returns their results in input order.
#[allow(clippy::ptr_arg, reason = "the name is cloned into the run context, free for a static name")]
async fn run_all<T, St>(
    name: &Cow<'static, str>,
    kind: &'static str,
    limit: usize,
    options: &RunOptions,
    count: usize,
    flows: St,
) -> Vec<Result<T, FlowError>>
where
    St: Stream + Send,
    St::Item: Future<Output = Result<T, FlowError>> + Send,
    T: Serialize + Send,
{
    let (span, site, in_flight) = start(name, kind, count, limit, options);
    let recorder = span.clone();
    // When every flow failed, the traced future fails with the first error
    // (so the span gets `error` and the `failed` state) and leaves the
    // other results here, to be joined again below.
    let mut rest = Vec::new();
    let outcome = traced(span, site, run_and_record(recorder, limit, count, flows, &mut rest)).await;
    drop(in_flight);
    match outcome {
        Ok(results) => results,
        Err(first) => {
            rest.insert(0, Err(first));
            rest
        }
    }
}

/// The composition's work, inside its span: runs the flows, records
/// `failed` and `output`, and fails only when every flow failed (handing
/// the other results back through `rest`).
async fn run_and_record<T, St>(
    span: Span,
    limit: usize,
    count: usize,
    flows: St,
    rest: &mut Vec<Result<T, FlowError>>,
) -> Result<Vec<Result<T, FlowError>>, FlowError>
where
    St: Stream + Send,
    St::Item: Future<Output = Result<T, FlowError>> + Send,
    T: Serialize + Send,
{
    let width = if limit == 0 { count.max(1) } else { limit };
    // Unordered, then sorted: an ordered buffer would count finished flows
    // waiting behind a slow earlier one against the limit, so a slow first
    // flow would hold back the start of later ones.
    let mut indexed: Vec<(usize, Result<T, FlowError>)> = flows
        .enumerate()
        .map(|(index, flow)| async move { (index, flow.await) })
        .buffer_unordered(width)
        .collect()
        .await;
    indexed.sort_unstable_by_key(|(index, _)| *index);
    let mut results: Vec<Result<T, FlowError>> = indexed.into_iter().map(|(_, result)| result).collect();
    record_outcomes(&span, &results);
    if results.is_empty() || results.iter().any(Result::is_ok) {
        return Ok(results);
    }
    // Every result is an error here; the `Ok` arm only keeps this total
    // without a panic.
    match results.remove(0) {
        Err(first) => {
            *rest = results;
            Err(first)
        }
        Ok(value) => {
            results.insert(0, Ok(value));
            Ok(results)
        }
    }
}

/// Records `failed` and `output` on the composition span.
fn record_outcomes<T: Serialize>(span: &Span, results: &[Result<T, FlowError>]) {
    if span.is_disabled() {
        return;
    }
    span.record("failed", results.iter().filter(|result| result.is_err()).count());
    telemetry::record_json(span, "output", &Outcomes(results));
}

/// Serializes results as `[{"ok": value} | {"error": message}, …]`.
struct Outcomes<'a, T>(&'a [Result<T, FlowError>]);

impl<T: Serialize> Serialize for Outcomes<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for result in self.0 {
            seq.serialize_element(&Outcome(result))?;
        }
        seq.end()
    }
}

struct Outcome<'a, T>(&'a Result<T, FlowError>);

impl<T: Serialize> Serialize for Outcome<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self.0 {
            Ok(value) => map.serialize_entry("ok", value)?,
            Err(error) => map.serialize_entry("error", &Message(error))?,
        }
        map.end()
    }
}

/// An error's message, serialized without building a `String` first.
struct Message<'a>(&'a FlowError);

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self.0)
    }
}

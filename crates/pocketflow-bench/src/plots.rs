//! `--plots DIR`: sweeps the cases over what their cost depends on and
//! draws the curves `docs/performance.md` shows, as SVG (plotters, no font
//! files needed):
//!
//! - `cost_per_node_by_flow_length.svg`: one sync loop of N nodes under the
//!   layer (into a discarding exporter), ns per node against N;
//! - `cost_per_span_by_concurrency.svg`: N async chains at once on two
//!   workers, ns per span against N;
//! - `delivery_by_batch_size.svg`: spans per second the real collector
//!   accepted against the export batch size, gRPC and HTTP/protobuf.
//!
//! Every point is also printed as a JSON line (`sweep_…` cases), so a plot
//! can always be checked against its numbers.

use std::path::Path;

use plotters::prelude::*;
use pocketflow_tracing::Protocol;

use crate::cases::{self, CaseError};
use crate::report::Record;

/// One curve: a label and its points.
struct Series {
    label: &'static str,
    points: Vec<(f64, f64)>,
}

/// Runs the sweeps, prints each point, and writes the three SVGs in `dir`.
pub(crate) fn write_plots(dir: &Path, quick: bool) -> Result<(), CaseError> {
    std::fs::create_dir_all(dir)?;

    let lengths: &[u64] =
        if quick { &[32_768, 65_536, 131_072, 262_144] } else { &[32_768, 131_072, 524_288, 1_048_576] };
    let by_length = sweep(lengths, |nodes| cases::loop_run(&format!("sweep_loop_{nodes}"), nodes), |r| r.ns_per_node)?;
    draw(
        &dir.join("cost_per_node_by_flow_length.svg"),
        "Cost per node against flow length (sync loop, layer, discarding exporter)",
        "nodes in the flow",
        "ns per node",
        &[Series { label: "pocketflow-tracing", points: by_length }],
        2.0,
    )?;

    let by_concurrency = sweep(
        &[1, 10, 100, 1000],
        |flows| cases::concurrent_flows(&format!("sweep_concurrent_{flows}"), flows),
        |r| r.ns_per_span,
    )?;
    draw(
        &dir.join("cost_per_span_by_concurrency.svg"),
        "Cost per span against concurrent flows (async chains, 2 workers)",
        "flows at once",
        "ns per span (wall clock)",
        &[Series { label: "pocketflow-tracing", points: by_concurrency }],
        10.0,
    )?;

    let runs = if quick { 2_000 } else { 5_000 };
    let mut series = Vec::new();
    for (label, protocol) in [("gRPC", Protocol::Grpc), ("HTTP/protobuf", Protocol::HttpProtobuf)] {
        let mut points = Vec::new();
        for batch in [256usize, 512, 1024, 2048, 4096] {
            let case = format!("sweep_collector_{}_{batch}", if protocol == Protocol::Grpc { "grpc" } else { "http" });
            let record: Record = cases::collector_case_with(&case, protocol, runs, Some(batch))?;
            print(&record);
            if record.skipped.is_some() {
                return Ok(());
            }
            if let Some(rate) = record.spans_per_sec {
                points.push((batch as f64, rate));
            }
        }
        series.push(Series { label, points });
    }
    draw(
        &dir.join("delivery_by_batch_size.svg"),
        "Spans per second accepted by the OpenTelemetry Collector, by batch size",
        "spans per export batch",
        "spans per second",
        &series,
        2.0,
    )
}

/// Runs `case` for each of `values`, prints its record, and keeps
/// `(value, figure)` where the record has the figure.
fn sweep(
    values: &[u64],
    case: impl Fn(u64) -> Result<Record, CaseError>,
    figure: impl Fn(&Record) -> Option<f64>,
) -> Result<Vec<(f64, f64)>, CaseError> {
    let mut points = Vec::with_capacity(values.len());
    for &value in values {
        let record = case(value)?;
        print(&record);
        if let Some(y) = figure(&record) {
            points.push((value as f64, y));
        }
    }
    Ok(points)
}

/// A line chart with a logarithmic x axis (base 2 or 10, labelled at the
/// whole powers), from zero on y.
fn draw(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series], base: f64) -> Result<(), CaseError> {
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series { label: s.label, points: s.points.iter().map(|&(x, y)| (x.log(base), y)).collect() })
        .collect();
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (Some(x_min), Some(x_max)) = (points().map(|p| p.0).reduce(f64::min), points().map(|p| p.0).reduce(f64::max))
    else {
        return Err(CaseError::Check(format!("no points for {}", path.display())));
    };
    let (x_from, x_to) = ((x_min - 0.5).floor(), (x_max + 0.5).ceil());
    let y_max = points().map(|p| p.1).fold(0.0, f64::max) * 1.15;
    let plot_error = |e: String| CaseError::Check(format!("drawing {}: {e}", path.display()));
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_error(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x_from..x_to, 0.0..y_max.max(1.0))
        .map_err(|e| plot_error(e.to_string()))?;
    chart
        .configure_mesh()
        .x_labels(((x_to - x_from) as usize + 1).max(2))
        .x_desc(x_label)
        .y_desc(y_label)
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-6 { format!("{:.0}", base.powf(*x)) } else { String::new() }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    let colors = [BLUE, RED, GREEN];
    for (series, color) in series.iter().zip(colors.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(series.points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_error(e.to_string()))?
            .label(series.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(series.points.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled())))
            .map_err(|e| plot_error(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_error(e.to_string()))?;
    root.present().map_err(|e| plot_error(e.to_string()))?;
    Ok(())
}

fn print(record: &Record) {
    if let Err(error) = record.print() {
        eprintln!("pocketflow-bench: cannot write to stdout: {error}");
    }
}

//! The workspace root package: it exists to own `examples/` and the
//! cross-crate tests in `tests/`. The libraries are in `crates/`.

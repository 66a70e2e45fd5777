//! Misuse the type system catches (an async node or flow in a sync `Flow`,
//! hooks of the wrong kind, a node over another store, something that is no
//! node at all) fails to compile with a message that says what to use
//! instead (`#[diagnostic::on_unimplemented]` on the traits the builders
//! bound on). Each case in `tests/ui/` is compiled and its errors compared
//! with the `.stderr` beside it; after a deliberate change to the messages
//! or to the impls rustc lists, regenerate them with
//! `TRYBUILD=overwrite cargo test -p pocketflow-engine --test compile_errors_name_the_fix`.
//!
//! rustc words its diagnostics a little differently from release to
//! release, so the `.stderr` files hold for the compiler release named in
//! `tests/ui/rustc-minor-version`. Under another release the comparison
//! would fail on wording that is not ours; the test then says so on stderr
//! and checks nothing (regenerate the files and update the version to
//! check again).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// `1.95` for `rustc 1.95.0 (…)`.
fn rustc_minor_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    let number = version.split_whitespace().nth(1)?;
    let mut parts = number.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

#[test]
fn misuse_fails_to_compile_with_a_message_naming_the_fix() {
    let expected = std::fs::read_to_string("tests/ui/rustc-minor-version").expect("tests/ui/rustc-minor-version");
    let expected = expected.trim();
    let actual = rustc_minor_version();
    if actual.as_deref() != Some(expected) {
        eprintln!(
            "compile_errors_name_the_fix: NOT CHECKED: the expected errors were written with rustc {expected}, \
             this is rustc {actual:?}; regenerate them with TRYBUILD=overwrite and update tests/ui/rustc-minor-version"
        );
        return;
    }
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

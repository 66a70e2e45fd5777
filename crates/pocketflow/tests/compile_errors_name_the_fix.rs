//! Misuse the type system catches (an async node or flow in a sync `Flow`,
//! hooks of the wrong kind, a node over another store, something that is no
//! node at all) fails to compile with a message that says what to use
//! instead (`#[diagnostic::on_unimplemented]` on the traits the builders
//! bound on). Each case in `tests/ui/` is compiled and its errors compared
//! with the `.stderr` beside it; after a deliberate change to the messages
//! or to the impls rustc lists, regenerate them with
//! `TRYBUILD=overwrite cargo test -p pocketflow --test compile_errors_name_the_fix`.
#![allow(missing_docs)]

#[test]
fn misuse_fails_to_compile_with_a_message_naming_the_fix() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}

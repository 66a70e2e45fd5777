//! The helper nodes PocketFlow's tests share: `NumberNode`, `AddNode`,
//! `MultiplyNode`, all working on `shared["current"]` in `prep`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use pocketflow::{BoxError, Ctx, Node, SharedStore};

pub fn current(shared: &SharedStore) -> i64 {
    shared.get::<i64>("current").unwrap_or_else(|e| panic!("current: {e}"))
}

fn apply(shared: &SharedStore, f: impl FnOnce(i64) -> i64) {
    shared.update("current", |v| *v = f(v.as_i64().unwrap_or(0)).into());
}

/// Sets `current` to its number.
pub struct NumberNode(pub i64);
/// Adds its number to `current`.
pub struct AddNode(pub i64);
/// Multiplies `current` by its number.
pub struct MultiplyNode(pub i64);

impl Node for NumberNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        shared.insert("current", self.0);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

impl Node for AddNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        apply(shared, |c| c + self.0);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

impl Node for MultiplyNode {
    type Prep = ();
    type Exec = ();
    fn prep(&self, _: &Ctx<'_>, shared: &SharedStore) -> Result<(), BoxError> {
        apply(shared, |c| c * self.0);
        Ok(())
    }
    fn exec(&self, _: &Ctx<'_>, _: &()) -> Result<(), BoxError> {
        Ok(())
    }
}

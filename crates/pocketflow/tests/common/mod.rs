//! The helper nodes PocketFlow's tests share: `NumberNode`, `AddNode`,
//! `MultiplyNode`, all working on `shared["current"]` in `prep`; plus
//! `ValueError` (the Python tests' `ValueError`) and helpers for the nested
//! dicts and lists the Python tests build in `shared`.
#![allow(dead_code, unreachable_pub, missing_docs)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;

use pocketflow::{BoxError, Ctx, Node, Params, SharedStore};
use serde_json::Value;

/// Python's `ValueError`: tests raise it from hooks and recover it with
/// `FlowError::downcast_ref::<ValueError>()`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError(pub String);

impl ValueError {
    pub fn boxed(message: impl Into<String>) -> BoxError {
        Box::new(Self(message.into()))
    }
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueError: {}", self.0)
    }
}

impl std::error::Error for ValueError {}

/// `shared[map][key] = value`, creating `shared[map]` as `{}` if needed.
pub fn map_insert(shared: &SharedStore, map: &str, key: &str, value: impl Into<Value>) {
    let value = value.into();
    shared.update(map, |v| {
        if !v.is_object() {
            *v = Value::Object(serde_json::Map::new());
        }
        v.as_object_mut().expect("an object").insert(key.to_owned(), value);
    });
}

/// `shared[list].append(value)`, creating `shared[list]` as `[]` if needed.
pub fn list_push(shared: &SharedStore, list: &str, value: impl Into<Value>) {
    let value = value.into();
    shared.update(list, |v| {
        if !v.is_array() {
            *v = Value::Array(Vec::new());
        }
        v.as_array_mut().expect("an array").push(value);
    });
}

/// `shared[map][key].append(value)`, creating both levels if needed.
pub fn map_list_push(shared: &SharedStore, map: &str, key: &str, value: impl Into<Value>) {
    let value = value.into();
    shared.update(map, |v| {
        if !v.is_object() {
            *v = Value::Object(serde_json::Map::new());
        }
        let entry =
            v.as_object_mut().expect("an object").entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
        entry.as_array_mut().expect("an array").push(value);
    });
}

/// The raw value of `shared[key]`, or `null` when absent.
pub fn value(shared: &SharedStore, key: &str) -> Value {
    shared.get_value(key).unwrap_or(Value::Null)
}

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

/// The nested batch-flow tests' inner `prep`: one parameter set per item of
/// the group named by the (outer-set) `group` param.
pub fn group_items_prep(ctx: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
    let group: String = ctx.params().get_as("group")?;
    let len = value(shared, "groups")[group.as_str()].as_array().ok_or("missing group")?.len();
    Ok((0..len).map(|i| Params::new().with("item", i).with("group", group.as_str())).collect())
}

/// The nested batch-flow tests' outer `prep`: one parameter set per group.
pub fn groups_prep(_: &Ctx<'_>, shared: &SharedStore) -> Result<Vec<Params>, BoxError> {
    let groups = value(shared, "groups");
    Ok(groups
        .as_object()
        .ok_or("groups is not a map")?
        .keys()
        .map(|g| Params::new().with("group", g.as_str()))
        .collect())
}

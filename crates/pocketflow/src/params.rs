//! Flow parameters: the per-run key/value pairs a flow hands to its nodes.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::DataError;

/// The parameters of one orchestration: PocketFlow's `self.params`.
///
/// A flow passes the same `Params` to every node it runs, replacing the
/// node's own. A batch flow runs its graph once per entry of its `prep`
/// result, each time with the flow's params overridden by that entry's keys.
/// Params are read-only during a run: unlike Python, one node cannot leak a
/// change to the next through them (use the shared store for that).
///
/// ```
/// use pocketflow::Params;
///
/// let p = Params::new().with("key", "a").with("multiplier", 2);
/// assert_eq!(p.get_as::<String>("key")?, "a");
/// assert_eq!(p.get_as::<i64>("multiplier")?, 2);
/// assert!(p.get_as::<i64>("missing").is_err());
/// # Ok::<(), pocketflow::DataError>(())
/// ```
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(Map<String, Value>);

impl Params {
    /// Empty params.
    pub fn new() -> Self {
        Self(Map::new())
    }

    /// These params with `key` set to `value`.
    #[must_use]
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// Sets `key` to `value`, returning the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.0.insert(key.into(), value.into())
    }

    /// The raw value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The value of `key` as a string slice, if it is a JSON string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// The value of `key` decoded as `T`.
    ///
    /// # Errors
    /// [`DataError::Missing`] when the key is absent, [`DataError::Decode`]
    /// when its value is not a `T`.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<T, DataError> {
        let value = self.0.get(key).ok_or_else(|| DataError::missing("param", key))?;
        T::deserialize(value).map_err(|source| DataError::decode("param", key, source))
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    /// A copy of `self` with every key of `overrides` set over it: Python's
    /// `{**self.params, **overrides}`.
    #[must_use]
    pub fn merged(&self, overrides: &Self) -> Self {
        let mut merged = self.0.clone();
        merged.extend(overrides.0.iter().map(|(k, v)| (k.clone(), v.clone())));
        Self(merged)
    }

    /// The underlying JSON map.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }
}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl From<Map<String, Value>> for Params {
    fn from(map: Map<String, Value>) -> Self {
        Self(map)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl<K: Into<String>, V: Into<Value>, const N: usize> From<[(K, V); N]> for Params {
    fn from(entries: [(K, V); N]) -> Self {
        entries.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_overrides_keys_and_keeps_the_rest() {
        let base = Params::from([("a", 1), ("b", 2)]);
        let merged = base.merged(&Params::from([("b", 20), ("c", 30)]));
        assert_eq!(merged, Params::from([("a", 1), ("b", 20), ("c", 30)]));
        assert_eq!(base, Params::from([("a", 1), ("b", 2)]), "merge does not touch the base");
    }

    #[test]
    fn decode_error_names_the_key() {
        let p = Params::new().with("n", "not a number");
        let err = p.get_as::<i64>("n").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("param `n`"), "{err}");
    }
}

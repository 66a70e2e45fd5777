//! The shared store: the data every node of a run reads and writes.

use std::fmt;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::DataError;

/// A JSON map that concurrent nodes can share: PocketFlow's `shared` dict.
///
/// Nodes receive the store by shared reference (`&SharedStore`); every method
/// takes `&self` and locks internally, so parallel batch items and parallel
/// flows can use it at the same time without `unsafe` or globals. Each call
/// is atomic on its own; use [`SharedStore::update`] for a read-modify-write.
///
/// Flows are generic over their store, so a typed struct works as well (with
/// `Mutex`/atomics inside, and `Serialize` so tracing can record it).
///
/// ```
/// use pocketflow::SharedStore;
///
/// let shared = SharedStore::new();
/// shared.set("current", 5)?;
/// shared.update("current", |v| *v = (v.as_i64().unwrap_or(0) + 3).into());
/// assert_eq!(shared.get::<i64>("current")?, 8);
/// # Ok::<(), pocketflow::DataError>(())
/// ```
#[derive(Default)]
pub struct SharedStore {
    map: RwLock<Map<String, Value>>,
}

impl SharedStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, Map<String, Value>> {
        // A panic while holding the lock cannot leave a half-written JSON
        // value behind (every write is one map operation), so the data is
        // still consistent and a poisoned lock is safe to reuse.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map<String, Value>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value of `key` decoded as `T`.
    ///
    /// # Errors
    /// [`DataError::Missing`] when the key is absent, [`DataError::Decode`]
    /// when its value is not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<T, DataError> {
        let map = self.read();
        let value = map.get(key).ok_or_else(|| DataError::missing("shared key", key))?;
        T::deserialize(value).map_err(|source| DataError::decode("shared key", key, source))
    }

    /// A copy of the raw value of `key`.
    pub fn get_value(&self, key: &str) -> Option<Value> {
        self.read().get(key).cloned()
    }

    /// Sets `key` to `value` encoded as JSON, returning the old value.
    ///
    /// # Errors
    /// [`DataError::Encode`] when `value` cannot be encoded as JSON (a map
    /// with non-string keys, say); the store is then unchanged.
    pub fn set(&self, key: impl Into<String>, value: impl Serialize) -> Result<Option<Value>, DataError> {
        let key = key.into();
        let value = serde_json::to_value(value).map_err(|source| DataError::encode("shared key", &key, source))?;
        Ok(self.write().insert(key, value))
    }

    /// Sets `key` to a JSON value, returning the old value.
    pub fn insert(&self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.write().insert(key.into(), value.into())
    }

    /// Runs `f` on the value of `key` (created as `null` if absent) under
    /// the write lock, so the read-modify-write is atomic.
    pub fn update<R>(&self, key: &str, f: impl FnOnce(&mut Value) -> R) -> R {
        let mut map = self.write();
        f(map.entry(key).or_insert(Value::Null))
    }

    /// Removes `key`, returning its value.
    pub fn remove(&self, key: &str) -> Option<Value> {
        self.write().remove(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.read().contains_key(key)
    }

    /// Runs `f` with read access to the whole map.
    pub fn with_map<R>(&self, f: impl FnOnce(&Map<String, Value>) -> R) -> R {
        f(&self.read())
    }

    /// Runs `f` with write access to the whole map, atomically.
    pub fn with_map_mut<R>(&self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        f(&mut self.write())
    }

    /// A copy of the whole map.
    pub fn snapshot(&self) -> Map<String, Value> {
        self.read().clone()
    }
}

impl From<Map<String, Value>> for SharedStore {
    fn from(map: Map<String, Value>) -> Self {
        Self { map: RwLock::new(map) }
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for SharedStore {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self::from(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect::<Map<_, _>>())
    }
}

impl Serialize for SharedStore {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.read().serialize(serializer)
    }
}

/// Lists the keys only: values are user data and may hold secrets.
impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore").field("keys", &self.read().keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_keys_not_values() {
        let s = SharedStore::new();
        s.insert("api_key", "sk-secret");
        let shown = format!("{s:?}");
        assert!(shown.contains("api_key") && !shown.contains("sk-secret"), "{shown}");
    }

    #[test]
    fn update_creates_missing_keys_as_null() {
        let s = SharedStore::new();
        s.update("n", |v| {
            assert!(v.is_null());
            *v = 1.into();
        });
        assert_eq!(s.get::<i64>("n").ok(), Some(1));
    }
}

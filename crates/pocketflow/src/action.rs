//! The value a node's `post` returns to choose the next node.

use std::borrow::Cow;
use std::fmt;

use serde::{Serialize, Serializer};

/// What a node's `post` returns: the name of the transition to follow, or
/// none at all.
///
/// PocketFlow routes `None` and the empty string to the `"default"`
/// successor, yet keeps the raw value as the flow's result, so the two are
/// kept apart here: [`Action::NONE`] is Python's `None`, and
/// [`Action::DEFAULT`] is the string `"default"`.
///
/// ```
/// use pocketflow::Action;
///
/// let a: Action = "positive".into();
/// assert_eq!(a, "positive");
/// assert!(Action::NONE.is_none());
/// assert_eq!(Action::NONE.to_string(), "None");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Action(Option<Cow<'static, str>>);

impl Action {
    /// No action: Python's `None`. It follows the `"default"` successor.
    pub const NONE: Self = Self(None);
    /// The `"default"` action.
    pub const DEFAULT: Self = Self(Some(Cow::Borrowed(DEFAULT_ACTION)));

    /// An action with the given name.
    pub fn new(name: impl Into<Cow<'static, str>>) -> Self {
        Self(Some(name.into()))
    }

    /// The action's name, or `None` for [`Action::NONE`].
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// Whether this is [`Action::NONE`].
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The successor key this action selects: `None` and `""` select
    /// `"default"`, as in PocketFlow's `get_next_node`.
    pub fn route_key(&self) -> &str {
        match self.0.as_deref() {
            Some(name) if !name.is_empty() => name,
            _ => DEFAULT_ACTION,
        }
    }
}

/// The name of the transition that `a >> b` creates.
pub const DEFAULT_ACTION: &str = "default";

impl fmt::Debug for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(name) => write!(f, "Action({name:?})"),
            None => f.write_str("Action::NONE"),
        }
    }
}

/// Prints the name, or `None` (as PocketFlow's warnings do) for no action.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("None"))
    }
}

impl Serialize for Action {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.0.as_deref().serialize(serializer)
    }
}

impl From<&'static str> for Action {
    fn from(name: &'static str) -> Self {
        Self(Some(Cow::Borrowed(name)))
    }
}

impl From<String> for Action {
    fn from(name: String) -> Self {
        Self(Some(Cow::Owned(name)))
    }
}

impl From<Cow<'static, str>> for Action {
    fn from(name: Cow<'static, str>) -> Self {
        Self(Some(name))
    }
}

impl<T: Into<Self>> From<Option<T>> for Action {
    fn from(name: Option<T>) -> Self {
        name.map_or(Self::NONE, Into::into)
    }
}

impl From<()> for Action {
    fn from((): ()) -> Self {
        Self::NONE
    }
}

impl PartialEq<str> for Action {
    fn eq(&self, other: &str) -> bool {
        self.0.as_deref() == Some(other)
    }
}

impl PartialEq<&str> for Action {
    fn eq(&self, other: &&str) -> bool {
        self.0.as_deref() == Some(*other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_empty_route_to_default() {
        assert_eq!(Action::NONE.route_key(), "default");
        assert_eq!(Action::new("").route_key(), "default");
        assert_eq!(Action::from("x").route_key(), "x");
    }

    #[test]
    fn serializes_as_string_or_null() {
        assert_eq!(serde_json::to_string(&Action::NONE).ok().as_deref(), Some("null"));
        assert_eq!(serde_json::to_string(&Action::from("go")).ok().as_deref(), Some("\"go\""));
    }
}

//! Maps that are nearly always empty, held as one pointer until something is in them.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A map that a world holds tens of thousands of and that is nearly always empty (a service's
/// tags and unknown keys, a container's secrets and unknown keys): eight bytes while empty,
/// where the map itself takes seventy-two.
///
/// It reads as the map it holds (an empty one when it holds none), and the first change makes
/// the map. It is written and compared as the map: an empty one equals no map at all.
#[derive(Clone, Default)]
pub struct Sparse<M>(Option<Box<M>>);

/// The maps a [`Sparse`] can hold: each has one empty map to show while it holds none.
pub trait Empty: Default + 'static {
    /// The empty map shown while a [`Sparse`] holds none: one for the whole program.
    fn empty() -> &'static Self;
    /// Whether the map holds nothing.
    fn is_empty(&self) -> bool;
    /// Gives back the room the map grew into while it was read, where the map can.
    fn shrink_to_fit(&mut self);
}

impl Empty for IndexMap<String, String> {
    fn empty() -> &'static Self {
        static EMPTY: OnceLock<IndexMap<String, String>> = OnceLock::new();
        EMPTY.get_or_init(IndexMap::new)
    }

    fn is_empty(&self) -> bool {
        IndexMap::is_empty(self)
    }

    fn shrink_to_fit(&mut self) {
        IndexMap::shrink_to_fit(self);
    }
}

impl Empty for Map<String, Value> {
    fn empty() -> &'static Self {
        static EMPTY: OnceLock<Map<String, Value>> = OnceLock::new();
        EMPTY.get_or_init(Map::new)
    }

    fn is_empty(&self) -> bool {
        Map::is_empty(self)
    }

    /// serde_json's map gives no way to give back room: its entries stay as read.
    fn shrink_to_fit(&mut self) {}
}

impl<M: Empty> Sparse<M> {
    /// Whether it holds nothing (for serde's `skip_serializing_if`).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.as_deref().is_none_or(M::is_empty)
    }
}

impl<M: Empty> From<M> for Sparse<M> {
    fn from(mut map: M) -> Sparse<M> {
        if map.is_empty() {
            return Sparse(None);
        }
        map.shrink_to_fit();
        Sparse(Some(Box::new(map)))
    }
}

impl<M: Empty + FromIterator<T>, T> FromIterator<T> for Sparse<M> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Sparse<M> {
        M::from_iter(items).into()
    }
}

impl<M: Empty> Deref for Sparse<M> {
    type Target = M;

    fn deref(&self) -> &M {
        match &self.0 {
            Some(map) => map,
            None => M::empty(),
        }
    }
}

impl<M: Empty> DerefMut for Sparse<M> {
    fn deref_mut(&mut self) -> &mut M {
        self.0.get_or_insert_with(Box::default)
    }
}

impl<'a, M: Empty> IntoIterator for &'a Sparse<M>
where
    &'a M: IntoIterator,
{
    type Item = <&'a M as IntoIterator>::Item;
    type IntoIter = <&'a M as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (**self).into_iter()
    }
}

impl<'a, M: Empty> IntoIterator for &'a mut Sparse<M>
where
    &'a mut M: IntoIterator,
{
    type Item = <&'a mut M as IntoIterator>::Item;
    type IntoIter = <&'a mut M as IntoIterator>::IntoIter;

    fn into_iter(self) -> Self::IntoIter {
        (**self).into_iter()
    }
}

impl<M: Empty + PartialEq> PartialEq for Sparse<M> {
    fn eq(&self, other: &Sparse<M>) -> bool {
        **self == **other
    }
}

impl<M: Empty + fmt::Debug> fmt::Debug for Sparse<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

impl<M: Empty + Serialize> Serialize for Sparse<M> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (**self).serialize(s)
    }
}

impl<'de, M: Empty + Deserialize<'de>> Deserialize<'de> for Sparse<M> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sparse<M>, D::Error> {
        M::deserialize(d).map(Sparse::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_map_takes_no_allocation_and_equals_one_made_empty() {
        let mut tags: Sparse<IndexMap<String, String>> = Sparse::default();
        assert!(tags.0.is_none() && tags.is_empty() && tags.get("team").is_none());
        assert_eq!(tags, Sparse::from(IndexMap::new()));
        tags.insert("team".into(), "exports".into());
        assert_eq!(tags.get("team").map(String::as_str), Some("exports"));
        tags.clear();
        assert_eq!(tags, Sparse::default());
    }

    #[test]
    fn it_is_written_and_read_as_the_map() {
        let read: Sparse<Map<String, Value>> =
            serde_json::from_str(r#"{"cpu": 256, "essential": true}"#).expect("reads");
        assert_eq!(
            serde_json::to_string(&read).expect("writes"),
            r#"{"cpu":256,"essential":true}"#
        );
        let none: Sparse<Map<String, Value>> = serde_json::from_str("{}").expect("reads");
        assert!(none.0.is_none());
        assert_eq!(serde_json::to_string(&none).expect("writes"), "{}");
    }
}

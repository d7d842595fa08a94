//! A container's environment, held compactly: a region's task definitions carry hundreds of
//! thousands of variables, nearly all with short names and values.

use std::collections::HashSet;
use std::fmt;

use compact_str::CompactString;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A container's variables: names and values in the order written, each name once (the world
/// file refuses a name listed twice, as it does any repeated key).
///
/// A name or value of up to 24 bytes is held inline, without an allocation of its own, and the
/// variables are a plain list: a container has tens of them, which a walk down the list finds
/// sooner than a hash would.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environment(Vec<(CompactString, CompactString)>);

/// From this many variables on, reading a container's environment checks for a repeated name
/// with a set instead of a walk down the list.
const WALK_LIMIT: usize = 32;

impl Environment {
    #[must_use]
    pub fn new() -> Environment {
        Environment::default()
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of variable `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of variable `name`, to change it in place.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut CompactString> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    #[must_use]
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets variable `name` to `value`: in its place when it is there, after the others when
    /// it is new. Gives back the value it replaced.
    pub fn insert(
        &mut self,
        name: impl Into<CompactString>,
        value: impl Into<CompactString>,
    ) -> Option<CompactString> {
        let name = name.into();
        let value = value.into();
        match self.get_mut(&name) {
            Some(old) => Some(std::mem::replace(old, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// Names and values, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Names, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// Values, in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|(_, v)| v.as_str())
    }

    /// Values, in order, to change them in place.
    pub fn values_mut(&mut self) -> impl ExactSizeIterator<Item = &mut CompactString> + '_ {
        self.0.iter_mut().map(|(_, v)| v)
    }

    /// Gives back the room the list grew into while it was read.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<'a> IntoIterator for &'a Environment {
    type Item = (&'a str, &'a str);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (CompactString, CompactString)>,
        fn(&'a (CompactString, CompactString)) -> (&'a str, &'a str),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// Later values of a repeated name replace earlier ones, in the first one's place.
impl<K: Into<CompactString>, V: Into<CompactString>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Environment {
        let mut env = Environment::new();
        for (name, value) in pairs {
            env.insert(name, value);
        }
        env
    }
}

impl<K: Into<CompactString>, V: Into<CompactString>, const N: usize> From<[(K, V); N]>
    for Environment
{
    fn from(pairs: [(K, V); N]) -> Environment {
        pairs.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Environment {
    type Output = CompactString;

    /// # Panics
    /// When there is no variable `name`.
    fn index(&self, name: &str) -> &CompactString {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no variable {name:?} in the environment"))
    }
}

impl Serialize for Environment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Environment, D::Error> {
        d.deserialize_map(Variables)
    }
}

struct Variables;

impl<'de> Visitor<'de> for Variables {
    type Value = Environment;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Environment, A::Error> {
        let mut vars: Vec<(CompactString, CompactString)> =
            Vec::with_capacity(access.size_hint().unwrap_or(0).min(WALK_LIMIT));
        let mut seen: HashSet<CompactString> = HashSet::new();
        while let Some(name) = access.next_key::<CompactString>()? {
            let repeated = if vars.len() < WALK_LIMIT {
                vars.iter().any(|(n, _)| *n == name)
            } else {
                if seen.is_empty() {
                    seen.extend(vars.iter().map(|(n, _)| n.clone()));
                }
                !seen.insert(name.clone())
            };
            if repeated {
                return Err(crate::limits::listed_twice(&name));
            }
            let value = access.next_value()?;
            vars.push((name, value));
        }
        vars.shrink_to_fit();
        Ok(Environment(vars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Environment, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn variables_keep_the_order_they_are_written_in() {
        let env = read(r#"{"B": "2", "A": "1", "C": "a value longer than twenty-four bytes"}"#)
            .expect("reads");
        assert_eq!(
            env.iter().collect::<Vec<_>>(),
            [
                ("B", "2"),
                ("A", "1"),
                ("C", "a value longer than twenty-four bytes")
            ]
        );
        assert_eq!(
            serde_json::to_string(&env).expect("writes"),
            r#"{"B":"2","A":"1","C":"a value longer than twenty-four bytes"}"#
        );
    }

    #[test]
    fn a_name_listed_twice_is_refused_in_a_short_environment_and_a_long_one() {
        let err = read(r#"{"A": "1", "B": "2", "A": "3"}"#).expect_err("refused");
        assert!(err.starts_with(r#""A" is listed more than once"#), "{err}");

        let mut long: Vec<String> = (0..100).map(|i| format!(r#""V{i}": "x""#)).collect();
        long.push(r#""V57": "again""#.to_owned());
        let err = read(&format!("{{{}}}", long.join(", "))).expect_err("refused");
        assert!(
            err.starts_with(r#""V57" is listed more than once"#),
            "{err}"
        );
    }

    #[test]
    fn insert_replaces_in_place_and_appends_what_is_new() {
        let mut env = Environment::from([("A", "1"), ("B", "2")]);
        assert_eq!(env.insert("A", "9").as_deref(), Some("1"));
        assert_eq!(env.insert("C", "3"), None);
        assert_eq!(env.keys().collect::<Vec<_>>(), ["A", "B", "C"]);
        assert_eq!(env["A"], "9");
        assert_eq!(env.get("D"), None);
    }
}

//! A container's environment, held compactly: a region's task definitions carry hundreds of
//! thousands of variables, nearly all with short names and values.

use std::collections::HashSet;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Key;

/// A container's variables: names and values in the order written, each name once (the world
/// file refuses a name listed twice, as it does any repeated key).
///
/// The names and values sit one after another in one string, with where each ends beside it:
/// two allocations for a container's whole environment, and four bytes of bookkeeping a piece,
/// where a string per name and value would take a header of 24 bytes and an allocation each.
/// A container has tens of variables, which a walk down the list finds sooner than a hash
/// would. Changes (a rewritten value, a masked password) write the list anew: they are few.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment {
    /// Name 0, value 0, name 1, value 1…, one after another.
    text: Box<str>,
    /// Where each name and value ends in `text`: two entries a variable.
    ends: Box<[u32]>,
}

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
        self.ends.len() / 2
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The value of variable `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[must_use]
    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets variable `name` to `value`: in its place when it is there, after the others when
    /// it is new. Gives back the value it replaced.
    pub fn insert(&mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Option<String> {
        let (name, value) = (name.as_ref(), value.as_ref());
        let old = self.get(name).map(str::to_owned);
        let mut next = Builder::with_capacity(self.text.len() + name.len() + value.len());
        for (n, v) in self.iter() {
            next.push(n, if n == name { value } else { v });
        }
        if old.is_none() {
            next.push(name, value);
        }
        *self = next.build();
        old
    }

    /// Replaces each value by what `change` makes of it; gives back whether any changed.
    pub fn change_values(&mut self, mut change: impl FnMut(&str) -> String) -> bool {
        let values: Vec<String> = self.values().map(&mut change).collect();
        if self.values().eq(values.iter().map(String::as_str)) {
            return false;
        }
        let mut next = Builder::with_capacity(self.text.len());
        for (name, value) in self.keys().zip(&values) {
            next.push(name, value);
        }
        *self = next.build();
        true
    }

    /// Names and values, in order.
    #[must_use]
    pub fn iter(&self) -> Iter<'_> {
        Iter::new(&self.text, &self.ends)
    }

    /// Names, in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.iter().map(|(n, _)| n)
    }

    /// Values, in order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

/// The variables of an [`Environment`], in order.
pub struct Iter<'a> {
    text: &'a str,
    ends: std::slice::ChunksExact<'a, u32>,
    start: usize,
}

impl<'a> Iter<'a> {
    fn new(text: &'a str, ends: &'a [u32]) -> Iter<'a> {
        Iter {
            text,
            ends: ends.chunks_exact(2),
            start: 0,
        }
    }
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let [name_end, value_end] = self.ends.next()? else {
            unreachable!("chunks of two")
        };
        let (name_end, value_end) = (*name_end as usize, *value_end as usize);
        let name = &self.text[self.start..name_end];
        let value = &self.text[name_end..value_end];
        self.start = value_end;
        Some((name, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ends.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Environment {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

/// An environment as it is written, variable after variable.
struct Builder {
    text: String,
    ends: Vec<u32>,
}

impl Builder {
    fn with_capacity(text: usize) -> Builder {
        Builder {
            text: String::with_capacity(text),
            ends: Vec::new(),
        }
    }

    /// Adds a variable; `None` once the environment would pass 4 GiB, which no container's can.
    fn try_push(&mut self, name: &str, value: &str) -> Option<()> {
        self.text.push_str(name);
        let name_end = u32::try_from(self.text.len()).ok()?;
        self.text.push_str(value);
        let value_end = u32::try_from(self.text.len()).ok()?;
        self.ends.extend([name_end, value_end]);
        Some(())
    }

    fn push(&mut self, name: &str, value: &str) {
        self.try_push(name, value)
            .expect("an environment of less than 4 GiB");
    }

    fn iter(&self) -> Iter<'_> {
        Iter::new(&self.text, &self.ends)
    }

    fn build(self) -> Environment {
        Environment {
            text: self.text.into_boxed_str(),
            ends: self.ends.into_boxed_slice(),
        }
    }
}

/// Later values of a repeated name replace earlier ones, in the first one's place.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Environment {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Environment {
        let mut names: Vec<String> = Vec::new();
        let mut values: Vec<String> = Vec::new();
        for (name, value) in pairs {
            let (name, value) = (name.as_ref(), value.as_ref());
            match names.iter().position(|n| n == name) {
                Some(at) => value.clone_into(&mut values[at]),
                None => {
                    names.push(name.to_owned());
                    values.push(value.to_owned());
                }
            }
        }
        let mut env = Builder::with_capacity(0);
        for (name, value) in names.iter().zip(&values) {
            env.push(name, value);
        }
        env.build()
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> From<[(K, V); N]> for Environment {
    fn from(pairs: [(K, V); N]) -> Environment {
        pairs.into_iter().collect()
    }
}

impl std::ops::Index<&str> for Environment {
    type Output = str;

    /// # Panics
    /// When there is no variable `name`.
    fn index(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("no variable {name:?} in the environment"))
    }
}

impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
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
        let mut env = Builder::with_capacity(0);
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(name) = access.next_key::<Key<'de>>()? {
            let name = name.as_str();
            let count = env.ends.len() / 2;
            let repeated = if count < WALK_LIMIT {
                env.iter().any(|(n, _)| n == name)
            } else {
                if seen.is_empty() {
                    seen.extend(env.iter().map(|(n, _)| n.to_owned()));
                }
                !seen.insert(name.to_owned())
            };
            if repeated {
                return Err(crate::limits::listed_twice(name));
            }
            let value = access.next_value::<Key<'de>>()?;
            env.try_push(name, value.as_str()).ok_or_else(|| {
                serde::de::Error::custom("a container's environment is larger than 4 GiB")
            })?;
        }
        Ok(env.build())
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
        assert_eq!(&env["A"], "9");
        assert_eq!(env.get("D"), None);
    }

    #[test]
    fn change_values_rewrites_every_value_and_says_whether_any_changed() {
        let mut env = Environment::from([("URL", "amqps://b-1:5671"), ("LEVEL", "info")]);
        assert!(!env.change_values(str::to_owned));
        assert!(env.change_values(|v| v.replace("b-1", "b-22")));
        assert_eq!(
            env.iter().collect::<Vec<_>>(),
            [("URL", "amqps://b-22:5671"), ("LEVEL", "info")]
        );
        assert_eq!(
            format!("{env:?}"),
            r#"{"URL": "amqps://b-22:5671", "LEVEL": "info"}"#
        );
    }
}

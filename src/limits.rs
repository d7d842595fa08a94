//! The ranges every number warren reads from its input must fall in, and the serde helpers
//! that refuse the rest while the file is parsed, so that the parser's error names the file,
//! the line and the key.
//!
//! A leaf module: it depends on nothing else in the crate.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// The longest wait warren accepts, in seconds (7 days): drain and rollout timeouts, and a
/// rehearsal's `rollout_seconds`.
pub const MAX_WAIT_SECONDS: u64 = 7 * 24 * 60 * 60;

/// The highest task definition revision (ECS allows 1,000,000 revisions per family).
pub const MAX_REVISION: u32 = 1_000_000;

/// The most tasks a service may want or run, or a deployment may run.
pub const MAX_TASKS: u32 = 1_000_000;

/// The largest message count, consumer count or parameter version: the largest integer every
/// JSON reader holds exactly (2^53 - 1).
pub const MAX_COUNT: u64 = (1 << 53) - 1;

/// A rehearsal's `rollout_seconds`: absent, or a finite number of seconds from 0 to
/// [`MAX_WAIT_SECONDS`].
///
/// # Errors
/// The deserializer's error, saying the allowed range, for anything else.
pub fn rollout_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let Some(seconds) = Option::<f64>::deserialize(d)? else {
        return Ok(None);
    };
    #[allow(clippy::cast_precision_loss)] // 604800 is exact in an f64
    let max = MAX_WAIT_SECONDS as f64;
    if seconds.is_finite() && (0.0..=max).contains(&seconds) {
        Ok(Some(seconds))
    } else {
        // 1e300 reads better than its three hundred digits.
        let shown = if seconds.abs() < 1e15 {
            seconds.to_string()
        } else {
            format!("{seconds:e}")
        };
        Err(de::Error::custom(format!(
            "{shown} is out of range: seconds from 0 to {MAX_WAIT_SECONDS} (7 days)"
        )))
    }
}

/// A task definition revision, from 1 to [`MAX_REVISION`].
///
/// # Errors
/// The deserializer's error, saying the allowed range, for anything else.
pub fn revision<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole(d, 1, u64::from(MAX_REVISION)).map(narrow)
}

/// A number of tasks, from 0 to [`MAX_TASKS`].
///
/// # Errors
/// The deserializer's error, saying the allowed range, for anything else.
pub fn tasks<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    whole(d, 0, u64::from(MAX_TASKS)).map(narrow)
}

/// A number of messages or consumers, from 0 to [`MAX_COUNT`].
///
/// # Errors
/// The deserializer's error, saying the allowed range, for anything else.
pub fn count<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    whole(d, 0, MAX_COUNT)
}

/// A map with each key once, whose values are parameter versions (1 to [`MAX_COUNT`]).
///
/// # Errors
/// The deserializer's error naming a key listed twice, or a version out of range.
pub fn parameter_versions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<IndexMap<String, i64>, D::Error> {
    d.deserialize_map(UniqueMap::<Version>(PhantomData))
        .map(|map| map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

/// A map with each key once (JSON objects may repeat a key; the last one would silently win).
///
/// # Errors
/// The deserializer's error naming the first key listed twice.
pub fn unique_map<'de, D, V>(d: D) -> Result<IndexMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    d.deserialize_map(UniqueMap::<V>(PhantomData))
}

/// An SSM parameter version.
struct Version(i64);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Version, D::Error> {
        whole(d, 1, MAX_COUNT).map(|v| Version(i64::try_from(v).unwrap_or(i64::MAX)))
    }
}

fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

struct UniqueMap<V>(PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueMap<V> {
    type Value = IndexMap<String, V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = IndexMap::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(listed_twice(&key));
            }
            let value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

/// The error for a map's key listed twice (JSON objects may repeat a key; the last one would
/// silently win).
pub fn listed_twice<E: de::Error>(key: &str) -> E {
    E::custom(format!("{key:?} is listed more than once"))
}

/// A whole number from `min` to `max`, whatever JSON or TOML type holds it.
fn whole<'de, D: Deserializer<'de>>(d: D, min: u64, max: u64) -> Result<u64, D::Error> {
    d.deserialize_any(Whole { min, max })
}

struct Whole {
    min: u64,
    max: u64,
}

impl Whole {
    fn out_of_range<E: de::Error>(&self, shown: &dyn fmt::Display) -> E {
        E::custom(format!(
            "{shown} is out of range: a whole number from {} to {}",
            self.min, self.max
        ))
    }
}

impl Visitor<'_> for Whole {
    type Value = u64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a whole number from {} to {}", self.min, self.max)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        if (self.min..=self.max).contains(&v) {
            Ok(v)
        } else {
            Err(self.out_of_range(&v))
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.out_of_range(&v)),
        }
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.out_of_range(&v)),
        }
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<u64, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.out_of_range(&v)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        #[allow(clippy::cast_precision_loss)] // only compared; MAX_COUNT is exact
        let inside = v.fract() == 0.0 && v >= self.min as f64 && v <= self.max as f64;
        if inside {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(v as u64)
        } else {
            Err(self.out_of_range(&v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        #[serde(default, deserialize_with = "rollout_seconds")]
        seconds: Option<f64>,
        #[serde(default, deserialize_with = "revision")]
        revision: u32,
        #[serde(default, deserialize_with = "tasks")]
        tasks: u32,
        #[serde(default, deserialize_with = "count")]
        count: u64,
        #[serde(default, deserialize_with = "unique_map")]
        map: IndexMap<String, String>,
        #[serde(default, deserialize_with = "parameter_versions")]
        versions: IndexMap<String, i64>,
    }

    fn parse(json: &str) -> Result<Sample, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_inside_their_ranges_are_kept() {
        let s = parse(
            r#"{"seconds": 604800, "revision": 1000000, "tasks": 0, "count": 9007199254740991,
                "versions": {"/p": 3}}"#,
        )
        .unwrap();
        assert_eq!(s.seconds, Some(604_800.0));
        assert_eq!(s.revision, MAX_REVISION);
        assert_eq!(s.tasks, 0);
        assert_eq!(s.count, MAX_COUNT);
        assert_eq!(s.versions["/p"], 3);
        let s = parse(r#"{"map": {"/p": "a", "/q": "b"}}"#).unwrap();
        assert_eq!(s.map.keys().collect::<Vec<_>>(), ["/p", "/q"]);
        assert_eq!(parse(r#"{"revision": 2.0}"#).unwrap().revision, 2);
    }

    #[test]
    fn numbers_outside_their_ranges_are_refused_saying_the_range() {
        for (json, says) in [
            (
                r#"{"seconds": 1e300}"#,
                "1e300 is out of range: seconds from 0 to 604800",
            ),
            (r#"{"seconds": -0.5}"#, "seconds from 0 to 604800"),
            (r#"{"seconds": 604800.5}"#, "seconds from 0 to 604800"),
            (r#"{"revision": 0}"#, "from 1 to 1000000"),
            (r#"{"revision": 4294967295}"#, "from 1 to 1000000"),
            (r#"{"revision": 1.5}"#, "from 1 to 1000000"),
            (r#"{"tasks": -1}"#, "from 0 to 1000000"),
            (r#"{"tasks": 1000001}"#, "from 0 to 1000000"),
            (
                r#"{"count": 9007199254740992}"#,
                "from 0 to 9007199254740991",
            ),
            (r#"{"count": 1e19}"#, "from 0 to 9007199254740991"),
            (r#"{"versions": {"/p": 0}}"#, "from 1 to 9007199254740991"),
            (r#"{"revision": "7"}"#, "a whole number from 1 to 1000000"),
        ] {
            let err = parse(json).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn a_key_listed_twice_is_refused_naming_it() {
        let err = parse(r#"{"map": {"/p": "a", "/q": "b", "/p": "c"}}"#).unwrap_err();
        assert!(err.contains("\"/p\" is listed more than once"), "{err}");
        let err = parse(r#"{"versions": {"/p": 1, "/p": 2}}"#).unwrap_err();
        assert!(err.contains("\"/p\" is listed more than once"), "{err}");
    }
}

/// The checks above as types, for deserializers written by hand (`model.rs` reads its largest
/// structs without serde's `flatten`): `Tasks` reads what `deserialize_with = "tasks"` reads.
macro_rules! checked {
    ($($(#[$doc:meta])* $name:ident($ty:ty) = $check:ident;)*) => {
        $(
            $(#[$doc])*
            pub struct $name(pub $ty);

            impl<'de> Deserialize<'de> for $name {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    $check(d).map($name)
                }
            }
        )*
    };
}

checked! {
    /// [`tasks`]' number.
    Tasks(u32) = tasks;
    /// [`revision`]'s number.
    Revision(u32) = revision;
    /// [`rollout_seconds`]' seconds.
    RolloutSeconds(Option<f64>) = rollout_seconds;
    /// [`parameter_versions`]' map.
    Versions(IndexMap<String, i64>) = parameter_versions;
}

/// [`unique_map`]'s map.
pub struct Unique<V>(pub IndexMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Unique<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        unique_map(d).map(Unique)
    }
}

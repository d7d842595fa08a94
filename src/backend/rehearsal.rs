//! The rehearsal backend: a world file (CONTRACT.md, "The world file").

use std::path::{Path, PathBuf};

use crate::backend::{Backend, ReadScope};
use crate::error::{Error, Result};
use crate::model::{World, WORLD_VERSION};

/// A world file on disk.
#[derive(Debug, Clone)]
pub struct Rehearsal {
    path: PathBuf,
}

impl Rehearsal {
    /// A backend over the world file at `path` (read on demand).
    #[must_use]
    pub fn new(path: &Path) -> Rehearsal {
        Rehearsal { path: path.to_owned() }
    }

    /// The world file's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses world-file text; `path` is only used in messages.
///
/// # Errors
/// [`Error::Input`] naming the file, line, column and key of the first problem.
pub fn parse_world(path: &Path, text: &str) -> Result<World> {
    let mut de = serde_json::Deserializer::from_str(text);
    let world: World = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        Error::Input {
            file: path.to_owned(),
            line: inner.line(),
            column: inner.column(),
            key: (key != ".").then_some(key),
            message: strip_position(&inner.to_string()),
        }
    })?;
    de.end().map_err(|e| Error::Input {
        file: path.to_owned(),
        line: e.line(),
        column: e.column(),
        key: None,
        message: strip_position(&e.to_string()),
    })?;
    if world.version != WORLD_VERSION {
        return Err(Error::Input {
            file: path.to_owned(),
            line: 0,
            column: 0,
            key: Some("version".into()),
            message: format!("world file version {} is not supported (expected {WORLD_VERSION})", world.version),
        });
    }
    Ok(world)
}

/// serde_json appends " at line L column C"; warren puts the position in front instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

impl Backend for Rehearsal {
    fn describe(&self) -> String {
        format!("world file {}", self.path.display())
    }

    fn read(&mut self, scope: &ReadScope) -> Result<World> {
        let text = std::fs::read_to_string(&self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        let mut world = parse_world(&self.path, &text)?;
        if let Some(clusters) = &scope.clusters {
            // Reading only what is in scope keeps the rehearsal honest: a plan cannot see
            // what the AWS backend would not have read either.
            world.clusters.retain(|c| clusters.contains(&c.name));
        }
        Ok(world)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_key() {
        let text = "{\n  \"version\": 1,\n  \"clusters\": [ { \"name\": 5 } ]\n}";
        let err = parse_world(Path::new("w.json"), text).unwrap_err().to_string();
        assert!(err.starts_with("w.json:3:"), "{err}");
        assert!(err.contains("clusters[0].name"), "{err}");
    }

    #[test]
    fn refuses_other_versions() {
        let err = parse_world(Path::new("w.json"), "{\"version\": 2}").unwrap_err().to_string();
        assert!(err.contains("version 2 is not supported"), "{err}");
    }
}

//! The journal: one JSON object per line, appended for every step (CONTRACT.md, "The journal").
//! `rollback` reads it back; auditors read it; tests check wave order and overlap in it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What a journal line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    Register,
    Update,
    Rollout,
    Drain,
    Rollback,
    Decommission,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Failed,
    Refused,
}

/// One line of the journal. Keys that do not apply are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub time_start: String,
    pub time_end: String,
    pub migration: String,
    pub step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_task_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<u64>,
    pub result: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Entry {
    /// An entry for `step` of `migration` that started at `start` and ends now.
    #[must_use]
    pub fn new(migration: &str, step: Step, start: SystemTime, result: Outcome) -> Entry {
        Entry {
            time_start: timestamp(start),
            time_end: timestamp(SystemTime::now()),
            migration: migration.to_owned(),
            step,
            wave: None,
            cluster: None,
            service: None,
            from_task_definition: None,
            to_task_definition: None,
            queue: None,
            messages: None,
            result,
            detail: None,
        }
    }

    /// Sets the service the entry is about.
    #[must_use]
    pub fn service(mut self, cluster: &str, service: &str) -> Entry {
        self.cluster = Some(cluster.to_owned());
        self.service = Some(service.to_owned());
        self
    }

    /// Sets the task definitions a step moved between.
    #[must_use]
    pub fn task_definitions(mut self, from: &str, to: &str) -> Entry {
        self.from_task_definition = Some(from.to_owned());
        self.to_task_definition = Some(to.to_owned());
        self
    }

    /// Sets the wave.
    #[must_use]
    pub fn wave(mut self, wave: Option<usize>) -> Entry {
        self.wave = wave;
        self
    }

    /// Sets the detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Entry {
        self.detail = Some(detail.into());
        self
    }
}

/// For each `(cluster, service)`, the last of `entries` that `counts` keeps.
#[must_use]
pub fn last_by_service(
    entries: &[Entry],
    counts: impl Fn(&Entry) -> bool,
) -> std::collections::BTreeMap<(String, String), &Entry> {
    let mut last = std::collections::BTreeMap::new();
    for entry in entries.iter().filter(|e| counts(e)) {
        if let (Some(cluster), Some(service)) = (&entry.cluster, &entry.service) {
            last.insert((cluster.clone(), service.clone()), entry);
        }
    }
    last
}

/// RFC 3339 with milliseconds, in UTC.
#[must_use]
pub fn timestamp(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// An append-only journal file.
#[derive(Debug, Clone)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// The journal at `path` (created on the first append).
    #[must_use]
    pub fn new(path: &Path) -> Journal {
        Journal {
            path: path.to_owned(),
        }
    }

    /// `warren-journal.jsonl` beside `anchor` (the world file, or the plan on AWS).
    #[must_use]
    pub fn beside(anchor: &Path) -> Journal {
        let dir = anchor.parent().unwrap_or_else(|| Path::new(""));
        Journal::new(&dir.join("warren-journal.jsonl"))
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line and syncs it to disk.
    ///
    /// # Errors
    /// [`Error::Io`] naming the journal when it cannot be written.
    pub fn append(&self, entry: &Entry) -> Result<()> {
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(entry).expect("an entry always serialises");
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)
    }

    /// Every entry of `migration`, oldest first; a missing journal has none.
    ///
    /// # Errors
    /// [`Error::Input`] naming the journal and line of an entry that cannot be read.
    pub fn entries(&self, migration: &str) -> Result<Vec<Entry>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = serde_json::from_str(line).map_err(|e| Error::Input {
                file: self.path.clone(),
                line: i + 1,
                column: e.column(),
                key: None,
                message: format!("not a journal entry: {e}"),
            })?;
            if entry.migration == migration {
                out.push(entry);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_and_reads_back_one_migration() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&dir.path().join("j.jsonl"));
        let now = SystemTime::now();
        journal
            .append(
                &Entry::new("a", Step::Update, now, Outcome::Ok)
                    .service("c", "s")
                    .task_definitions("s:1", "s:2"),
            )
            .unwrap();
        journal
            .append(&Entry::new("b", Step::Drain, now, Outcome::Ok))
            .unwrap();
        let entries = journal.entries("a").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].to_task_definition.as_deref(), Some("s:2"));
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert!(
            !text.contains("\"queue\""),
            "keys that do not apply are left out: {text}"
        );
        assert!(text.contains("\"time_start\":\""), "{text}");
    }
}

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
    /// A scheduled task pointed at the revision apply moved its service to.
    Retarget,
    /// A scheduled task put back by rollback on what it pinned before apply retargeted it.
    #[serde(rename = "retarget_rollback")]
    RetargetRollback,
    /// The check after a wave that each moved consumer consumes again on its new broker.
    Check,
    /// What was left in an old queue moved to the new broker by a shovel.
    Shovel,
    /// A definition created on the new broker before the first wave, or a service held at the
    /// gate because the new broker lacks what it needs.
    Topology,
    /// A federation upstream or policy declared on the new broker (the `federate` strategy),
    /// its links checked, or one removed again.
    Federation,
}

/// How a step ended, or that it is about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Written before a change is made (the write-ahead intent); its result follows in a later
    /// entry, unless the run was killed in between.
    Started,
    Ok,
    Failed,
    Refused,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Register => "register",
            Step::Update => "update",
            Step::Rollout => "rollout",
            Step::Drain => "drain",
            Step::Rollback => "rollback",
            Step::Decommission => "decommission",
            Step::Retarget => "retarget",
            Step::RetargetRollback => "retarget_rollback",
            Step::Check => "check",
            Step::Shovel => "shovel",
            Step::Topology => "topology",
            Step::Federation => "federation",
        })
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Started => "started",
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
        })
    }
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
    /// The scheduled task a `retarget` or `retarget_rollback` step changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleRef>,
    /// The env overrides such a step changes, as they were (passwords masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides_before: Option<crate::retarget::Overrides>,
    /// The same overrides as the step leaves them (passwords masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides_after: Option<crate::retarget::Overrides>,
    /// What a `federation` step declares on the new broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Declared>,
    /// What a `federation` step removes from the new broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<Declared>,
}

/// A federation upstream or policy warren declares on the new broker for the `federate`
/// strategy, and removes again once the old queues are empty (or on rollback).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Declared {
    pub kind: DeclaredKind,
    pub vhost: String,
    pub name: String,
}

/// What kind of thing a [`Declared`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeclaredKind {
    Upstream,
    Policy,
}

impl std::fmt::Display for Declared {
    /// `upstream warren-m`, `policy warren-federate-q`, with the vhost where it is not `/`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            DeclaredKind::Upstream => "upstream",
            DeclaredKind::Policy => "policy",
        };
        write!(f, "{kind} {}", self.name)?;
        if self.vhost != "/" {
            write!(f, " in vhost {}", self.vhost)?;
        }
        Ok(())
    }
}

/// Which scheduled task a journal entry is about: an EventBridge rule's target or a Scheduler
/// schedule, named as the backend finds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScheduleRef {
    pub kind: crate::model::ScheduleKind,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default)]
    pub cluster: String,
}

impl ScheduleRef {
    /// The reference to `schedule`.
    #[must_use]
    pub fn of(schedule: &crate::model::Schedule) -> ScheduleRef {
        ScheduleRef {
            kind: schedule.kind,
            name: schedule.name.clone(),
            bus: schedule.bus.clone(),
            group: schedule.group.clone(),
            target: schedule.target.clone(),
            cluster: schedule.cluster.clone(),
        }
    }

    /// Whether `schedule` is the scheduled task referred to.
    #[must_use]
    pub fn is(&self, schedule: &crate::model::Schedule) -> bool {
        crate::retarget::same_schedule(
            schedule,
            &crate::model::Schedule {
                kind: self.kind,
                name: self.name.clone(),
                bus: self.bus.clone(),
                group: self.group.clone(),
                target: self.target.clone(),
                cluster: self.cluster.clone(),
                ..crate::model::Schedule::default()
            },
        )
    }
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
            schedule: None,
            overrides_before: None,
            overrides_after: None,
            declared: None,
            removed: None,
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

/// A copy of the journal that every operator of a migration shares (on AWS, the lock table):
/// when there is one, it decides resume, rollback and status.
pub trait SharedJournal {
    /// Where the shared copy is, for messages ("DynamoDB table warren-locks").
    fn describe(&self) -> String;

    /// Appends `entry` after every entry already there.
    ///
    /// # Errors
    /// [`Error::Backend`] when the entry cannot be written.
    fn append(&self, entry: &Entry) -> Result<()>;

    /// Every entry of `migration`, oldest first.
    ///
    /// # Errors
    /// [`Error::Backend`] when the entries cannot be read.
    fn entries(&self, migration: &str) -> Result<Vec<Entry>>;
}

/// The entries of one migration, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    /// Oldest first.
    pub list: Vec<Entry>,
    /// A last line that is not a whole entry (a write cut short by a crash), ignored: where it is,
    /// for a warning.
    pub torn: Option<String>,
}

/// The migration's journal: an append-only JSON-lines file, and the shared copy when there is
/// one. Every entry goes to both before the change it announces is made.
pub struct Journal {
    path: PathBuf,
    shared: Option<Box<dyn SharedJournal>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("shared", &self.shared.as_ref().map(|s| s.describe()))
            .finish()
    }
}

impl Journal {
    /// The journal at `path` (created on the first append).
    #[must_use]
    pub fn new(path: &Path) -> Journal {
        Journal {
            path: path.to_owned(),
            shared: None,
        }
    }

    /// `warren-journal.jsonl` beside `anchor` (the world file, or the plan on AWS).
    #[must_use]
    pub fn beside(anchor: &Path) -> Journal {
        let dir = anchor.parent().unwrap_or_else(|| Path::new(""));
        Journal::new(&dir.join("warren-journal.jsonl"))
    }

    /// The same journal, with a shared copy that decides what was done.
    #[must_use]
    pub fn with_shared(mut self, shared: Box<dyn SharedJournal>) -> Journal {
        self.shared = Some(shared);
        self
    }

    /// The journal's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the journal is, for messages: the file, and the shared copy if any.
    #[must_use]
    pub fn describe(&self) -> String {
        match &self.shared {
            Some(shared) => format!("{} and {}", self.path.display(), shared.describe()),
            None => self.path.display().to_string(),
        }
    }

    /// Appends one line and syncs it to disk, then to the shared copy. A file whose last line
    /// was torn by a crash gets a line break first, so the new entry stands on a line of its own.
    ///
    /// # Errors
    /// [`Error::Io`] naming the journal when it cannot be written, [`Error::Backend`] when the
    /// shared copy cannot: the caller must not make the change the entry announces.
    pub fn append(&self, entry: &Entry) -> Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends `entries` in order, as [`Journal::append`] does each, with one write and one
    /// sync to disk for all of them: what a batch of changes announces, or the results of one.
    /// Nothing is written for no entries. A crash during the write leaves the entries before
    /// some point, and at most one torn line after them.
    ///
    /// # Errors
    /// As [`Journal::append`]: the caller must not make the changes the entries announce.
    pub fn append_all(&self, entries: &[Entry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut line = String::new();
        for entry in entries {
            line.push_str(&serde_json::to_string(entry).expect("an entry always serialises"));
            line.push('\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        if ends_torn(&mut file).map_err(io)? {
            line.insert(0, '\n');
        }
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        if let Some(shared) = &self.shared {
            for entry in entries {
                shared.append(entry)?;
            }
        }
        Ok(())
    }

    /// Every entry of `migration`, oldest first: from the shared copy when there is one, else
    /// from the file (a missing file has none). A torn last line is reported, not an error.
    ///
    /// # Errors
    /// [`Error::Input`] naming the journal and line of an entry that cannot be read before the
    /// last line; [`Error::Backend`] when the shared copy cannot be read.
    pub fn entries(&self, migration: &str) -> Result<Entries> {
        if let Some(shared) = &self.shared {
            return Ok(Entries {
                list: shared.entries(migration)?,
                torn: None,
            });
        }
        self.file_entries(migration)
    }

    fn file_entries(&self, migration: &str) -> Result<Entries> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Entries::default()),
            Err(source) => {
                return Err(Error::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let mut out = Entries::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: Entry = match serde_json::from_str(line) {
                Ok(entry) => entry,
                // A line cut short by a crash (the JSON simply stops) announced a change that
                // was never made: the change follows its entry's write. Anything else is damage.
                Err(e) if e.is_eof() => {
                    out.torn = Some(format!(
                        "{}:{}: a torn line (a write cut short by a crash) is ignored",
                        self.path.display(),
                        i + 1
                    ));
                    continue;
                }
                Err(e) => {
                    return Err(Error::Input {
                        file: self.path.clone(),
                        line: i + 1,
                        column: e.column(),
                        key: None,
                        message: format!("not a journal entry: {e}"),
                    })
                }
            };
            if entry.migration == migration {
                out.list.push(entry);
            }
        }
        Ok(out)
    }
}

/// Whether `file` is not empty and does not end with a line break.
fn ends_torn(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
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
        let entries = journal.entries("a").unwrap().list;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].to_task_definition.as_deref(), Some("s:2"));
        let text = std::fs::read_to_string(journal.path()).unwrap();
        assert!(
            !text.contains("\"queue\""),
            "keys that do not apply are left out: {text}"
        );
        assert!(text.contains("\"time_start\":\""), "{text}");
    }

    #[test]
    fn a_torn_last_line_is_reported_and_the_next_entry_starts_a_new_line() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(&dir.path().join("j.jsonl"));
        let now = SystemTime::now();
        journal
            .append(&Entry::new("a", Step::Drain, now, Outcome::Ok))
            .unwrap();
        let mut text = std::fs::read_to_string(journal.path()).unwrap();
        text.push_str("{\"time_start\":\"20");
        std::fs::write(journal.path(), &text).unwrap();

        let read = journal.entries("a").unwrap();
        assert_eq!(read.list.len(), 1);
        assert!(read.torn.unwrap().contains("j.jsonl:2: a torn line"));

        journal
            .append(&Entry::new("a", Step::Update, now, Outcome::Started))
            .unwrap();
        let read = journal.entries("a").unwrap();
        assert_eq!(
            read.list.len(),
            2,
            "the next entry stands on a line of its own"
        );
        assert!(read.torn.is_some());

        std::fs::write(journal.path(), "{\"time_start\": 5}\n").unwrap();
        let err = journal.entries("a").unwrap_err().to_string();
        assert!(
            err.contains("j.jsonl:1"),
            "a damaged line is an error: {err}"
        );
    }
}

//! The migration lock: one `apply`, `rollback` or `decommission` of a migration at a time.
//!
//! The lock is a file created exclusively beside the world file (or the plan). It names its
//! holder; a lock whose process is gone from this host is taken over with a warning, and
//! `warren unlock --lock-id ID` removes one by hand.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub id: String,
    pub migration: String,
    pub command: String,
    pub pid: u32,
    pub host: String,
    pub time: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "lock {} held by `warren {}` (pid {} on {}) since {}",
            self.id, self.command, self.pid, self.host, self.time
        )
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    pub holder: Holder,
}

/// The lock file of `migration` in folder `dir`.
#[must_use]
pub fn path_for(dir: &Path, migration: &str) -> PathBuf {
    let safe: String = migration
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!(".warren-{safe}.lock"))
}

/// This machine's host name.
#[must_use]
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map_or_else(|| "localhost".to_owned(), |h| h.trim().to_owned())
}

/// Whether process `pid` still runs on this host (unknown counts as running).
#[must_use]
pub fn alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

fn read_holder(path: &Path) -> Result<Option<Holder>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::Refused(format!(
                "lock file {} cannot be read ({e}); remove it once no warren runs for this migration",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Holder {
    /// A new holder: this process, running `command` on `migration`, now.
    #[must_use]
    pub fn new(migration: &str, command: &str) -> Holder {
        let now = SystemTime::now();
        let pid = std::process::id();
        let seed = format!("{pid}-{now:?}-{migration}-{}", this_host());
        let id = Sha256::digest(seed.as_bytes())
            .iter()
            .take(6)
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        Holder {
            id,
            migration: migration.to_owned(),
            command: command.to_owned(),
            pid,
            host: this_host(),
            time: crate::journal::timestamp(now),
        }
    }

    /// Whether the holder is a process of this host that is gone.
    #[must_use]
    pub fn is_dead_here(&self) -> bool {
        self.host == this_host() && !alive(self.pid)
    }
}

impl Lock {
    /// Takes the lock at `path` for `command` on `migration`.
    ///
    /// Returns the lock and, when a dead holder's lock was taken over, a warning saying so.
    ///
    /// # Errors
    /// [`Error::Refused`] naming the holder while another live process holds the lock.
    pub fn acquire(path: &Path, migration: &str, command: &str) -> Result<(Lock, Option<String>)> {
        let holder = Holder::new(migration, command);
        let mut warning = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(file) => {
                    serde_json::to_writer_pretty(&file, &holder).map_err(|e| Error::Io {
                        path: path.to_owned(),
                        source: e.into(),
                    })?;
                    file.sync_all().map_err(|source| Error::Io {
                        path: path.to_owned(),
                        source,
                    })?;
                    return Ok((
                        Lock {
                            path: path.to_owned(),
                            holder,
                        },
                        warning,
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let Some(other) = read_holder(path)? else {
                        continue;
                    };
                    if other.is_dead_here() {
                        warning = Some(format!(
                            "took over {other}: that process is gone (it was killed or crashed; `warren apply` resumes from the real state)"
                        ));
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    return Err(Error::Refused(format!(
                        "migration {migration} is locked: {other}. If that run is gone, release it with `warren unlock --lock-id {}`",
                        other.id
                    )));
                }
                Err(source) => {
                    return Err(Error::Io {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
        Err(Error::Refused(format!(
            "the lock {} keeps changing; try again",
            path.display()
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if let Ok(Some(current)) = read_holder(&self.path) {
            if current.id == self.holder.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

/// Removes the lock at `path` if its id is `id`, and returns who held it.
///
/// # Errors
/// [`Error::Refused`] when there is no lock, or it has another id.
pub fn unlock(path: &Path, id: &str) -> Result<Holder> {
    match read_holder(path)? {
        None => Err(Error::Refused(format!(
            "there is no lock at {}",
            path.display()
        ))),
        Some(holder) if holder.id == id => {
            std::fs::remove_file(path).map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?;
            Ok(holder)
        }
        Some(holder) => Err(Error::Refused(format!(
            "the lock's id is {}, not {id}: nothing was removed ({holder})",
            holder.id
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "esr prod");
        assert!(path.ends_with(".warren-esr_prod.lock"));
        let (lock, warning) = Lock::acquire(&path, "esr prod", "apply").unwrap();
        assert!(warning.is_none());
        let err = Lock::acquire(&path, "esr prod", "rollback")
            .unwrap_err()
            .to_string();
        assert!(err.contains(&lock.holder.id), "{err}");
        assert!(err.contains("warren apply"), "{err}");
        drop(lock);
        assert!(!path.exists());
    }

    #[test]
    fn a_dead_holder_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "m");
        let dead = Holder {
            id: "deadbeef".into(),
            migration: "m".into(),
            command: "apply".into(),
            pid: u32::MAX - 1,
            host: this_host(),
            time: "2026-01-01T00:00:00Z".into(),
        };
        std::fs::write(&path, serde_json::to_string(&dead).unwrap()).unwrap();
        let (_lock, warning) = Lock::acquire(&path, "m", "apply").unwrap();
        assert!(warning.unwrap().contains("deadbeef"));
    }

    #[test]
    fn unlock_needs_the_right_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(dir.path(), "m");
        let (lock, _) = Lock::acquire(&path, "m", "apply").unwrap();
        let id = lock.holder.id.clone();
        std::mem::forget(lock);
        assert!(unlock(&path, "nope").is_err());
        assert_eq!(unlock(&path, &id).unwrap().id, id);
        assert!(!path.exists());
    }
}

//! A plan written by `plan --out`, with a checksum of its own content.

use super::*;

/// A plan written by `plan --out`: the plan, the plan file it was made from, and a checksum of
/// both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPlan {
    pub plan: Plan,
    /// The plan file (absolute path) the plan was made from: on AWS, the migration's journal
    /// and lock sit beside it, whatever folder the saved plan is applied from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_file: Option<std::path::PathBuf>,
    /// `sha256:` of the plan's canonical JSON (and of the plan file's path).
    pub checksum: String,
}

impl SavedPlan {
    /// Wraps `plan` with its checksum.
    #[must_use]
    pub fn new(plan: Plan) -> SavedPlan {
        let checksum = checksum(&plan, None);
        SavedPlan {
            plan,
            plan_file: None,
            checksum,
        }
    }

    /// Wraps `plan` with its checksum, recording the plan file it was made from (as
    /// `SavedPlan::new(plan).made_from(plan_file)`, with the plan hashed once).
    #[must_use]
    pub fn of(plan: Plan, plan_file: &std::path::Path) -> SavedPlan {
        let checksum = checksum(&plan, Some(plan_file));
        SavedPlan {
            plan,
            plan_file: Some(plan_file.to_owned()),
            checksum,
        }
    }

    /// The same saved plan, recording the plan file it was made from.
    #[must_use]
    pub fn made_from(mut self, plan_file: &std::path::Path) -> SavedPlan {
        self.plan_file = Some(plan_file.to_owned());
        self.checksum = checksum(&self.plan, self.plan_file.as_deref());
        self
    }

    /// Whether the checksum still matches the content.
    #[must_use]
    pub fn intact(&self) -> bool {
        checksum(&self.plan, self.plan_file.as_deref()) == self.checksum
    }

    /// Reads a saved plan from `text` (`path` is only used in messages): its JSON, its
    /// checksum, its format version, and the wave numbers it refers to.
    ///
    /// # Errors
    /// [`Error::Input`] naming the file, line and key when it is not a saved plan or a wave
    /// number is out of range; [`Error::Refused`] when it was altered or has another format.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<SavedPlan> {
        let mut de = serde_json::Deserializer::from_str(text);
        let saved: SavedPlan = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| {
                let key = e.path().to_string();
                let inner = e.into_inner();
                (
                    inner.line(),
                    inner.column(),
                    (key != ".").then_some(key),
                    inner,
                )
            })
            .and_then(|saved| {
                de.end()
                    .map(|()| saved)
                    .map_err(|e| (e.line(), e.column(), None, e))
            })
            .map_err(|(line, column, key, e)| {
                let message = e.to_string();
                let message = message
                    .rfind(" at line ")
                    .map_or(message.as_str(), |i| &message[..i]);
                Error::Input {
                    file: path.to_owned(),
                    line,
                    column,
                    key,
                    message: format!("not a plan saved by `warren plan --out`: {message}"),
                }
            })?;
        if !saved.intact() {
            return Err(Error::Refused(format!(
                "{} was altered after it was saved (its checksum does not match); nothing was changed. Make a new one with `warren plan --out`",
                path.display()
            )));
        }
        if saved.plan.format_version != FORMAT_VERSION {
            return Err(Error::Refused(format!(
                "{} has plan format {}, this warren reads {FORMAT_VERSION}; nothing was changed",
                path.display(),
                saved.plan.format_version,
            )));
        }
        saved.check_waves(path)?;
        Ok(saved)
    }

    /// Every wave number a change or a drain names is one of the plan's waves.
    fn check_waves(&self, path: &std::path::Path) -> Result<()> {
        let waves = self.plan.waves.len();
        let changes = self
            .plan
            .changes
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("plan.changes[{i}].wave"), c.wave));
        let drains = self
            .plan
            .drains
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("plan.drains[{i}].wave"), d.wave));
        for (key, wave) in changes.chain(drains) {
            if let Some(wave) = wave.filter(|w| !(1..=waves).contains(w)) {
                return Err(Error::Input {
                    file: path.to_owned(),
                    line: 0,
                    column: 0,
                    key: Some(key),
                    message: if waves == 0 {
                        format!("wave {wave} is out of range: the plan has no waves")
                    } else {
                        format!("wave {wave} is out of range: the plan has waves 1 to {waves}")
                    },
                });
            }
        }
        Ok(())
    }
}

pub(super) fn checksum(plan: &Plan, plan_file: Option<&std::path::Path>) -> String {
    let mut hashing = Hashing(Sha256::new());
    serde_json::to_writer(&mut hashing, plan).expect("a plan always serialises");
    if let Some(path) = plan_file {
        hashing.0.update(b"\n");
        hashing.0.update(path.to_string_lossy().as_bytes());
    }
    format!("sha256:{}", hex(&hashing.0.finalize()))
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A SHA-256 that JSON is written into as it is made, without the text being kept.
struct Hashing(Sha256);

impl std::io::Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn digest(value: &impl Serialize) -> String {
    let mut hashing = Hashing(Sha256::new());
    serde_json::to_writer(&mut hashing, value).expect("plain data always serialises");
    format!("sha256:{}", hex(&hashing.0.finalize()))
}

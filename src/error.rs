//! One error type for the whole tool, and the one map from errors to exit codes.

use std::path::PathBuf;

/// What went wrong, in terms a user of warren can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A plan or world file that cannot be used as it stands: `file:line:column: key: message`.
    #[error("{}", located(.file, *.line, *.column, .key.as_deref(), .message))]
    Input {
        file: PathBuf,
        line: usize,
        column: usize,
        key: Option<String>,
        message: String,
    },
    /// A file that cannot be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A backend (world file, AWS, broker) that cannot be reached or refused a call.
    #[error("{0}")]
    Backend(String),
    /// Anything else the user must fix before warren can go on (stale plan, refused confirmation…).
    #[error("{0}")]
    Refused(String),
    /// `decommission` found blockers: nothing was deleted.
    #[error("decommission refused: {0}")]
    Blocked(String),
}

fn located(
    file: &std::path::Path,
    line: usize,
    column: usize,
    key: Option<&str>,
    message: &str,
) -> String {
    let mut out = format!("{}", file.display());
    if line > 0 {
        out.push_str(&format!(":{line}:{column}"));
    }
    out.push_str(": ");
    if let Some(key) = key {
        out.push_str(&format!("key `{key}`: "));
    }
    out.push_str(message);
    out
}

impl Error {
    /// The process exit code this error ends a command with: 3 for a refused decommission,
    /// 1 for everything else.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Blocked(_) => 3,
            _ => 1,
        }
    }
}

/// Results across warren.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Line and column (both from 1) of byte offset `offset` in `text`.
#[must_use]
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 8), (2, 3));
        assert_eq!(line_column(text, 999), (3, 1));
    }

    #[test]
    fn input_errors_name_file_line_and_key() {
        let e = Error::Input {
            file: "plans/x.toml".into(),
            line: 3,
            column: 7,
            key: Some("services[1].broker".into()),
            message: "unknown broker alias".into(),
        };
        assert_eq!(
            e.to_string(),
            "plans/x.toml:3:7: key `services[1].broker`: unknown broker alias"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(Error::Blocked("x".into()).exit_code(), 3);
    }
}

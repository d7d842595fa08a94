//! Renderers: each is a function of a computed value, never of the backend.

pub mod human;
pub mod json;
pub mod markdown;
pub mod report;

use anstyle::{AnsiColor, Style};

/// Whether and how to colour human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Palette {
    enabled: bool,
}

/// What a piece of human output is, for its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Update,
    Danger,
    Quiet,
    Heading,
}

impl Palette {
    /// Colour only when asked for and allowed: a terminal, no `NO_COLOR`, no `--no-color`.
    #[must_use]
    pub fn new(enabled: bool) -> Palette {
        Palette { enabled }
    }

    /// No colour at all.
    #[must_use]
    pub fn plain() -> Palette {
        Palette { enabled: false }
    }

    /// `text` in the colour of `tone`.
    #[must_use]
    pub fn paint(&self, tone: Tone, text: &str) -> String {
        if !self.enabled {
            return text.to_owned();
        }
        let style = match tone {
            Tone::Update => Style::new().fg_color(Some(AnsiColor::Yellow.into())),
            Tone::Danger => Style::new().fg_color(Some(AnsiColor::Red.into())).bold(),
            Tone::Quiet => Style::new().dimmed(),
            Tone::Heading => Style::new().bold(),
        };
        format!("{style}{text}{style:#}")
    }
}

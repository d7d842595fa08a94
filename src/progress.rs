//! Progress on stderr: one line per step, and a spinner while warren waits on a terminal.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where long-running commands report what they are doing.
#[derive(Debug)]
pub struct Progress {
    spinner: Option<ProgressBar>,
    /// Reports nothing at all (tests that run many executions in a row).
    quiet: bool,
}

impl Progress {
    /// Progress on stderr; the spinner only when stderr is a terminal.
    #[must_use]
    pub fn stderr() -> Progress {
        Progress {
            spinner: None,
            quiet: false,
        }
    }

    /// Progress that reports nothing: no lines, no spinner.
    #[must_use]
    pub fn quiet() -> Progress {
        Progress {
            spinner: None,
            quiet: true,
        }
    }

    /// Reports one step.
    pub fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.spinner {
            Some(spinner) if !spinner.is_hidden() => spinner.println(text),
            _ => eprintln!("{text}"),
        }
    }

    /// Shows `text` with a spinner until [`Progress::done_waiting`].
    pub fn waiting(&mut self, text: &str) {
        if self.quiet {
            return;
        }
        let spinner = self.spinner.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        spinner.set_message(text.to_owned());
    }

    /// Removes the spinner.
    pub fn done_waiting(&mut self) {
        if let Some(spinner) = self.spinner.take() {
            spinner.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.done_waiting();
    }
}

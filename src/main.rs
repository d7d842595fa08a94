use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match warren::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // Help and version on stdout, usage errors on stderr, as clap renders them.
            let _ = usage.print();
            return ExitCode::from(warren::cli::exit_code(&usage));
        }
    };
    match warren::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

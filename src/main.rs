use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = warren::cli::Cli::parse();
    match warren::commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

use std::process::ExitCode;

use clap::Parser;

warren::allocator!();

fn main() -> ExitCode {
    let cli = match warren::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // Help and version on stdout, usage errors on stderr, as clap renders them.
            let _ = usage.print();
            return ExitCode::from(warren::cli::exit_code(&usage));
        }
    };
    let code = match warren::commands::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            error.exit_code()
        }
    };
    // `--stats`: the calls made, also when the command failed.
    if let Some(stats) = warren::stats::summary(warren::backend::aws::max_concurrency()) {
        eprint!("{stats}");
    }
    ExitCode::from(code)
}

//! `edgeclaw-migrate`: applies pending memory migrations to a Postgres database.
//!
//! Usage: `edgeclaw-migrate [DATABASE_URL] [--dimensions N]`; the URL defaults to `EDGECLAW_DATABASE_URL`
//! and the dimensions to `EDGECLAW_EMBEDDING_DIMENSIONS` (else 1536), as the worker reads them.

use std::process::ExitCode;

use edgeclaw_memory_pg::{migrate, tokio_pg};

const USAGE: &str = "usage: edgeclaw-migrate [DATABASE_URL] [--dimensions N]";

struct Args {
    url: String,
    dimensions: usize,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut url = std::env::var("EDGECLAW_DATABASE_URL").ok();
    let mut dimensions = std::env::var("EDGECLAW_EMBEDDING_DIMENSIONS").ok();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dimensions" => dimensions = Some(args.next().ok_or("--dimensions needs a value")?),
            "-h" | "--help" => return Err(USAGE.into()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}\n{USAGE}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or(format!("no database URL: pass one or set EDGECLAW_DATABASE_URL\n{USAGE}"))?;
    let dimensions = match dimensions {
        None => 1_536,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (8..=4_096).contains(d))
            .ok_or(format!("dimensions must be a whole number between 8 and 4096, not `{d}`"))?,
    };
    Ok(Args { url, dimensions })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let result = match tokio_pg::connect(&args.url).await {
        Ok(client) => migrate(&client, args.dimensions).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(applied) if applied.is_empty() => println!("up to date"),
        Ok(applied) => println!("applied migrations {applied:?}"),
        Err(error) => {
            eprintln!("migration failed: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

//! Load the application secret with `secret-key` and say where it came from (never the value).
//!
//! ```text
//! cargo run -p secure-api-examples --bin secret -- [--dev] [--file PATH] [--env NAME]
//! ```
//!
//! The chain is: the `SECRET_KEY` environment variable (or `--env NAME`), then the key file
//! (`--file PATH`), then, with `--dev` only, a new secret saved to the key file with mode 0600.
//! Without `--dev` a missing secret is an error that names what to set. Try
//! `SECRET_KEY=changeme cargo run -p secure-api-examples --bin secret` to see a weak secret refused.

use std::process::ExitCode;

use secret_key::{Mode, SecretLoader};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut mode = Mode::Production;
    let mut loader_file = None;
    let mut env_name = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dev" => mode = Mode::Development,
            "--file" if loader_file.is_none() => loader_file = args.next(),
            "--env" if env_name.is_none() => env_name = args.next(),
            _ => {
                eprintln!("usage: secret [--dev] [--file PATH] [--env NAME]");
                return ExitCode::FAILURE;
            }
        }
    }
    let mut loader = SecretLoader::new(mode);
    if let Some(path) = loader_file {
        loader = loader.file(path);
    }
    if let Some(name) = env_name {
        loader = loader.env_var(name);
    }
    match loader.load() {
        Ok(loaded) => {
            println!(
                "secret loaded from {} ({} bytes)",
                loaded.source(),
                loaded.key().len()
            );
            for purpose in ["jwt-signing", "apikey-pepper", "signing-secret-encryption"] {
                match loaded.key().derive(purpose) {
                    Ok(sub) => println!("derived {purpose} subkey ({} bytes)", sub.len()),
                    Err(e) => println!("cannot derive {purpose}: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

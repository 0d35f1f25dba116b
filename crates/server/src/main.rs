//! The `secure-api` binary: see `secure-api --help`.

fn main() -> std::process::ExitCode {
    secure_api::cli::main()
}

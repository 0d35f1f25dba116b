//! The `secure-api` binary: see `secure-api --help`.

// mimalloc rather than the system's malloc: allocation is a tenth of a cheap request's CPU
// time with glibc's, and this made the server about 10% faster (docs/benchmarks.md, run 4).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    secure_api::cli::main()
}

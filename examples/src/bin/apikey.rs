//! Issue or check an API key with `apikey-gen`.
//!
//! ```text
//! cargo run -p secure-api-examples --bin apikey -- generate sk_live [--timestamp]
//! cargo run -p secure-api-examples --bin apikey -- check sk_live [--timestamp] KEY [STORED_HASH_HEX]
//! ```
//!
//! `generate` prints the new key once, the hash to store and the key id. `check` parses a key
//! (prefix, length, characters, checksum) and, given the stored hash, verifies it. Set
//! `APIKEY_PEPPER_HEX` (at least 64 hex characters) to hash with HMAC-SHA256 and a pepper
//! instead of plain SHA-256.

use std::process::ExitCode;

use apikey_gen::{KeyConfig, KeyHash, KeyHasher};

const USAGE: &str = "usage: apikey generate PREFIX [--timestamp]\n       apikey check PREFIX [--timestamp] KEY [STORED_HASH_HEX]";

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut args: Vec<String>) -> Result<(), String> {
    let timestamp = args.iter().any(|a| a == "--timestamp");
    args.retain(|a| a != "--timestamp");
    let [command, prefix, rest @ ..] = &args[..] else {
        return Err(USAGE.to_owned());
    };
    let hasher = match std::env::var("APIKEY_PEPPER_HEX") {
        Ok(hex) => {
            let pepper = hex_decode(&hex).ok_or("APIKEY_PEPPER_HEX is not valid hex")?;
            KeyHasher::hmac_sha256(&pepper).map_err(|e| e.to_string())?
        }
        Err(_) => KeyHasher::sha256(),
    };
    let config = KeyConfig::new(prefix)
        .map_err(|e| e.to_string())?
        .with_timestamp(timestamp)
        .with_hasher(hasher);

    match (command.as_str(), rest) {
        ("generate", []) => {
            let generated = config.generate().map_err(|e| e.to_string())?;
            println!(
                "key (shown once, not stored): {}",
                generated.key().expose_secret()
            );
            println!("stored hash:                  {}", generated.hash());
            println!("key id:                       {}", generated.id());
            println!("scanner regex:                {}", config.regex());
            Ok(())
        }
        ("check", [key, stored @ ..]) => {
            let parsed = config.parse(key).map_err(|e| format!("rejected: {e}"))?;
            println!("well-formed key {parsed:?}");
            if let [stored] = stored {
                let stored = KeyHash::from_hex(stored).map_err(|e| e.to_string())?;
                if config.hasher().verify(parsed.expose_secret(), &stored) {
                    println!("matches the stored hash");
                } else {
                    return Err("does not match the stored hash".to_owned());
                }
            }
            Ok(())
        }
        _ => Err(USAGE.to_owned()),
    }
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

//! `SecretKey`: generation, encodings, redaction, equality and weak-secret refusal.

use secret_key::{DEFAULT_SECRET_LEN, Error, MAX_SECRET_LEN, MIN_SECRET_LEN, SecretKey};

/// A strong secret in several spellings (random, fixed so the test is reproducible).
const STRONG_TEXT: &str = "q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2Ue7Ka9Wr4Xo";

#[test]
fn generated_keys_are_64_random_bytes() {
    let a = SecretKey::generate().unwrap();
    let b = SecretKey::generate().unwrap();
    assert_eq!(a.len(), DEFAULT_SECRET_LEN);
    assert!(!a.is_empty());
    assert_ne!(a, b);
    // Generated material passes the same checks configured material must pass.
    assert!(SecretKey::from_bytes(a.expose_secret()).is_ok());
    assert_eq!(SecretKey::generate_len(32).unwrap().len(), 32);
    assert!(matches!(
        SecretKey::generate_len(31),
        Err(Error::TooShort { len: 31, min: 32 })
    ));
    assert!(matches!(
        SecretKey::generate_len(MAX_SECRET_LEN + 1),
        Err(Error::TooLong { .. })
    ));
}

#[test]
fn hex_and_base64_round_trip() {
    let key = SecretKey::generate().unwrap();
    assert_eq!(SecretKey::from_hex(&key.to_hex()).unwrap(), key);
    assert_eq!(
        SecretKey::from_hex(&key.to_hex().to_uppercase()).unwrap(),
        key
    );
    assert_eq!(SecretKey::from_base64(&key.to_base64()).unwrap(), key);
    let url_safe = key.to_base64().replace('+', "-").replace('/', "_");
    assert_eq!(
        SecretKey::from_base64(url_safe.trim_end_matches('=')).unwrap(),
        key
    );
    assert!(matches!(
        SecretKey::from_hex("zz"),
        Err(Error::InvalidEncoding { encoding: "hex" })
    ));
    assert!(matches!(
        SecretKey::from_base64("*not base64*"),
        Err(Error::InvalidEncoding { encoding: "base64" })
    ));
    // Decoded material is checked too.
    assert!(matches!(
        SecretKey::from_hex(&"00".repeat(64)),
        Err(Error::Pattern { .. })
    ));
    assert!(matches!(
        SecretKey::from_hex(&key.to_hex()[..62]),
        Err(Error::TooShort { len: 31, .. })
    ));
}

#[test]
fn debug_and_errors_never_show_the_secret() {
    let key = SecretKey::from_text(STRONG_TEXT).unwrap();
    let shown = format!("{key:?}");
    assert_eq!(shown, "SecretKey([redacted; 43 bytes])");
    let weak = "changeme-changeme-changeme-changeme-1234";
    let err = SecretKey::from_text(weak).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(weak));
    let short = "Zq8xW2";
    let err = SecretKey::from_text(short).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(short));
}

#[test]
fn equality_is_by_value() {
    let a = SecretKey::from_text(STRONG_TEXT).unwrap();
    assert_eq!(a, SecretKey::from_text(STRONG_TEXT).unwrap());
    assert_eq!(a, a.clone());
    assert_ne!(
        a,
        SecretKey::from_text(&STRONG_TEXT.replace('q', "Q")).unwrap()
    );
    assert_eq!(a.expose_secret(), STRONG_TEXT.as_bytes());
}

#[test]
fn placeholders_are_refused_case_insensitively() {
    for placeholder in [
        "default_fallback_key",
        "DEFAULT_FALLBACK_KEY",
        "your_jwt_secret_key",
        "Your-JWT-Secret-Key",
        "changeme",
        "CHANGEME",
        "secret",
        "Secret",
        "password",
        "super secret",
        "test",
        "replace-me",
    ] {
        let err = SecretKey::from_text(placeholder).unwrap_err();
        assert!(matches!(err, Error::Placeholder), "{placeholder}: {err}");
        // Nor does its `Debug`, which `expect` and `?` in `main` print.
        assert_eq!(format!("{err:?}"), "Placeholder");
        // One message for every placeholder: it never repeats a piece of the value.
        assert_eq!(
            err.to_string(),
            "secret is, or contains, a known placeholder or default value, not a secret"
        );
    }
    // Long values built around a placeholder phrase are refused too.
    for padded in [
        "changeme_q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2",
        "django-insecure-q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2Ue7Ka9",
        "your_jwt_secret_key_q7Vd2Lx9Rk4Tz8Mw1Hc6Np3",
        "default_fallback_key_default_fallback_key",
        "dummy-secret-q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2",
    ] {
        assert!(
            matches!(SecretKey::from_text(padded), Err(Error::Placeholder)),
            "{padded}"
        );
    }
    // Placeholders that used to pass because only shorter phrases were looked for anywhere.
    for weak in [
        "my-jwt-secret-key-for-the-api-server-2024",
        "secret_key_base_secret_key_base_xyz12345",
        "thisisasecretkeyfortestingpurposesonly",
        "please-change-this-secret-key-in-production",
        "qwertyuiopasdfghjklzxcvbnm123456",
        "your-256-bit-secret-your-256-bit-secret",
    ] {
        assert!(
            matches!(SecretKey::from_text(weak), Err(Error::Placeholder)),
            "{weak}"
        );
    }
    // Random material whose only letters and digits spell a short placeholder is a sound key:
    // only text as typed is compared with the short words.
    assert!(SecretKey::from_text("f197ff64effa15e37f65ffffe2ff7625").is_ok());
    let mut bytes = [0_u8; 32];
    let mut state = 0x2545_f491_u32;
    for b in &mut bytes {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        *b = 0x80 | (state >> 24).to_le_bytes()[0];
    }
    bytes[5..8].copy_from_slice(b"KeY");
    assert!(SecretKey::from_bytes(&bytes).is_ok());
    // A hex- or base64-encoded placeholder is judged by what it decodes to.
    let hex_placeholder = hex::encode("changeme-please-this-is-long-enough");
    assert!(matches!(
        SecretKey::from_text(&hex_placeholder),
        Err(Error::Placeholder)
    ));
    assert!(matches!(
        SecretKey::from_bytes(b"this is not a secret, please change it!"),
        Err(Error::Placeholder)
    ));
}

#[test]
fn short_and_patterned_secrets_are_refused_with_the_reason() {
    assert!(matches!(
        SecretKey::from_text("q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Y"),
        Err(Error::TooShort {
            len: 30,
            min: MIN_SECRET_LEN
        })
    ));
    for (weak, what) in [
        ("a".repeat(64), "repeated"),
        (
            "abcabcabcabcabcabcabcabcabcabcabcabc".to_owned(),
            "repeated",
        ),
        (
            "abcdefghijklmnopqrstuvwxyz0123456789".to_owned(),
            "progression",
        ),
        ("0123456789".repeat(4), "repeated"),
    ] {
        let err = SecretKey::from_text(&weak).unwrap_err();
        assert!(matches!(err, Error::Pattern { .. }), "{weak}: {err}");
        assert!(err.to_string().contains(what), "{err}");
    }
    // Few distinct symbols, not periodic: low entropy.
    let low = "aabbaabbabababbbaaabbbaabbabaaabbbabab";
    let err = SecretKey::from_text(low).unwrap_err();
    assert!(matches!(err, Error::LowEntropy { .. }), "{err}");
    assert!(err.to_string().contains("bits per symbol"));
    // Hex of a repeated byte pattern is judged on the decoded bytes.
    let err = SecretKey::from_text(&hex::encode([0xde, 0xad, 0xbe, 0xef].repeat(8))).unwrap_err();
    assert!(matches!(err, Error::Pattern { .. }), "{err}");
}

#[test]
fn strong_secrets_in_common_spellings_are_accepted() {
    let random = SecretKey::generate().unwrap();
    for text in [
        STRONG_TEXT.to_owned(),
        random.to_hex().to_string(),
        random.to_base64().to_string(),
        // 32 hex characters: 16 random bytes, 128 bits.
        "8f3a6c5e9b1d4a7f2c8e6a1f9a4c7e0b".to_owned(),
        // `secrets.token_hex(16)` whose characters measure under 3 bits each (2.998).
        "407a08da4007d00d092844ec4a42488d".to_owned(),
        // Random base64 in which a short placeholder word turns up by chance.
        "q7Vd2Lx9Rk4Tz8Mw1Hc6Np3DummyBf5Gj0Ys2Ue7Ka9".to_owned(),
        // Original-style 32 letters and digits.
        "aB3dE5gH7jK9mN1pQ3sT5vX7zB9cD1eF".to_owned(),
        // Flask's `secrets.token_hex(2048)`.
        SecretKey::generate_len(2048).unwrap().to_hex().to_string(),
    ] {
        assert!(SecretKey::from_text(&text).is_ok(), "{text}");
    }
    // 100 random 32-byte keys: the checks never refuse real randomness.
    for _ in 0..100 {
        let k = SecretKey::generate_len(32).unwrap();
        assert!(SecretKey::from_bytes(k.expose_secret()).is_ok());
        assert!(SecretKey::from_text(&k.to_hex()).is_ok());
        assert!(SecretKey::from_text(&k.to_base64()).is_ok());
    }
}

//! Format laws: what `parse` accepts and rejects, and that keys never leak through
//! formatting or errors.

use apikey_gen::{
    ApiKey, Error, KeyConfig, KeyHash, KeyHasher, MAX_BODY_LEN, MIN_BODY_LEN, generate,
    generate_token, parse,
};
use proptest::prelude::*;

fn prefix_strategy() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,14}[a-z0-9]|[a-z]"
}

fn config_strategy() -> impl Strategy<Value = KeyConfig> {
    (prefix_strategy(), MIN_BODY_LEN..=64_usize, any::<bool>()).prop_map(|(p, len, ts)| {
        KeyConfig::builder(&p)
            .body_len(len)
            .timestamp(ts)
            .build()
            .unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_keys_always_parse(config in config_strategy()) {
        let generated = generate(&config).unwrap();
        let text = generated.key().expose_secret();
        prop_assert_eq!(text.len(), config.key_len());
        let parsed = parse(&config, text).unwrap();
        prop_assert_eq!(parsed.prefix(), config.prefix());
        prop_assert_eq!(parsed.created().is_some(), config.has_timestamp());
        prop_assert!(config.hasher().verify(parsed.expose_secret(), generated.hash()));
    }

    #[test]
    fn any_changed_character_is_rejected(
        config in config_strategy(),
        pos in any::<prop::sample::Index>(),
        replacement in any::<char>(),
    ) {
        let generated = config.generate().unwrap();
        let text = generated.key().expose_secret();
        let i = pos.index(text.len());
        let original = char::from(text.as_bytes()[i]);
        prop_assume!(replacement != original);
        let mut changed = String::with_capacity(text.len() + 4);
        changed.push_str(&text[..i]);
        changed.push(replacement);
        changed.push_str(&text[i + 1..]);
        prop_assert!(config.parse(&changed).is_err());
    }

    #[test]
    fn parse_never_panics_and_errors_never_echo_input(input in ".{0,80}") {
        let config = KeyConfig::new("sk_live").unwrap().with_timestamp(true);
        if let Err(e) = config.parse(&input) {
            let shown = format!("{e} {e:?}");
            if input.len() >= 8 && !"sk_live_".contains(input.as_str()) {
                prop_assert!(!shown.contains(input.as_str()));
            }
        }
    }
}

#[test]
fn checksum_catches_every_substitution_and_adjacent_swap_on_a_sample() {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let config = KeyConfig::new("sk_live").unwrap().with_timestamp(true);
    let start = "sk_live_".len();
    let mut substitutions = 0_u64;
    let mut swaps = 0_u64;
    for _ in 0..200 {
        let generated = config.generate().unwrap();
        let key = generated.key().expose_secret().as_bytes().to_vec();
        // Only the base62 part: a change in the prefix is caught as a wrong prefix.
        for i in start..key.len() {
            for &c in ALPHABET {
                if c == key[i] {
                    continue;
                }
                let mut typo = key.clone();
                typo[i] = c;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(config.parse(&typo).unwrap_err(), Error::ChecksumMismatch);
                substitutions += 1;
            }
            if i + 1 < key.len() && key[i] != key[i + 1] {
                let mut swapped = key.clone();
                swapped.swap(i, i + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert_eq!(config.parse(&swapped).unwrap_err(), Error::ChecksumMismatch);
                swaps += 1;
            }
        }
    }
    assert!(substitutions > 500_000, "{substitutions}");
    assert!(swaps > 8_000, "{swaps}");
}

#[test]
fn parse_reports_which_check_failed() {
    let config = KeyConfig::new("sk_live").unwrap();
    let key = config.generate().unwrap();
    let text = key.key().expose_secret();

    let wrong_prefix = text.replacen("sk_live", "sk_test", 1);
    assert_eq!(
        config.parse(&wrong_prefix).unwrap_err(),
        Error::WrongPrefix {
            expected: "sk_live".into()
        }
    );
    assert!(matches!(
        config.parse("sk_livex").unwrap_err(),
        Error::WrongPrefix { .. }
    ));
    assert!(matches!(
        config.parse("").unwrap_err(),
        Error::WrongPrefix { .. }
    ));
    assert_eq!(
        config.parse(&text[..text.len() - 1]).unwrap_err(),
        Error::WrongLength {
            expected: 46,
            actual: 45
        }
    );
    let mut bad = text.to_owned();
    bad.replace_range(20..21, "-");
    assert_eq!(
        config.parse(&bad).unwrap_err(),
        Error::InvalidCharacter { position: 20 }
    );
    // A multi-byte character keeps the length check honest (bytes, not chars).
    let mut accented = text[..text.len() - 2].to_owned();
    accented.push('é');
    assert_eq!(
        config.parse(&accented).unwrap_err(),
        Error::InvalidCharacter {
            position: text.len() - 2
        }
    );
    // A legacy raw token is not a structured key.
    let legacy = generate_token(32).unwrap();
    assert!(config.parse(legacy.expose_secret()).is_err());
}

#[test]
fn configuration_is_validated() {
    for bad in [
        "",
        "Sk",
        "1sk",
        "_sk",
        "sk_",
        "sk-live",
        "sk live",
        "abcdefghijklmnopq",
        "ské",
    ] {
        assert!(
            matches!(KeyConfig::new(bad), Err(Error::InvalidPrefix { .. })),
            "{bad:?}"
        );
    }
    for good in ["a", "sk_live", "ghp", "svc_2", "abcdefghijklmnop"] {
        assert!(KeyConfig::new(good).is_ok(), "{good:?}");
    }
    let config = |len| KeyConfig::builder("sk").body_len(len).build();
    assert!(matches!(
        config(MIN_BODY_LEN - 1),
        Err(Error::InvalidBodyLength { .. })
    ));
    assert!(config(MAX_BODY_LEN + 1).is_err());
    assert_eq!(config(MAX_BODY_LEN).unwrap().body_len(), MAX_BODY_LEN);
    assert!(matches!(
        KeyHasher::hmac_sha256(&[1; 31]),
        Err(Error::PepperTooShort { len: 31, min: 32 })
    ));
    assert!(matches!(
        generate_token(21),
        Err(Error::InvalidTokenLength { .. })
    ));
    assert!(matches!(
        generate_token(1025),
        Err(Error::InvalidTokenLength { .. })
    ));
}

#[test]
fn regex_describes_the_key_shape() {
    let config = KeyConfig::new("sk_live").unwrap().with_timestamp(true);
    assert_eq!(config.regex(), r"\bsk_live_[0-9A-Za-z]{44}\b");
    assert_eq!(config.key_len(), "sk_live_".len() + 44);
}

#[test]
fn keys_sort_by_creation_time() {
    use std::time::{Duration, UNIX_EPOCH};
    let config = KeyConfig::new("sk").unwrap().with_timestamp(true);
    let times = [
        0_u64,
        61,
        62,
        3_843,
        1_700_000_000,
        1_763_870_400,
        56_800_235_583,
    ];
    let keys: Vec<String> = times
        .iter()
        .map(|&s| {
            let k = config
                .generate_at(UNIX_EPOCH + Duration::from_secs(s))
                .unwrap();
            let created = config.parse(k.key().expose_secret()).unwrap().created();
            assert_eq!(created, Some(UNIX_EPOCH + Duration::from_secs(s)));
            k.key().expose_secret().to_owned()
        })
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        config
            .generate_at(UNIX_EPOCH + Duration::from_secs(56_800_235_584))
            .unwrap_err(),
        Error::TimestampOutOfRange
    );
}

#[test]
fn secrets_are_redacted() {
    let config = KeyConfig::new("sk_live").unwrap();
    let generated = config.generate().unwrap();
    let text = generated.key().expose_secret().to_owned();
    let body = &text[8..30];
    let parsed = config.parse(&text).unwrap();
    let token = generate_token(32).unwrap();
    let pepper = [9_u8; 32];
    let hasher = KeyHasher::hmac_sha256(&pepper).unwrap();
    for shown in [
        format!("{:?}", generated),
        format!("{}", generated.key()),
        format!("{:?}", generated.key()),
        format!("{parsed:?}"),
        format!("{token} {token:?}"),
    ] {
        assert!(!shown.contains(body), "{shown}");
        assert!(!shown.contains(token.expose_secret()), "{shown}");
    }
    assert!(format!("{parsed:?}").contains("sk_live"));
    assert!(!format!("{hasher:?}").contains("9, 9"));
    assert!(!format!("{hasher:?}").contains("0909"));
}

#[test]
fn hashes_and_keys_compare_by_value() {
    let config = KeyConfig::new("sk").unwrap();
    let a = config.generate().unwrap();
    let b = config.generate().unwrap();
    assert_eq!(*a.hash(), config.hash(a.key().expose_secret()));
    assert_ne!(a.hash(), b.hash());
    assert_ne!(a.key(), b.key());
    assert_eq!(a.key(), &a.key().clone());
    let hex = a.hash().to_hex();
    assert_eq!(KeyHash::from_hex(&hex).unwrap(), *a.hash());
    assert_eq!(KeyHash::from_hex(&hex.to_uppercase()).unwrap(), *a.hash());
    assert_eq!(KeyHash::from_bytes(*a.hash().as_bytes()), *a.hash());
    for bad in [
        "",
        "00",
        &hex[..63],
        &format!("{hex}0"),
        &hex.replacen(|_| true, "g", 1),
    ] {
        assert_eq!(
            KeyHash::from_hex(bad).unwrap_err(),
            Error::InvalidHash,
            "{bad}"
        );
    }
    // Peppered and plain hashes of the same key differ; different peppers differ.
    let p1 = KeyHasher::hmac_sha256(&[1; 32]).unwrap();
    let p2 = KeyHasher::hmac_sha256(&[2; 32]).unwrap();
    let k = a.key().expose_secret();
    assert_ne!(p1.hash(k), config.hash(k));
    assert_ne!(p1.hash(k), p2.hash(k));
    assert!(p1.is_peppered() && !config.hasher().is_peppered());
    let _: &ApiKey = a.key();
}

#[test]
fn tokens_are_letters_and_digits() {
    for len in [22, 32, 100] {
        let t = generate_token(len).unwrap();
        assert_eq!(t.expose_secret().len(), len);
        assert!(t.expose_secret().bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}

//! Known-answer vectors for the checksum and the stored hash, computed independently with
//! Python's `zlib` and `hashlib`/`hmac` (see `tests/data/README.md`).

use std::time::{Duration, UNIX_EPOCH};

use apikey_gen::{CHECKSUM_LEN, Error, KeyConfig, KeyHash, KeyHasher, KeyId, TIMESTAMP_LEN};

const CHECKSUMS: &str = include_str!("data/checksum.txt");
const HASHES: &str = include_str!("data/hash.txt");

fn lines(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().collect())
}

/// The configuration a vector key was made with, read off its shape.
fn config_for(key: &str, timestamp: Option<u64>) -> KeyConfig {
    let sep = key.rfind('_').unwrap();
    let prefix = &key[..sep];
    let ts_len = if timestamp.is_some() {
        TIMESTAMP_LEN
    } else {
        0
    };
    let body_len = key.len() - sep - 1 - ts_len - CHECKSUM_LEN;
    KeyConfig::builder(prefix)
        .body_len(body_len)
        .timestamp(timestamp.is_some())
        .build()
        .unwrap()
}

#[test]
fn checksum_vectors_parse_and_a_wrong_checksum_fails() {
    let mut count = 0;
    for fields in lines(CHECKSUMS) {
        let [key, _crc_hex, ts] = fields[..] else {
            panic!("bad line {fields:?}")
        };
        let timestamp = (ts != "-").then(|| ts.parse::<u64>().unwrap());
        let config = config_for(key, timestamp);
        let parsed = config.parse(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(
            parsed.created(),
            timestamp.map(|s| UNIX_EPOCH + Duration::from_secs(s))
        );

        // Every other value of the last checksum digit must be rejected.
        let (head, last) = key.split_at(key.len() - 1);
        for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".chars() {
            if c.to_string() != last {
                let forged = format!("{head}{c}");
                assert_eq!(config.parse(&forged).unwrap_err(), Error::ChecksumMismatch);
            }
        }
        count += 1;
    }
    assert_eq!(count, 8);
}

#[test]
fn generated_key_with_fixed_time_has_the_vector_timestamp_part() {
    // 1763870400 s is `1vN1Ga` in the vector file.
    let config = KeyConfig::new("sk_live").unwrap().with_timestamp(true);
    let key = config
        .generate_at(UNIX_EPOCH + Duration::from_secs(1_763_870_400))
        .unwrap();
    assert!(key.key().expose_secret().starts_with("sk_live_1vN1Ga"));
}

#[test]
fn hash_vectors_sha256_and_hmac() {
    let pepper_line = HASHES.lines().next().unwrap();
    let pepper = hex::decode(pepper_line.rsplit(' ').next().unwrap()).unwrap();
    let plain = KeyHasher::sha256();
    let peppered = KeyHasher::hmac_sha256(&pepper).unwrap();
    let mut count = 0;
    for fields in lines(HASHES) {
        let [key, sha, mac] = fields[..] else {
            panic!("bad line {fields:?}")
        };
        let key = if key == "<empty>" { "" } else { key };
        assert_eq!(plain.hash(key).to_hex(), sha, "sha256 of {key:?}");
        assert_eq!(peppered.hash(key).to_hex(), mac, "hmac of {key:?}");
        assert!(plain.verify(key, &KeyHash::from_hex(sha).unwrap()));
        assert!(peppered.verify(key, &KeyHash::from_hex(mac).unwrap()));
        assert!(!peppered.verify(key, &KeyHash::from_hex(sha).unwrap()));
        count += 1;
    }
    assert_eq!(count, 11);
}

#[test]
fn key_id_is_prefix_and_hash_start() {
    let hash =
        KeyHash::from_hex("02845b53eb684f4b1f139b8bf9be87d3896e8a8934e0e536326ea1d507a03b45")
            .unwrap();
    assert_eq!(
        KeyId::new(Some("sk_live"), &hash).as_str(),
        "sk_live_...02845b53eb68"
    );
    assert_eq!(KeyId::new(None, &hash).to_string(), "...02845b53eb68");
}

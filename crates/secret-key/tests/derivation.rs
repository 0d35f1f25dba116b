//! HKDF-SHA256: RFC 5869 vectors and the subkey construction.

use secret_key::{Error, Keyring, SUBKEY_LEN, SecretKey, hkdf_sha256};

const RFC5869: &str = include_str!("data/rfc5869.txt");
const DERIVE: &str = include_str!("data/derive.txt");

fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        Vec::new()
    } else {
        hex::decode(s).unwrap()
    }
}

fn master() -> SecretKey {
    let line = DERIVE.lines().next().unwrap();
    SecretKey::from_hex(line.rsplit(' ').next().unwrap()).unwrap()
}

#[test]
fn rfc5869_test_vectors() {
    let mut count = 0;
    for line in RFC5869.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let [_name, ikm, salt, info, len, _prk, okm] = f[..] else {
            panic!("bad line {line}")
        };
        let mut out = vec![0_u8; len.parse().unwrap()];
        hkdf_sha256(&unhex(salt), &unhex(ikm), &unhex(info), &mut out).unwrap();
        assert_eq!(hex::encode(&out), okm, "{line}");
        count += 1;
    }
    assert_eq!(count, 3);
}

#[test]
fn hkdf_output_length_is_limited() {
    let mut out = vec![0_u8; 255 * 32 + 1];
    assert!(matches!(
        hkdf_sha256(b"", b"ikm", b"", &mut out),
        Err(Error::DerivedLength { len: 8161 })
    ));
    let mut out = vec![0_u8; 255 * 32];
    assert!(hkdf_sha256(b"", b"ikm", b"", &mut out).is_ok());
}

#[test]
fn derive_matches_independent_vectors() {
    let master = master();
    let mut count = 0;
    for line in DERIVE.lines().filter(|l| l.starts_with("derive ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let sub = master.derive(f[1]).unwrap();
        assert_eq!(sub.len(), SUBKEY_LEN);
        assert_eq!(sub.to_hex().as_str(), f[2], "{}", f[1]);
        count += 1;
    }
    assert_eq!(count, 4);
}

#[test]
fn subkeys_are_independent_of_each_other_and_the_master() {
    let master = SecretKey::generate().unwrap();
    let jwt = master.derive("jwt-signing").unwrap();
    let pepper = master.derive("apikey-pepper").unwrap();
    assert_ne!(jwt, pepper);
    assert_ne!(jwt.expose_secret(), &master.expose_secret()[..32]);
    // Deterministic: the same master and purpose give the same subkey after a restart.
    assert_eq!(jwt, master.derive("jwt-signing").unwrap());
    // A different master gives a different subkey for the same purpose.
    assert_ne!(
        jwt,
        SecretKey::generate()
            .unwrap()
            .derive("jwt-signing")
            .unwrap()
    );
    assert!(matches!(master.derive(""), Err(Error::InvalidPurpose)));
    assert!(matches!(
        master.derive(&"x".repeat(256)),
        Err(Error::InvalidPurpose)
    ));
}

#[test]
fn keyring_derives_per_purpose_rings() {
    let old = SecretKey::generate().unwrap();
    let new = SecretKey::generate().unwrap();
    let ring = Keyring::new(new.clone()).with_fallbacks([old.clone()]);
    let jwt_ring = ring.derive("jwt-signing").unwrap();
    assert_eq!(jwt_ring.current(), &new.derive("jwt-signing").unwrap());
    assert_eq!(jwt_ring.fallbacks(), &[old.derive("jwt-signing").unwrap()]);
}

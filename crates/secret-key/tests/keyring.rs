//! Rotation: the current key signs, every key verifies (Flask CVE-2025-47278).

use hmac::{Hmac, KeyInit, Mac};
use secret_key::{KeyMatch, Keyring, SecretKey};
use sha2::Sha256;

const DERIVE: &str = include_str!("data/derive.txt");

fn hmac(key: &SecretKey, msg: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.expose_secret()).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[test]
fn the_current_key_signs_not_a_fallback() {
    let current = SecretKey::generate().unwrap();
    let newer_fallback = SecretKey::generate().unwrap();
    let oldest_fallback = SecretKey::generate().unwrap();
    let ring = Keyring::new(current.clone())
        .with_fallbacks([newer_fallback.clone(), oldest_fallback.clone()]);
    let msg = b"user=42;exp=1763870400";
    let tag = ring.sign(msg);

    // Exactly the current key's HMAC, computed independently.
    assert_eq!(tag, hmac(&current, msg));
    assert_ne!(tag, hmac(&oldest_fallback, msg));
    assert_ne!(tag, hmac(&newer_fallback, msg));
    // A ring holding only the current key accepts it; rings of the fallbacks alone do not.
    assert_eq!(
        Keyring::new(current).verify(msg, &tag),
        Some(KeyMatch::Current)
    );
    assert_eq!(Keyring::new(oldest_fallback).verify(msg, &tag), None);
    assert_eq!(Keyring::new(newer_fallback).verify(msg, &tag), None);
}

#[test]
fn sign_matches_independent_vectors() {
    let master =
        SecretKey::from_hex(DERIVE.lines().next().unwrap().rsplit(' ').next().unwrap()).unwrap();
    let ring = Keyring::new(master).with_fallbacks([SecretKey::generate().unwrap()]);
    for line in DERIVE.lines().filter(|l| l.starts_with("sign ")) {
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(hex::encode(ring.sign(f[1].as_bytes())), f[2]);
    }
}

#[test]
fn fallbacks_verify_and_say_which_key_matched() {
    let k1 = SecretKey::generate().unwrap();
    let k2 = SecretKey::generate().unwrap();
    let k3 = SecretKey::generate().unwrap();
    let msg = b"payload";
    let tag1 = Keyring::new(k1.clone()).sign(msg);
    let tag2 = Keyring::new(k2.clone()).sign(msg);

    // Rotate twice: k3 current, then k2, then k1.
    let ring = Keyring::new(k1).rotate(k2).rotate(k3.clone());
    assert_eq!(ring.current(), &k3);
    assert_eq!(ring.fallbacks().len(), 2);
    assert_eq!(ring.verify(msg, &tag2), Some(KeyMatch::Fallback(0)));
    assert_eq!(ring.verify(msg, &tag1), Some(KeyMatch::Fallback(1)));
    assert_eq!(ring.verify(msg, &ring.sign(msg)), Some(KeyMatch::Current));
    assert_eq!(ring.sign(msg), hmac(&k3, msg));
    assert_eq!(ring.keys().count(), 3);

    // Tampering fails with every key.
    assert_eq!(ring.verify(b"payloaD", &tag1), None);
    let mut bad = tag1;
    bad[31] ^= 1;
    assert_eq!(ring.verify(msg, &bad), None);
    assert_eq!(ring.verify(msg, &tag1[..31]), None);
    assert_eq!(ring.verify(msg, &[]), None);

    // Retiring the oldest fallback stops it verifying.
    let ring = ring.retain_fallbacks(1);
    assert_eq!(ring.verify(msg, &tag1), None);
    assert_eq!(ring.verify(msg, &tag2), Some(KeyMatch::Fallback(0)));
}

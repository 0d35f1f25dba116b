//! Sealing at rest (feature `seal`): secrets the secure-api server sealed before the code moved
//! here still open, the format is ChaCha20-Poly1305 under the purpose subkey, and fallbacks open
//! but never seal.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use proptest::prelude::*;
use secret_key::{Error, Keyring, Sealer, SecretKey};

const SEAL: &str = include_str!("data/seal.txt");

/// The value of the line `name <value>` of `seal.txt`.
fn field(name: &str) -> &'static str {
    SEAL.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("seal.txt has no `{name}` line"))
}

fn key(name: &str) -> SecretKey {
    SecretKey::from_hex(field(name)).unwrap()
}

/// Opens `sealed` with ChaCha20-Poly1305 directly, not through this crate.
fn open_raw(subkey: &[u8], id: &str, sealed: &str) -> Option<Vec<u8>> {
    let bytes = hex::decode(sealed).ok()?;
    let (nonce, ciphertext) = bytes.split_at(12);
    ChaCha20Poly1305::new_from_slice(subkey)
        .unwrap()
        .decrypt(
            &Nonce::from(<[u8; 12]>::try_from(nonce).unwrap()),
            Payload {
                msg: ciphertext,
                aad: id.as_bytes(),
            },
        )
        .ok()
}

#[test]
fn a_secret_the_server_sealed_before_the_move_still_opens() {
    let (purpose, id, sealed) = (field("purpose"), field("id"), field("sealed"));
    // The subkey is the one the server derived itself.
    assert_eq!(
        key("master").derive(purpose).unwrap().to_hex().as_str(),
        field("subkey")
    );
    let sealer = Keyring::new(key("master")).sealer(purpose).unwrap();
    let opened = sealer.open(id, sealed).unwrap();
    assert_eq!(opened.expose_secret(), field("secret").as_bytes());
    assert!(!opened.is_stale());
    let single = Sealer::new(&key("master"), purpose).unwrap();
    assert_eq!(
        single.open(id, sealed).unwrap().expose_secret(),
        field("secret").as_bytes()
    );
}

#[test]
fn what_is_sealed_now_is_nonce_and_ciphertext_under_the_purpose_subkey() {
    let (purpose, id) = (field("purpose"), field("id"));
    let subkey = hex::decode(field("subkey")).unwrap();
    // The stored vector, opened without this crate.
    assert_eq!(
        open_raw(&subkey, id, field("sealed")).unwrap(),
        field("secret").as_bytes()
    );
    // A new seal opens the same way, so a server rolled back to the old code still reads it.
    let sealer = Keyring::new(key("master")).sealer(purpose).unwrap();
    let sealed = sealer.seal(id, b"new secret").unwrap();
    assert_eq!(sealed.len(), 2 * (12 + b"new secret".len() + 16));
    assert_eq!(open_raw(&subkey, id, &sealed).unwrap(), b"new secret");
    assert_eq!(open_raw(&subkey, "key_other", &sealed), None);
    // Nonces are random: sealing twice gives two texts.
    assert_ne!(sealer.seal(id, b"new secret").unwrap(), sealed);
}

#[test]
fn after_a_rotation_the_old_seal_opens_stale_and_is_sealed_again_under_the_new_key() {
    let (purpose, id, sealed) = (field("purpose"), field("id"), field("sealed"));
    let ring = Keyring::new(key("master")).rotate(key("rotated"));
    let sealer = ring.sealer(purpose).unwrap();
    let opened = sealer.open(id, sealed).unwrap();
    assert_eq!(opened.expose_secret(), field("secret").as_bytes());
    assert!(opened.is_stale());

    // The current key seals, not the fallback.
    let resealed = sealer.seal(id, opened.expose_secret()).unwrap();
    assert!(!sealer.open(id, &resealed).unwrap().is_stale());
    let rotated_only = Keyring::new(key("rotated")).sealer(purpose).unwrap();
    assert!(!rotated_only.open(id, &resealed).unwrap().is_stale());
    let master_only = Keyring::new(key("master")).sealer(purpose).unwrap();
    assert!(matches!(
        master_only.open(id, &resealed),
        Err(Error::SealOpen)
    ));

    // Once the fallback is retired, the old text no longer opens.
    assert!(matches!(
        rotated_only.open(id, sealed),
        Err(Error::SealOpen)
    ));
}

#[test]
fn a_sealed_secret_moved_to_another_id_does_not_open() {
    let (purpose, sealed) = (field("purpose"), field("sealed"));
    let ring = Keyring::new(key("master")).rotate(key("rotated"));
    let sealer = ring.sealer(purpose).unwrap();
    for other in ["key_3f9a0d", "", "KEY_3F9A0C", "key_3f9a0c "] {
        assert!(
            matches!(sealer.open(other, sealed), Err(Error::SealOpen)),
            "{other:?}"
        );
    }
}

#[test]
fn errors_name_no_secret_and_no_ciphertext() {
    let sealer = Keyring::new(key("master"))
        .sealer(field("purpose"))
        .unwrap();
    let sealed = field("sealed");
    for error in [
        sealer.open("key_other", sealed).unwrap_err(),
        sealer.open(field("id"), &sealed[..40]).unwrap_err(),
        sealer.open(field("id"), "not hex").unwrap_err(),
    ] {
        let message = error.to_string();
        assert!(!message.contains(&sealed[..24]), "{message}");
        assert!(!message.contains(field("secret")), "{message}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A sealed secret opens to itself for its id, and not for another id or once altered.
    #[test]
    fn sealing_round_trips_and_binds_the_id(
        secret in proptest::collection::vec(any::<u8>(), 0..200),
        id in "[a-z0-9_]{0,24}",
        flip in any::<prop::sample::Index>(),
    ) {
        let sealer = Keyring::new(key("master")).sealer(field("purpose")).unwrap();
        let sealed = sealer.seal(&id, &secret).unwrap();
        let opened = sealer.open(&id, &sealed).unwrap();
        prop_assert_eq!(opened.expose_secret(), &secret[..]);
        let other = format!("{id}x");
        prop_assert!(matches!(sealer.open(&other, &sealed), Err(Error::SealOpen)));
        let mut bytes = hex::decode(&sealed).unwrap();
        let i = flip.index(bytes.len());
        bytes[i] ^= 1;
        prop_assert!(matches!(sealer.open(&id, &hex::encode(bytes)), Err(Error::SealOpen)));
    }
}

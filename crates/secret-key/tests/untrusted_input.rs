//! Arbitrary text as a secret: never a panic, never echoed in an error.

use proptest::prelude::*;
use secret_key::SecretKey;

proptest! {
    #[test]
    fn any_text_is_accepted_or_refused_without_echo(text in ".{0,100}") {
        match SecretKey::from_text(&text) {
            Ok(key) => prop_assert_eq!(key.expose_secret(), text.as_bytes()),
            Err(e) => {
                let shown = format!("{e} {e:?}");
                if text.len() >= 12 {
                    prop_assert!(!shown.contains(text.as_str()));
                }
            }
        }
    }

    #[test]
    fn any_bytes_are_accepted_or_refused(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(key) = SecretKey::from_bytes(&bytes) {
            prop_assert!(key.len() >= 32);
        }
        let _ = SecretKey::from_hex(&hex::encode(&bytes));
        let _ = SecretKey::from_base64(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_material_is_never_refused(len in 32_usize..512) {
        let key = SecretKey::generate_len(len).unwrap();
        prop_assert!(SecretKey::from_bytes(key.expose_secret()).is_ok());
        prop_assert!(SecretKey::from_text(&key.to_hex()).is_ok());
        prop_assert!(SecretKey::from_text(&key.to_base64()).is_ok());
    }
}

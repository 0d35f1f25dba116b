//! The loading chain, step by step. The environment is injected, never mutated.

use std::collections::HashMap;
use std::ffi::OsString;
#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use secret_key::{Error, Mode, SecretFormat, SecretKey, SecretLoader, SecretSource};

const ENV_SECRET: &str = "q7Vd2Lx9Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2Ue7Ka9Wr4Xo";
const FILE_SECRET: &str = "Hp4Nz7Qw2Ck9Xr5Tm1Vb8Ly3Gd6Fs0Ja4Ue7Oi2Ks9";
const EXPLICIT_SECRET: &str = "Wm3Ty8Kq1Zr6Xb4Nd9Vc2Lh7Gp5Sj0Fe3Ra8Uo1Ix6";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let map: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
        .collect();
    move |name| map.get(name).cloned()
}

fn no_env(_: &str) -> Option<OsString> {
    None
}

fn write_key_file(path: &Path, contents: &str, mode: u32) {
    std::fs::write(path, contents).unwrap();
    #[cfg(unix)]
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    #[cfg(not(unix))]
    let _ = mode;
}

#[test]
fn explicit_value_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    write_key_file(&file, FILE_SECRET, 0o600);
    let loaded = SecretLoader::new(Mode::Production)
        .explicit(EXPLICIT_SECRET)
        .file(&file)
        .load_with_env(env(&[("SECRET_KEY", ENV_SECRET)]))
        .unwrap();
    assert_eq!(loaded.source(), &SecretSource::Explicit);
    assert_eq!(loaded.key().expose_secret(), EXPLICIT_SECRET.as_bytes());
    assert_eq!(loaded.source().to_string(), "explicit value");
}

#[test]
fn env_var_comes_before_the_file_and_its_name_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    write_key_file(&file, FILE_SECRET, 0o600);
    let loaded = SecretLoader::new(Mode::Production)
        .file(&file)
        .load_with_env(env(&[("SECRET_KEY", ENV_SECRET)]))
        .unwrap();
    assert_eq!(
        loaded.source(),
        &SecretSource::Env {
            name: "SECRET_KEY".into()
        }
    );
    assert_eq!(loaded.source().to_string(), "env SECRET_KEY");
    assert_eq!(loaded.key().expose_secret(), ENV_SECRET.as_bytes());

    let loaded = SecretLoader::new(Mode::Production)
        .env_var("FLASK_SECRET_KEY")
        .load_with_env(env(&[
            ("SECRET_KEY", FILE_SECRET),
            ("FLASK_SECRET_KEY", ENV_SECRET),
        ]))
        .unwrap();
    assert_eq!(loaded.source().to_string(), "env FLASK_SECRET_KEY");
    assert_eq!(loaded.key().expose_secret(), ENV_SECRET.as_bytes());

    // Surrounding whitespace (a trailing newline from `$(cat file)`) is trimmed.
    let loaded = SecretLoader::new(Mode::Production)
        .load_with_env(env(&[("SECRET_KEY", &format!("  {ENV_SECRET}\n"))]))
        .unwrap();
    assert_eq!(loaded.key().expose_secret(), ENV_SECRET.as_bytes());
}

#[test]
fn file_is_used_when_env_is_unset() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    write_key_file(&file, &format!("{FILE_SECRET}\n"), 0o600);
    let loaded = SecretLoader::new(Mode::Production)
        .file(&file)
        .load_with_env(no_env)
        .unwrap();
    assert_eq!(loaded.source(), &SecretSource::File { path: file.clone() });
    assert_eq!(loaded.key().expose_secret(), FILE_SECRET.as_bytes());
    assert!(loaded.source().to_string().starts_with("file "));
    // `without_env` ignores the environment entirely.
    let loaded = SecretLoader::new(Mode::Production)
        .without_env()
        .file(&file)
        .load_with_env(env(&[("SECRET_KEY", ENV_SECRET)]))
        .unwrap();
    assert_eq!(loaded.source(), &SecretSource::File { path: file });
}

#[cfg(unix)]
#[test]
fn key_file_readable_by_group_or_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o660, 0o666] {
        write_key_file(&file, FILE_SECRET, mode);
        let err = SecretLoader::new(Mode::Development)
            .file(&file)
            .load_with_env(no_env)
            .unwrap_err();
        match &err {
            Error::InsecurePermissions { path, mode: m } => {
                assert_eq!(path, &file);
                assert_eq!(*m, mode);
            }
            other => panic!("mode {mode:o}: {other}"),
        }
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // Development mode does not "fix" it by generating a new secret either.
        assert_eq!(std::fs::read_to_string(&file).unwrap(), FILE_SECRET);
    }
    for mode in [0o600, 0o400] {
        write_key_file(&file, FILE_SECRET, mode);
        assert!(
            SecretLoader::new(Mode::Production)
                .file(&file)
                .load_with_env(no_env)
                .is_ok()
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[cfg(unix)]
#[test]
fn development_mode_generates_a_private_file_once_and_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("state").join("secret");
    let first = SecretLoader::new(Mode::Development)
        .file(&file)
        .load_with_env(no_env)
        .unwrap();
    assert_eq!(
        first.source(),
        &SecretSource::Generated { path: file.clone() }
    );
    assert!(first.source().to_string().contains("generated"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(file.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode & 0o077, 0, "directory mode {dir_mode:o}");
    // Only the key file is left: the temporary file was removed.
    assert_eq!(
        std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
        1
    );

    // A restart finds the same secret in the file, in either mode.
    for mode in [Mode::Development, Mode::Production] {
        let again = SecretLoader::new(mode)
            .file(&file)
            .load_with_env(no_env)
            .unwrap();
        assert_eq!(again.source(), &SecretSource::File { path: file.clone() });
        assert_eq!(again.key(), first.key());
    }
    // Text format: the file holds 128 hex characters and the key is that text.
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(text.trim().len(), 128);
    assert_eq!(first.key().expose_secret(), text.trim().as_bytes());
}

#[test]
fn generated_secret_respects_the_format() {
    for (format, len) in [(SecretFormat::Hex, 64), (SecretFormat::Base64, 64)] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        let loader = SecretLoader::new(Mode::Development)
            .format(format)
            .file(&file);
        let first = loader.load_with_env(no_env).unwrap();
        assert_eq!(first.key().len(), len);
        let (again, source) = loader.load_with_env(no_env).unwrap().into_parts();
        assert_eq!(source, SecretSource::File { path: file });
        assert_eq!(&again, first.key());
    }
}

#[test]
fn an_existing_file_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    let loader = SecretLoader::new(Mode::Development).file(&file);
    let a = loader.load_with_env(no_env).unwrap();
    let b = loader.load_with_env(no_env).unwrap();
    assert_eq!(a.key(), b.key());
    // Two loaders racing to create the file agree on one secret.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    let keys: Vec<SecretKey> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let file = file.clone();
                s.spawn(move || {
                    SecretLoader::new(Mode::Development)
                        .file(file)
                        .load_with_env(no_env)
                        .unwrap()
                        .into_parts()
                        .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(keys.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn production_mode_never_generates_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    let err = SecretLoader::new(Mode::Production)
        .file(&file)
        .load_with_env(no_env)
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Missing { .. }));
    assert!(msg.contains("SECRET_KEY"), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(!file.exists());

    let err = SecretLoader::new(Mode::Production)
        .env_var("APP_SECRET")
        .load_with_env(no_env)
        .unwrap_err();
    assert!(err.to_string().contains("APP_SECRET"), "{err}");

    // Without a file path, development mode cannot persist a secret, so it fails too.
    let err = SecretLoader::new(Mode::Development)
        .load_with_env(no_env)
        .unwrap_err();
    assert!(matches!(err, Error::Missing { .. }));
}

#[test]
fn a_weak_or_broken_value_is_an_error_not_a_reason_to_fall_through() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    write_key_file(&file, FILE_SECRET, 0o600);
    let loader = SecretLoader::new(Mode::Development).file(&file);

    for (value, check) in [
        ("default_fallback_key", "placeholder"),
        ("changeme", "placeholder"),
        ("short-but-random-Xq8", "at least 32"),
        ("", "empty"),
        ("   ", "empty"),
    ] {
        let err = loader
            .load_with_env(env(&[("SECRET_KEY", value)]))
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::Refused { .. }), "{value:?}: {msg}");
        assert!(msg.contains("env SECRET_KEY"), "{msg}");
        assert!(msg.contains(check), "{value:?}: {msg}");
    }

    let weak_explicit = SecretLoader::new(Mode::Development)
        .explicit("your_jwt_secret_key")
        .load_with_env(no_env)
        .unwrap_err();
    assert!(weak_explicit.to_string().contains("explicit value"));

    write_key_file(&file, "secret\n", 0o600);
    let err = loader.load_with_env(no_env).unwrap_err();
    assert!(err.to_string().contains("placeholder"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "secret\n");

    // Malformed encodings name the encoding.
    let err = SecretLoader::new(Mode::Production)
        .format(SecretFormat::Hex)
        .load_with_env(env(&[("SECRET_KEY", ENV_SECRET)]))
        .unwrap_err();
    assert!(err.to_string().contains("not valid hex"), "{err}");
}

#[cfg(unix)]
#[test]
fn non_utf8_env_value_is_refused() {
    use std::os::unix::ffi::OsStringExt;
    let loader = SecretLoader::new(Mode::Production);
    let err = loader
        .load_with_env(|_| Some(OsString::from_vec(vec![0xff; 40])))
        .unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
}

#[test]
fn a_directory_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = SecretLoader::new(Mode::Development)
        .file(dir.path())
        .load_with_env(no_env)
        .unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }), "{err}");
}

#[test]
fn loader_debug_hides_the_explicit_value() {
    let loader = SecretLoader::new(Mode::Production).explicit(EXPLICIT_SECRET);
    let shown = format!("{loader:?}");
    assert!(!shown.contains(EXPLICIT_SECRET));
    assert!(shown.contains("redacted"));
}

#[test]
fn keyring_takes_fallbacks_from_the_environment() {
    use secret_key::{KeyMatch, Keyring};
    let old1 = SecretKey::generate().unwrap();
    let old2 = SecretKey::generate().unwrap();
    let fallbacks = format!(" {}, {} ,", old1.to_hex().as_str(), old2.to_hex().as_str());
    let (ring, source) = SecretLoader::new(Mode::Production)
        .format(SecretFormat::Hex)
        .load_keyring_with_env(env(&[
            ("SECRET_KEY", &SecretKey::generate().unwrap().to_hex()),
            ("SECRET_KEY_FALLBACKS", &fallbacks),
        ]))
        .unwrap();
    assert_eq!(source.to_string(), "env SECRET_KEY");
    assert_eq!(ring.fallbacks(), &[old1.clone(), old2.clone()]);
    // Data signed before the rotation still verifies; new data is signed with the current key.
    let old_tag = Keyring::new(old2).sign(b"m");
    assert_eq!(ring.verify(b"m", &old_tag), Some(KeyMatch::Fallback(1)));
    assert_ne!(ring.sign(b"m"), Keyring::new(old1).sign(b"m"));

    // No fallbacks variable: a ring of one. A custom variable name is honoured.
    let (ring, _) = SecretLoader::new(Mode::Production)
        .load_keyring_with_env(env(&[("SECRET_KEY", ENV_SECRET)]))
        .unwrap();
    assert!(ring.fallbacks().is_empty());
    let (ring, _) = SecretLoader::new(Mode::Production)
        .fallbacks_env_var("OLD_KEYS")
        .load_keyring_with_env(env(&[
            ("SECRET_KEY", ENV_SECRET),
            ("OLD_KEYS", FILE_SECRET),
        ]))
        .unwrap();
    assert_eq!(ring.fallbacks().len(), 1);

    // A weak fallback is refused and named by position.
    let err = SecretLoader::new(Mode::Production)
        .load_keyring_with_env(env(&[
            ("SECRET_KEY", ENV_SECRET),
            ("SECRET_KEY_FALLBACKS", &format!("{FILE_SECRET},changeme")),
        ]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("SECRET_KEY_FALLBACKS[1]") && msg.contains("at least 32"),
        "{msg}"
    );
    // A placeholder phrase does not keep a key from retiring: a key in use that a newer
    // version refuses as one can be rotated away from, with it as a fallback.
    let old = "q7Vd2Lx9-my-secret-key-Rk4Tz8Mw1Hc6Np3Bf5Gj0Ys2";
    assert!(matches!(SecretKey::from_text(old), Err(Error::Placeholder)));
    let (ring, _) = SecretLoader::new(Mode::Production)
        .load_keyring_with_env(env(&[
            ("SECRET_KEY", ENV_SECRET),
            ("SECRET_KEY_FALLBACKS", old),
        ]))
        .unwrap();
    assert_eq!(ring.fallbacks()[0].expose_secret(), old.as_bytes());

    // Keys one per line are refused, not read as one key with a line break in it.
    let err = SecretLoader::new(Mode::Production)
        .load_keyring_with_env(env(&[
            ("SECRET_KEY", ENV_SECRET),
            (
                "SECRET_KEY_FALLBACKS",
                &format!("{FILE_SECRET}\n{EXPLICIT_SECRET}"),
            ),
        ]))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("SECRET_KEY_FALLBACKS[0]"), "{msg}");
    assert!(!msg.contains(FILE_SECRET), "{msg}");

    // `without_env` reads no fallbacks either: keys left in the environment are not accepted.
    let (ring, _) = SecretLoader::new(Mode::Production)
        .without_env()
        .explicit(ENV_SECRET)
        .load_keyring_with_env(env(&[("SECRET_KEY_FALLBACKS", FILE_SECRET)]))
        .unwrap();
    assert!(ring.fallbacks().is_empty());
}

/// A FIFO where the key file should be is refused at once; opening it would wait for a writer
/// forever.
#[cfg(unix)]
#[test]
fn a_fifo_is_not_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("key");
    let made = std::process::Command::new("mkfifo")
        .arg("-m600")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let err = SecretLoader::new(Mode::Production)
        .without_env()
        .file(&fifo)
        .load_with_env(no_env)
        .unwrap_err();
    assert!(matches!(err, Error::NotAFile { .. }), "{err}");
}

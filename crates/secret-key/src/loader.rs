//! The loading chain: explicit value, environment variable, key file, then (development
//! only) generate and persist.

use core::fmt;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::SecretKey;
use crate::keyring::Keyring;

/// Default environment variable read by [`SecretLoader`].
pub const DEFAULT_ENV_VAR: &str = "SECRET_KEY";
/// Default environment variable holding retired keys for [`SecretLoader::load_keyring`].
pub const DEFAULT_FALLBACKS_ENV_VAR: &str = "SECRET_KEY_FALLBACKS";

/// Largest key file read, in bytes.
const MAX_FILE_LEN: u64 = 64 * 1024;

/// Whether a missing secret may be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A missing secret is generated and saved to the key file (mode 0600) so restarts keep
    /// sessions and tokens valid.
    Development,
    /// A missing secret is a start-up error naming what to set.
    Production,
}

/// How a configured secret's text becomes key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecretFormat {
    /// The text's UTF-8 bytes, as Flask and Django use `SECRET_KEY`
    /// ([`SecretKey::from_text`]). Generated secrets are written as 128 hex characters and
    /// used as that text.
    #[default]
    Text,
    /// Hex-encoded bytes ([`SecretKey::from_hex`]).
    Hex,
    /// Base64-encoded bytes ([`SecretKey::from_base64`]).
    Base64,
}

impl SecretFormat {
    fn decode(self, text: &str) -> Result<SecretKey> {
        match self {
            Self::Text => SecretKey::from_text(text),
            Self::Hex => SecretKey::from_hex(text),
            Self::Base64 => SecretKey::from_base64(text),
        }
    }
}

/// Where a loaded secret came from. Its `Display` is safe to log
/// (`env SECRET_KEY`, `file /etc/app/secret`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretSource {
    /// The value passed to [`SecretLoader::explicit`] (for example a CLI flag).
    Explicit,
    /// An environment variable.
    Env {
        /// Its name.
        name: String,
    },
    /// An existing key file.
    File {
        /// Its path.
        path: PathBuf,
    },
    /// Generated now (development mode) and saved to this key file.
    Generated {
        /// The key file written.
        path: PathBuf,
    },
}

impl fmt::Display for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Explicit => f.write_str("explicit value"),
            Self::Env { name } => write!(f, "env {name}"),
            Self::File { path } => write!(f, "file {}", path.display()),
            Self::Generated { path } => {
                write!(f, "newly generated secret saved to {}", path.display())
            }
        }
    }
}

/// A secret and where it came from.
#[derive(Debug)]
pub struct LoadedSecret {
    key: SecretKey,
    source: SecretSource,
}

impl LoadedSecret {
    /// The secret.
    #[must_use]
    pub fn key(&self) -> &SecretKey {
        &self.key
    }

    /// Where it came from (safe to log).
    #[must_use]
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Splits into the secret and its source.
    #[must_use]
    pub fn into_parts(self) -> (SecretKey, SecretSource) {
        (self.key, self.source)
    }
}

/// Finds the application secret, in order: an explicit value, an environment variable, a key
/// file, and (in [`Mode::Development`] only) a newly generated secret saved to the key file.
///
/// The first source that is present decides: a present but weak or malformed secret is an
/// error, never skipped. There is no built-in fallback value.
#[derive(Clone)]
pub struct SecretLoader {
    mode: Mode,
    explicit: Option<Zeroizing<String>>,
    env_var: Option<String>,
    /// `None`: no fallbacks from the environment ([`without_env`](SecretLoader::without_env)).
    fallbacks_env_var: Option<String>,
    file: Option<PathBuf>,
    format: SecretFormat,
}

impl fmt::Debug for SecretLoader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretLoader")
            .field("mode", &self.mode)
            .field("explicit", &self.explicit.as_ref().map(|_| "[redacted]"))
            .field("env_var", &self.env_var)
            .field("fallbacks_env_var", &self.fallbacks_env_var)
            .field("file", &self.file)
            .field("format", &self.format)
            .finish()
    }
}

impl SecretLoader {
    /// A chain that reads `SECRET_KEY` and no file.
    #[must_use]
    pub fn new(mode: Mode) -> Self {
        Self {
            mode,
            explicit: None,
            env_var: Some(DEFAULT_ENV_VAR.to_owned()),
            fallbacks_env_var: Some(DEFAULT_FALLBACKS_ENV_VAR.to_owned()),
            file: None,
            format: SecretFormat::Text,
        }
    }

    /// Uses `value` before anything else (for example from a command-line flag).
    #[must_use]
    pub fn explicit(mut self, value: impl Into<String>) -> Self {
        self.explicit = Some(Zeroizing::new(value.into()));
        self
    }

    /// Reads the environment variable `name` instead of `SECRET_KEY`.
    #[must_use]
    pub fn env_var(mut self, name: impl Into<String>) -> Self {
        self.env_var = Some(name.into());
        self
    }

    /// Does not read any environment variable: neither the key nor, for
    /// [`load_keyring`](Self::load_keyring), its fallbacks (unless
    /// [`fallbacks_env_var`](Self::fallbacks_env_var) is called after this).
    #[must_use]
    pub fn without_env(mut self) -> Self {
        self.env_var = None;
        self.fallbacks_env_var = None;
        self
    }

    /// Reads retired keys for [`load_keyring`](Self::load_keyring) from the environment
    /// variable `name` instead of `SECRET_KEY_FALLBACKS`.
    #[must_use]
    pub fn fallbacks_env_var(mut self, name: impl Into<String>) -> Self {
        self.fallbacks_env_var = Some(name.into());
        self
    }

    /// Reads (and in development mode, creates) the key file at `path`.
    #[must_use]
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// How configured text becomes key material (default [`SecretFormat::Text`]).
    #[must_use]
    pub fn format(mut self, format: SecretFormat) -> Self {
        self.format = format;
        self
    }

    /// Runs the chain against the process environment.
    pub fn load(&self) -> Result<LoadedSecret> {
        self.load_with_env(|name| std::env::var_os(name))
    }

    /// Runs the chain with `env` as the environment (so tests need not touch the process
    /// environment).
    pub fn load_with_env(&self, env: impl Fn(&str) -> Option<OsString>) -> Result<LoadedSecret> {
        if let Some(value) = &self.explicit {
            let source = SecretSource::Explicit;
            let key = self.decode(value, &source)?;
            return Ok(LoadedSecret { key, source });
        }
        if let Some(name) = &self.env_var {
            if let Some(raw) = env(name) {
                let source = SecretSource::Env { name: name.clone() };
                let text =
                    Zeroizing::new(raw.into_string().map_err(|_| {
                        refused(&source, Error::InvalidEncoding { encoding: "UTF-8" })
                    })?);
                let key = self.decode(&text, &source)?;
                return Ok(LoadedSecret { key, source });
            }
        }
        if let Some(path) = &self.file {
            match read_key_file(path)? {
                Some(text) => {
                    let source = SecretSource::File { path: path.clone() };
                    let key = self.decode(&text, &source)?;
                    return Ok(LoadedSecret { key, source });
                }
                None if self.mode == Mode::Development => return self.generate(path),
                None => {}
            }
        }
        Err(Error::Missing { hint: self.hint() })
    }

    /// Runs the chain for the current key, then reads retired keys from
    /// `SECRET_KEY_FALLBACKS` (comma-separated, most recent first, each checked like the
    /// current key) into a [`Keyring`]: sign with the current key, verify with any.
    pub fn load_keyring(&self) -> Result<(Keyring, SecretSource)> {
        self.load_keyring_with_env(|name| std::env::var_os(name))
    }

    /// [`load_keyring`](Self::load_keyring) with `env` as the environment.
    pub fn load_keyring_with_env(
        &self,
        env: impl Fn(&str) -> Option<OsString>,
    ) -> Result<(Keyring, SecretSource)> {
        let (current, source) = self.load_with_env(&env)?.into_parts();
        let mut fallbacks = Vec::new();
        let list = self
            .fallbacks_env_var
            .as_deref()
            .and_then(|name| Some((name, env(name)?)));
        if let Some((name, raw)) = list {
            let list_source = SecretSource::Env {
                name: name.to_owned(),
            };
            let list = Zeroizing::new(raw.into_string().map_err(|_| {
                refused(&list_source, Error::InvalidEncoding { encoding: "UTF-8" })
            })?);
            for (i, item) in list.split(',').map(str::trim).enumerate() {
                if item.is_empty() {
                    continue;
                }
                let origin = format!("env {name}[{i}]");
                // A line break or tab inside an item is a list written one key per line: read
                // as one key, every key in it would be lost.
                if item.chars().any(char::is_control) {
                    return Err(Error::Refused {
                        origin,
                        cause: Box::new(Error::ControlCharacter),
                    });
                }
                // Retired: a key that this version refuses as a placeholder can still be
                // rotated away from, kept as a fallback until nothing uses it.
                let key =
                    SecretKey::retired(item, self.format).map_err(|cause| Error::Refused {
                        origin,
                        cause: Box::new(cause),
                    })?;
                fallbacks.push(key);
            }
        }
        Ok((Keyring::new(current).with_fallbacks(fallbacks), source))
    }

    fn decode(&self, text: &str, source: &SecretSource) -> Result<SecretKey> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(refused(source, Error::Empty));
        }
        self.format.decode(trimmed).map_err(|e| refused(source, e))
    }

    fn hint(&self) -> String {
        let mut options = Vec::new();
        if let Some(name) = &self.env_var {
            options.push(format!("set the {name} environment variable"));
        }
        if let Some(path) = &self.file {
            options.push(format!(
                "create the key file {} (mode 0600)",
                path.display()
            ));
        }
        if options.is_empty() {
            options.push("pass the secret explicitly".to_owned());
        }
        let mut hint = options.join(" or ");
        hint.push_str(match self.format {
            SecretFormat::Text => " with at least 32 random characters",
            SecretFormat::Hex => " with at least 64 hex characters (32 random bytes)",
            SecretFormat::Base64 => " with at least 32 random bytes in base64",
        });
        if self.mode == Mode::Production && self.file.is_some() {
            hint.push_str(" (secrets are generated only in development mode)");
        }
        hint
    }

    fn generate(&self, path: &Path) -> Result<LoadedSecret> {
        let fresh = SecretKey::generate()?;
        let text = match self.format {
            SecretFormat::Text | SecretFormat::Hex => fresh.to_hex(),
            SecretFormat::Base64 => fresh.to_base64(),
        };
        let key = match self.format {
            SecretFormat::Text => SecretKey::from_text(&text)?,
            SecretFormat::Hex | SecretFormat::Base64 => fresh,
        };
        if write_new_key_file(path, &text)? {
            let source = SecretSource::Generated {
                path: path.to_path_buf(),
            };
            return Ok(LoadedSecret { key, source });
        }
        // Another process created the file first: use its secret.
        let text = read_key_file(path)?.ok_or_else(|| Error::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::NotFound, "key file vanished while loading"),
        })?;
        let source = SecretSource::File {
            path: path.to_path_buf(),
        };
        let key = self.decode(&text, &source)?;
        Ok(LoadedSecret { key, source })
    }
}

fn refused(source: &SecretSource, cause: Error) -> Error {
    Error::Refused {
        origin: source.to_string(),
        cause: Box::new(cause),
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads the key file, or `None` if it does not exist. Refuses a file readable or writable by
/// group or others (checked on the open handle, so the file checked is the file read).
fn read_key_file(path: &Path) -> Result<Option<Zeroizing<String>>> {
    // Before opening: opening a FIFO blocks until something writes to it.
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    }
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    let meta = file.metadata().map_err(io_error(path))?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    check_permissions(path, &meta)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    let source = SecretSource::File {
        path: path.to_path_buf(),
    };
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(refused(
            &source,
            Error::TooLong {
                len: bytes.len(),
                max: MAX_FILE_LEN as usize,
            },
        ));
    }
    let text = core::str::from_utf8(&bytes)
        .map_err(|_| refused(&source, Error::InvalidEncoding { encoding: "UTF-8" }))?;
    Ok(Some(Zeroizing::new(text.to_owned())))
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(Error::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<()> {
    // Only unix permission bits are checked; elsewhere rely on the directory's ACLs.
    Ok(())
}

/// Writes `text` to a new key file at `path` without ever exposing it: the secret goes to a
/// temporary file created exclusively with mode 0600 in the same directory, which is then
/// hard-linked to `path` (failing if `path` exists, so an existing key is never replaced).
/// Returns `false` if `path` already existed.
fn write_new_key_file(path: &Path, text: &str) -> Result<bool> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    create_private_dir(&dir).map_err(io_error(&dir))?;
    let mut suffix = [0_u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| Error::Rng(e.to_string()))?;
    let name = path
        .file_name()
        .map_or_else(|| OsString::from("secret"), OsString::from);
    let mut tmp_name = OsString::from(".");
    tmp_name.push(&name);
    tmp_name.push(format!(".tmp-{}", hex::encode(suffix)));
    let tmp = dir.join(tmp_name);

    let result = (|| {
        let mut file = new_private_file(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        drop(file);
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    // The temporary name is removed whatever happened; the secret lives on under `path`.
    let _ = fs::remove_file(&tmp);
    result.map_err(io_error(path))
}

#[cfg(unix)]
fn new_private_file(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn new_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

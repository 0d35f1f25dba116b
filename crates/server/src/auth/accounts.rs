//! User accounts: what a valid username and password are, registration and login.
//!
//! Kept out of the handlers: a route turns JSON into a call here and the answer back into JSON.

use std::sync::Arc;

use crate::auth::jwt::{Claims, Issued, TokenError, TokenKind, Tokens};
use crate::auth::password::{Password, PasswordError, Passwords};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::store::{Db, StoreError, UserRow};

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// A username or password that breaks a rule; `field` names which.
    #[error("{field} {reason}")]
    Invalid {
        /// `username` or `password`.
        field: &'static str,
        /// The rule it breaks.
        reason: String,
    },
    /// Registration with a username that exists.
    #[error("username is already taken")]
    UsernameTaken,
    /// A login with an unknown username or a wrong password (which one is never said).
    #[error("{BAD_CREDENTIALS}")]
    BadCredentials,
    /// A refresh token that is invalid, expired, revoked, or whose user is gone.
    #[error("invalid or expired refresh token")]
    BadRefreshToken,
    /// An access token that is invalid, expired or revoked.
    #[error("invalid or expired token")]
    BadAccessToken,
    /// The password hasher is busy or failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A token could not be issued.
    #[error(transparent)]
    Token(#[from] TokenError),
}

impl AccountError {
    fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(error: AccountError) -> Self {
        match error {
            AccountError::Invalid { field, reason } => Self::Validation { field, reason },
            AccountError::UsernameTaken => Self::Conflict("username is already taken"),
            AccountError::BadCredentials => Self::unauthorized("bad_credentials", BAD_CREDENTIALS),
            AccountError::BadRefreshToken => {
                Self::unauthorized("bad_token", "invalid or expired refresh token")
            }
            AccountError::BadAccessToken => {
                Self::unauthorized("bad_token", "invalid or expired token")
            }
            AccountError::Password(e) => e.into(),
            AccountError::Store(e) => e.into(),
            AccountError::Token(e) => Self::internal(e),
        }
    }
}

/// Shortest accepted username, in characters.
pub const USERNAME_MIN: usize = 3;
/// Longest accepted username, in characters.
pub const USERNAME_MAX: usize = 32;
/// Shortest accepted password, in characters.
pub const PASSWORD_MIN: usize = 8;
/// Longest accepted password, in bytes (argon2 cost does not depend on it, but memory does).
pub const PASSWORD_MAX_BYTES: usize = 256;

/// Checks a username: 3 to 32 of ASCII letters, digits, `_`, `.` and `-`.
pub fn validate_username(username: &str) -> Result<(), AccountError> {
    let len = username.chars().count();
    if !(USERNAME_MIN..=USERNAME_MAX).contains(&len) {
        return Err(AccountError::invalid(
            "username",
            format!("must be {USERNAME_MIN} to {USERNAME_MAX} characters long"),
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(AccountError::invalid(
            "username",
            "may contain only ASCII letters, digits, '_', '.' and '-'",
        ));
    }
    Ok(())
}

/// Checks a new password: at least 8 characters, at most 256 bytes, not only whitespace,
/// and not the username.
pub fn validate_password(password: &str, username: &str) -> Result<(), AccountError> {
    if password.chars().count() < PASSWORD_MIN {
        return Err(AccountError::invalid(
            "password",
            format!("must be at least {PASSWORD_MIN} characters long"),
        ));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(AccountError::invalid(
            "password",
            format!("must be at most {PASSWORD_MAX_BYTES} bytes long"),
        ));
    }
    if password.trim().is_empty() {
        return Err(AccountError::invalid(
            "password",
            "must not be only whitespace",
        ));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(AccountError::invalid(
            "password",
            "must differ from the username",
        ));
    }
    Ok(())
}

/// The one message for every failed login, whether or not the user exists.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// Registration, login, token refresh, access tokens and logout, over the store, the hasher
/// and the token issuer.
#[derive(Debug, Clone)]
pub struct Accounts {
    db: Db,
    passwords: Passwords,
    tokens: Arc<Tokens>,
    clock: Clock,
}

/// An access and a refresh token.
#[derive(Debug)]
pub struct TokenPair {
    /// The access token.
    pub access: Issued,
    /// The refresh token.
    pub refresh: Issued,
}

impl Accounts {
    /// Users in `db`, passwords hashed by `passwords`, tokens issued by `tokens`.
    #[must_use]
    pub fn new(db: Db, passwords: Passwords, tokens: Tokens, clock: Clock) -> Self {
        Self {
            db,
            passwords,
            tokens: Arc::new(tokens),
            clock,
        }
    }

    /// The password hasher (its queue is reported in the metrics).
    #[must_use]
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// Creates a user; `Conflict` when the username is taken.
    pub async fn register(
        &self,
        username: &str,
        password: Password,
    ) -> Result<UserRow, AccountError> {
        let now = self.clock.now();
        validate_username(username)?;
        validate_password(&password, username)?;
        let password_hash = self.passwords.hash(password).await?;
        let mut id = [0u8; 12];
        rand::fill(&mut id);
        let user = UserRow {
            id: format!("usr_{}", hex::encode(id)),
            username: username.to_owned(),
            password_hash,
        };
        match self.db.insert_user(&user, now).await {
            Ok(()) => Ok(user),
            Err(StoreError::Conflict) => Err(AccountError::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// Checks the credentials and issues a token pair. Unknown users and wrong passwords get
    /// the same error after the same work.
    pub async fn login(
        &self,
        username: &str,
        password: Password,
    ) -> Result<TokenPair, AccountError> {
        let now = self.clock.now();
        // No account has a name with a control character, nor one this long, and the store
        // need not see it (on PostgreSQL a NUL in text is an error): it is an unknown user,
        // verified against the dummy hash like any other. (Names are not checked against
        // today's rules here: an account may be older than they are.)
        let user = if username.len() <= 1_024 && !username.contains(char::is_control) {
            self.db.find_user(username).await?
        } else {
            None
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        if !self.passwords.verify(password, stored).await? {
            return Err(AccountError::BadCredentials);
        }
        let user = user.ok_or(AccountError::BadCredentials)?;
        self.issue_pair(&user.id, &user.username, &Tokens::new_family(), now)
    }

    /// Exchanges a valid, unspent refresh token for a new pair in the same family.
    ///
    /// A refresh token is single use: of any number of concurrent exchanges, only the one that
    /// records it as spent succeeds. A spent token presented again (a replay, or a stolen copy
    /// racing its owner) revokes its whole family: the successors issued from it stop working
    /// too, and the user must log in again.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, AccountError> {
        let now = self.clock.now();
        let claims = self
            .tokens
            .verify(refresh_token, TokenKind::Refresh, now)
            .map_err(|_| AccountError::BadRefreshToken)?;
        let family = claims.family();
        // A token from before families (0.1.0) is its own family, by its `jti`, which its
        // first exchange records as spent: its successors go into a family named after it, so
        // that a replay of it revokes them too.
        let successors = claims
            .fam
            .is_empty()
            .then(|| format!("fam_of_{}", claims.jti));
        if self.db.is_token_revoked(&claims.jti, family).await?
            || !self.db.revoke_token(&claims.jti, claims.exp).await?
        {
            self.revoke_family(family, now).await?;
            if let Some(successors) = &successors {
                self.revoke_family(successors, now).await?;
            }
            return Err(AccountError::BadRefreshToken);
        }
        // The user may have been deleted since the token was issued, or renamed: the new pair
        // carries the name the account has now.
        let Some(user) = self.db.find_user_by_id(&claims.sub).await? else {
            return Err(AccountError::BadRefreshToken);
        };
        let family = successors.unwrap_or_else(|| family.to_owned());
        self.issue_pair(&user.id, &user.username, &family, now)
    }

    /// The claims of a valid access token whose family is not revoked. Revocation is read from
    /// the store on every call, so a logout or a reused refresh token takes effect at once, on
    /// every instance.
    ///
    /// # Errors
    /// [`AccountError::BadAccessToken`] for any other token; the store's errors.
    pub async fn authenticate(&self, access_token: &str) -> Result<Claims, AccountError> {
        let claims = self
            .tokens
            .verify(access_token, TokenKind::Access, self.clock.now())
            .map_err(|_| AccountError::BadAccessToken)?;
        if self
            .db
            .is_token_revoked(&claims.jti, claims.family())
            .await?
        {
            return Err(AccountError::BadAccessToken);
        }
        Ok(claims)
    }

    /// Revokes the family of `user`'s access token: that token and every refresh token issued
    /// with it. `refresh_token`, when it is the same user's, has its family revoked too. A
    /// refresh token of another user, or an invalid one, is ignored: logout never fails because
    /// of it, and never revokes someone else's tokens.
    pub async fn logout(
        &self,
        user: &Claims,
        refresh_token: Option<&str>,
    ) -> Result<(), AccountError> {
        let now = self.clock.now();
        self.revoke_family(user.family(), now).await?;
        if let Some(token) = refresh_token
            && let Ok(claims) = self.tokens.verify(token, TokenKind::Refresh, now)
            && claims.sub == user.sub
        {
            self.revoke_family(claims.family(), now).await?;
        }
        Ok(())
    }

    /// Revokes every token of `family`: none of them outlives the last refresh token issued in
    /// it, which expires at most one refresh lifetime from `now`.
    async fn revoke_family(&self, family: &str, now: i64) -> Result<(), AccountError> {
        let ttl = i64::try_from(self.tokens.refresh_ttl().as_secs()).unwrap_or(i64::MAX);
        self.db
            .revoke_token(family, now.saturating_add(ttl))
            .await?;
        Ok(())
    }

    fn issue_pair(
        &self,
        user_id: &str,
        username: &str,
        family: &str,
        now: i64,
    ) -> Result<TokenPair, AccountError> {
        let issue = |kind| self.tokens.issue(user_id, username, kind, family, now);
        Ok(TokenPair {
            access: issue(TokenKind::Access)?,
            refresh: issue(TokenKind::Refresh)?,
        })
    }
}

impl From<PasswordError> for ApiError {
    fn from(error: PasswordError) -> Self {
        match error {
            PasswordError::Busy => ApiError::Unavailable {
                detail: "the server is busy; try again shortly",
                retry_after: Some(1),
            },
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_checked_for_length_and_characters() {
        assert!(validate_username("alice_01.b-c").is_ok());
        for bad in [
            "ab",
            "",
            &"a".repeat(33),
            "al ice",
            "ålice",
            "a;drop",
            "a\u{0}b",
        ] {
            let err = validate_username(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    AccountError::Invalid {
                        field: "username",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }

    #[actix_web::test]
    async fn a_refresh_carries_the_accounts_name_and_a_pre_family_token_gets_a_live_pair() {
        let clock = Clock::manual(1_000);
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let tokens = Tokens::new(
            "t1",
            &[7u8; 32],
            std::time::Duration::from_secs(900),
            std::time::Duration::from_secs(86_400),
        );
        let issue = |kind, family: &str| tokens.issue("usr_1", "Alice", kind, family, 1_000);
        let (legacy, current) = (
            issue(TokenKind::Refresh, "").unwrap().token,
            issue(TokenKind::Refresh, "fam_1").unwrap().token,
        );
        let passwords = Passwords::new(1, std::time::Duration::from_secs(5)).unwrap();
        let accounts = Accounts::new(db.clone(), passwords, tokens, clock);
        // The account was renamed since its tokens were issued as "Alice" (as operations.md
        // tells operators to do with names that collide by case).
        let user = UserRow {
            id: "usr_1".into(),
            username: "alice2".into(),
            password_hash: "unused".into(),
        };
        db.insert_user(&user, 0).await.unwrap();

        // A token of 0.1.0, with no family: its successors work.
        let pair = accounts.refresh(&legacy).await.unwrap();
        assert_eq!(pair.access.claims.name, "alice2");
        assert!(!pair.access.claims.fam.is_empty());
        accounts.authenticate(&pair.access.token).await.unwrap();
        let next = accounts.refresh(&pair.refresh.token).await.unwrap();
        assert_eq!(next.refresh.claims.fam, pair.access.claims.fam);
        // Replayed, the old token revokes what was issued from it, as any spent token does.
        assert!(matches!(
            accounts.refresh(&legacy).await,
            Err(AccountError::BadRefreshToken)
        ));
        assert!(accounts.authenticate(&next.access.token).await.is_err());
        assert!(accounts.refresh(&next.refresh.token).await.is_err());
        // A token with a family keeps it.
        let pair = accounts.refresh(&current).await.unwrap();
        assert_eq!(pair.access.claims.fam, "fam_1");
        assert_eq!(pair.refresh.claims.name, "alice2");
        accounts.authenticate(&pair.access.token).await.unwrap();
    }

    #[test]
    fn a_store_outage_is_a_counted_503_not_a_500() {
        let outage = AccountError::from(StoreError::Database(sqlx::Error::PoolTimedOut));
        let api = ApiError::from(outage);
        assert!(matches!(api, ApiError::Unavailable { .. }), "{api:?}");
        let taken = ApiError::from(AccountError::UsernameTaken);
        assert!(matches!(taken, ApiError::Conflict(_)));
        let wrong = ApiError::from(AccountError::BadCredentials);
        assert!(matches!(
            wrong,
            ApiError::Unauthorized("bad_credentials", _)
        ));
    }

    #[test]
    fn passwords_are_checked_for_length_blankness_and_username() {
        assert!(validate_password("correct horse", "alice").is_ok());
        for bad in ["short", "        ", "ALICE123", &"x".repeat(257)] {
            let err = validate_password(bad, "alice123").unwrap_err();
            assert!(
                matches!(
                    err,
                    AccountError::Invalid {
                        field: "password",
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }
}

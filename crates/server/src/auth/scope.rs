//! Scopes: what an API key may call.
//!
//! Every API route requires one [`Scope`]; a key holds a set of them ([`Scopes`]), or `*`, which
//! grants every scope, including those a later version adds. A valid key without the route's
//! scope is refused with 403 `/problems/insufficient-scope`, before its quota is touched.
//!
//! A leaf module: it uses no other module of the server.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What `*` is written as: every scope.
pub const ANY: &str = "*";

/// A permission one API route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
pub enum Scope {
    /// `POST /get-current-time`.
    #[serde(rename = "time:read")]
    TimeRead,
    /// `POST /check-prime`.
    #[serde(rename = "prime:check")]
    PrimeCheck,
    /// `GET /weather`.
    #[serde(rename = "weather:read")]
    WeatherRead,
    /// `GET /whoami`.
    #[serde(rename = "whoami:read")]
    WhoamiRead,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Self; 4] = [
        Self::TimeRead,
        Self::PrimeCheck,
        Self::WeatherRead,
        Self::WhoamiRead,
    ];

    /// Its name, as keys, the admin API and the OpenAPI document write it.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::TimeRead => "time:read",
            Self::PrimeCheck => "prime:check",
            Self::WeatherRead => "weather:read",
            Self::WhoamiRead => "whoami:read",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }

    /// The scope named `name`, if there is one.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.name() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a list of scope names was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// No scope at all: such a key could call nothing.
    #[error("must name at least one scope (`*` for all)")]
    Empty,
    /// A name that is no scope.
    #[error("unknown scope `{0}`; expected `*` or one of {list}", list = names_list())]
    Unknown(String),
}

fn names_list() -> String {
    let names: Vec<String> = Scope::ALL.iter().map(|s| format!("`{s}`")).collect();
    names.join(", ")
}

/// The scopes a key holds: some of the [`Scope`]s, or all of them (`*`). Copied, compared and
/// checked without allocating.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Scopes(u8);

/// The bit of `*`, above every scope's.
const ANY_BIT: u8 = 1 << 7;

impl Scopes {
    /// `*`: every scope, now and to come.
    pub const ANY: Self = Self(ANY_BIT);

    /// Whether a key with these scopes may call a route that requires `scope`.
    #[must_use]
    pub const fn allows(self, scope: Scope) -> bool {
        self.0 & (ANY_BIT | scope.bit()) != 0
    }

    /// Whether these are `*`.
    #[must_use]
    pub const fn is_any(self) -> bool {
        self.0 & ANY_BIT != 0
    }

    /// The set named by `names`: each is a scope's name or `*`.
    ///
    /// # Errors
    /// [`ScopeError::Empty`] for no name, [`ScopeError::Unknown`] for a name that is no scope.
    pub fn parse<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Result<Self, ScopeError> {
        let mut bits = 0;
        let mut any_name = false;
        for name in names {
            let name = name.as_ref();
            any_name = true;
            bits |= if name == ANY {
                ANY_BIT
            } else {
                Scope::from_name(name)
                    .ok_or_else(|| ScopeError::Unknown(truncated(name)))?
                    .bit()
            };
        }
        if !any_name {
            return Err(ScopeError::Empty);
        }
        Ok(Self::normalized(bits))
    }

    /// The scopes of a stored key: `None` (a key from before scopes existed) is `*`. A stored
    /// name this version does not know grants nothing.
    #[must_use]
    pub fn from_stored(stored: Option<&str>) -> Self {
        let Some(stored) = stored else {
            return Self::ANY;
        };
        let bits = stored.split_ascii_whitespace().fold(0, |bits, name| {
            if name == ANY {
                bits | ANY_BIT
            } else {
                Scope::from_name(name).map_or(bits, |scope| bits | scope.bit())
            }
        });
        Self::normalized(bits)
    }

    /// The form stored in the key table: `*`, or the names separated by spaces.
    #[must_use]
    pub fn to_stored(self) -> String {
        self.names().join(" ")
    }

    /// The names: `["*"]`, or each scope held, in [`Scope::ALL`]'s order.
    #[must_use]
    pub fn names(self) -> Vec<&'static str> {
        if self.is_any() {
            return vec![ANY];
        }
        Scope::ALL
            .into_iter()
            .filter(|scope| self.allows(*scope))
            .map(Scope::name)
            .collect()
    }

    const fn normalized(bits: u8) -> Self {
        if bits & ANY_BIT != 0 {
            Self::ANY
        } else {
            Self(bits)
        }
    }
}

/// At most 64 bytes of a refused name, so that an error never echoes a whole body.
fn truncated(name: &str) -> String {
    let mut end = name.len().min(64);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// The names separated by spaces: `time:read prime:check`, or `*`.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_stored())
    }
}

/// Names separated by commas or spaces, as the command line and environment give them.
impl FromStr for Scopes {
    type Err = ScopeError;

    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Self::parse(
            s.split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|name| !name.is_empty()),
        )
    }
}

/// An array of names, as in [`Scopes::names`].
impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// An array of names; refused, in the API's terms, when empty or with a name that is no scope.
impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let names = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&names).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Scopes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let names = std::iter::once(ANY).chain(Scope::ALL.map(Scope::name));
        ArrayBuilder::new()
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(names)),
            )
            .min_items(Some(1))
            .description(Some(
                "Scopes: `*` for every scope (now and to come), or some of `time:read`, \
                 `prime:check`, `weather:read` and `whoami:read`.",
            ))
            .examples([serde_json::json!(["time:read", "prime:check"])])
            .into()
    }
}

impl utoipa::ToSchema for Scopes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_allows_every_scope_and_a_list_only_its_own() {
        for scope in Scope::ALL {
            assert!(Scopes::ANY.allows(scope));
        }
        let time = Scopes::parse(["time:read"]).unwrap();
        assert!(time.allows(Scope::TimeRead));
        for scope in [Scope::PrimeCheck, Scope::WeatherRead, Scope::WhoamiRead] {
            assert!(!time.allows(scope), "{scope}");
        }
        let two = Scopes::parse(["prime:check", "time:read", "time:read"]).unwrap();
        assert_eq!(two.names(), ["time:read", "prime:check"]);
        assert!(!two.is_any());
    }

    #[test]
    fn every_scope_round_trips_through_its_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::from_name(scope.name()), Some(scope));
            assert_eq!(
                serde_json::to_value(scope).unwrap(),
                serde_json::json!(scope.name())
            );
            let one = Scopes::parse([scope.name()]).unwrap();
            assert_eq!(Scopes::from_stored(Some(&one.to_stored())), one);
        }
        let all_listed = Scopes::parse(Scope::ALL.map(Scope::name)).unwrap();
        assert!(!all_listed.is_any(), "four names are not `*`");
        assert_eq!(
            Scopes::from_stored(Some(&all_listed.to_stored())),
            all_listed
        );
    }

    #[test]
    fn a_wildcard_absorbs_the_names_beside_it() {
        let any = Scopes::parse(["time:read", "*"]).unwrap();
        assert_eq!(any, Scopes::ANY);
        assert_eq!(any.to_stored(), "*");
        assert_eq!(any.names(), ["*"]);
    }

    #[test]
    fn empty_and_unknown_lists_are_refused() {
        assert_eq!(Scopes::parse::<&str>([]), Err(ScopeError::Empty));
        assert_eq!(
            Scopes::parse(["time:read", "time:write"]),
            Err(ScopeError::Unknown("time:write".into()))
        );
        let long = "é".repeat(100);
        match Scopes::parse([long.as_str()]) {
            Err(ScopeError::Unknown(name)) => assert!(name.len() <= 64, "{name}"),
            other => panic!("{other:?}"),
        }
        let message = ScopeError::Unknown("x".into()).to_string();
        assert!(message.contains("`time:read`, `prime:check`"), "{message}");
    }

    #[test]
    fn stored_keys_without_scopes_hold_every_scope_and_unknown_names_grant_nothing() {
        assert_eq!(Scopes::from_stored(None), Scopes::ANY);
        let stored = Scopes::from_stored(Some("time:read admin:write"));
        assert_eq!(stored.names(), ["time:read"]);
        assert!(!Scopes::from_stored(Some("admin:write")).allows(Scope::TimeRead));
    }

    #[test]
    fn the_command_line_form_takes_commas_or_spaces() {
        let parsed: Scopes = "time:read, prime:check".parse().unwrap();
        assert_eq!(parsed.names(), ["time:read", "prime:check"]);
        assert_eq!("*".parse::<Scopes>().unwrap(), Scopes::ANY);
        assert_eq!(" , ".parse::<Scopes>(), Err(ScopeError::Empty));
    }

    #[test]
    fn json_is_an_array_of_names() {
        let scopes: Scopes = serde_json::from_str(r#"["whoami:read"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&scopes).unwrap(),
            r#"["whoami:read"]"#
        );
        let refused = serde_json::from_str::<Scopes>(r#"["nope"]"#).unwrap_err();
        assert!(
            refused.to_string().starts_with("unknown scope `nope`"),
            "{refused}"
        );
        assert!(serde_json::from_str::<Scopes>("[]").is_err());
        assert!(serde_json::from_str::<Scopes>(r#""time:read""#).is_err());
    }
}

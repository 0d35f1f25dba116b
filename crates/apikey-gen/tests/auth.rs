//! The authenticator and its middleware on actix-web and axum: identities in the extensions,
//! refusals as problem documents, the caches, and a flood of unknown keys next to a known key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, test as atest, web};
use apikey_gen::{
    ApiKeyAuth, Authenticator, Error, FakeClock, KeyConfig, KeyHash, KeyHasher, KeyRecord,
    KeySource, KeyStore,
};
use axum::Router;
use axum::body::Body;
use axum::extract::Extension;
use axum::routing::get;
use serde_json::Value;
use tower::ServiceExt as _;

const NOW: u64 = 1_767_225_600;

/// What the store says a key is.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Caller {
    key_id: String,
    service: String,
}

#[derive(Debug, thiserror::Error)]
#[error("database down")]
struct Down;

/// Keys by hash, counting lookups per hash; can be taken down.
#[derive(Debug, Default)]
struct Store {
    keys: HashMap<[u8; 32], KeyRecord<Caller>>,
    lookups: Mutex<HashMap<[u8; 32], usize>>,
    total: AtomicUsize,
    down: AtomicBool,
}

impl Store {
    fn lookups_of(&self, hash: &KeyHash) -> usize {
        self.lookups
            .lock()
            .unwrap()
            .get(hash.as_bytes())
            .copied()
            .unwrap_or(0)
    }
}

impl KeyStore for Store {
    type Identity = Caller;
    type Error = Down;

    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyRecord<Caller>>, Down> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Down);
        }
        self.total.fetch_add(1, Ordering::SeqCst);
        *self
            .lookups
            .lock()
            .unwrap()
            .entry(*hash.as_bytes())
            .or_default() += 1;
        Ok(self.keys.get(hash.as_bytes()).cloned())
    }
}

fn config() -> KeyConfig {
    KeyConfig::new("sk_test")
        .unwrap()
        .with_hasher(KeyHasher::hmac_sha256(&[9; 32]).unwrap())
}

/// A store with an active, a revoked and an expiring key; returns their texts.
fn fixture() -> (Store, [String; 3]) {
    let config = config();
    let mut store = Store::default();
    let mut add = |id: &str, record: fn(Caller) -> KeyRecord<Caller>| {
        let generated = config.generate().unwrap();
        let caller = Caller {
            key_id: id.to_owned(),
            service: "billing".to_owned(),
        };
        store
            .keys
            .insert(*generated.hash().as_bytes(), record(caller));
        generated.key().expose_secret().to_owned()
    };
    let active = add("k-active", KeyRecord::active);
    let revoked = add("k-revoked", |c| KeyRecord::active(c).revoked(true));
    let expiring = add("k-expiring", |c| KeyRecord::active(c).expires_at(NOW + 60));
    (store, [active, revoked, expiring])
}

fn authenticator(store: Store, clock: &FakeClock) -> Authenticator<Store, FakeClock> {
    Authenticator::builder(config(), store)
        .clock(clock.clone())
        .known_capacity(16)
        .unknown_capacity(64)
        .build()
        .unwrap()
}

#[tokio::test]
async fn keys_are_checked_offline_then_by_hash_then_cached() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (store, [active, revoked, expiring]) = fixture();
    let auth = authenticator(store, &clock);
    assert_eq!(auth.authenticate(&active).await.unwrap().key_id, "k-active");
    assert_eq!(auth.authenticate(&revoked).await, Err(Error::RevokedKey));
    assert_eq!(
        auth.authenticate(&expiring).await.unwrap().key_id,
        "k-expiring"
    );
    // Garbage and typos never reach the store.
    assert!(matches!(
        auth.authenticate("sk_test_short").await,
        Err(Error::WrongLength { .. })
    ));
    let mut typo = active.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    assert_eq!(auth.authenticate(&typo).await, Err(Error::ChecksumMismatch));
    assert_eq!(auth.store().total.load(Ordering::SeqCst), 3);
    // Cached: no second lookup within the TTL; expiry is still checked against the clock.
    assert!(auth.authenticate(&active).await.is_ok());
    clock.advance(Duration::from_secs(4));
    assert!(auth.authenticate(&active).await.is_ok());
    assert_eq!(auth.store().total.load(Ordering::SeqCst), 3);
    clock.advance(Duration::from_secs(56));
    assert_eq!(auth.authenticate(&expiring).await, Err(Error::ExpiredKey));
    // Past the TTL the store is asked again.
    assert!(auth.authenticate(&active).await.is_ok());
    assert_eq!(auth.store().lookups_of(&config().hash(&active)), 2);
    // A store failure is reported, and nothing is cached for it.
    auth.store().down.store(true, Ordering::SeqCst);
    auth.invalidate_all();
    assert!(matches!(
        auth.authenticate(&active).await,
        Err(Error::StoreUnavailable { .. })
    ));
    assert_eq!(auth.cached(), (0, 0));
}

#[tokio::test]
async fn a_flood_of_unknown_keys_never_evicts_a_known_key() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (store, [active, ..]) = fixture();
    let auth = authenticator(store, &clock);
    let config = config();
    assert!(auth.authenticate(&active).await.is_ok());
    // Well-formed unknown keys: the checksum is public, anyone can make them.
    let unknown: Vec<String> = (0..2_000)
        .map(|_| config.generate().unwrap().key().expose_secret().to_owned())
        .collect();
    for (i, key) in unknown.iter().enumerate() {
        assert_eq!(auth.authenticate(key).await, Err(Error::UnknownKey));
        if i % 100 == 0 {
            assert!(auth.authenticate(&active).await.is_ok());
        }
    }
    // The known key was looked up once: the flood went through its own cache only.
    assert_eq!(auth.store().lookups_of(&config.hash(&active)), 1);
    let (known, unknown_cached) = auth.cached();
    assert_eq!(known, 1);
    assert!(unknown_cached <= 64 + 16, "{unknown_cached}");
    // A repeated unknown key inside the TTL is answered from the cache.
    let before = auth.store().total.load(Ordering::SeqCst);
    let last = unknown.last().unwrap();
    assert_eq!(auth.authenticate(last).await, Err(Error::UnknownKey));
    assert_eq!(auth.store().total.load(Ordering::SeqCst), before);
}

async fn whoami(caller: web::ReqData<Caller>, source: web::ReqData<KeySource>) -> HttpResponse {
    HttpResponse::Ok().body(format!(
        "{}@{} by {}",
        caller.key_id,
        caller.service,
        source.as_str()
    ))
}

#[actix_rt::test]
async fn actix_puts_the_identity_into_the_request_and_refuses_with_problems() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (store, [active, revoked, _]) = fixture();
    let auth = ApiKeyAuth::builder(authenticator(store, &clock))
        .skip_when_header("X-API-Signature")
        .skip_when_header("Signature-Input")
        .build();
    let app = atest::init_service(
        App::new()
            .service(
                web::resource("/whoami")
                    .wrap(auth.clone())
                    .route(web::get().to(whoami)),
            )
            .service(
                web::resource("/open")
                    .wrap(auth.clone())
                    .route(web::get().to(|| async { "unauthenticated" })),
            ),
    )
    .await;
    let call = |header: Option<(&str, String)>, path: &str| {
        let req = atest::TestRequest::get().uri(path);
        match header {
            Some(h) => req.insert_header(h).to_request(),
            None => req.to_request(),
        }
    };
    for (header, source) in [
        (("authorization", active.clone()), "raw_authorization"),
        (("authorization", format!("Bearer {active}")), "bearer"),
        (("x-api-key", active.clone()), "x_api_key"),
    ] {
        let res = atest::call_service(&app, call(Some(header), "/whoami")).await;
        assert_eq!(res.status(), 200);
        let expected = format!("k-active@billing by {source}");
        assert_eq!(atest::read_body(res).await, expected.as_bytes());
    }
    for (header, detail) in [
        (
            None,
            "missing API key: send Authorization: <key>, Authorization: Bearer <key> or X-API-Key",
        ),
        (Some(("authorization", revoked.clone())), "API key revoked"),
        (
            Some(("authorization", "Basic dXNlcjpwYXNz".to_owned())),
            "invalid API key header: only the Bearer scheme carries a key",
        ),
        (
            Some(("x-api-key", "sk_test_nope".to_owned())),
            "key is 12 bytes long, expected 46",
        ),
    ] {
        let res = atest::call_service(&app, call(header, "/whoami")).await;
        assert_eq!(res.status(), 401);
        assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        let body: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
        assert_eq!(body["detail"], detail);
    }
    // A signed request goes on for the signature layer to check.
    let signed = call(Some(("x-api-signature", "v1=00".to_owned())), "/open");
    assert_eq!(atest::call_service(&app, signed).await.status(), 200);
    let rfc9421 = call(Some(("signature-input", "sig1=()".to_owned())), "/open");
    assert_eq!(atest::call_service(&app, rfc9421).await.status(), 200);
    // Any other header is no reason to skip.
    let other = call(Some(("signature", "sig1=:AA==:".to_owned())), "/open");
    assert_eq!(atest::call_service(&app, other).await.status(), 401);

    auth.authenticator()
        .store()
        .down
        .store(true, Ordering::SeqCst);
    auth.authenticator().invalidate_all();
    let down = atest::call_service(&app, call(Some(("x-api-key", active)), "/whoami")).await;
    assert_eq!(down.status(), 503);
    assert_eq!(down.headers().get("retry-after").unwrap(), "1");
    let body: Value = serde_json::from_slice(&atest::read_body(down).await).unwrap();
    assert_eq!(
        body["detail"],
        "the key store is unavailable; try again shortly"
    );
}

#[tokio::test]
async fn axum_puts_the_identity_into_the_request_and_refuses_with_problems() {
    let clock = FakeClock::at_unix_secs(NOW);
    let (store, [active, ..]) = fixture();
    let auth = ApiKeyAuth::new(authenticator(store, &clock));
    let app =
        Router::new()
            .route(
                "/whoami",
                get(
                    |Extension(caller): Extension<Caller>,
                     Extension(source): Extension<KeySource>| async move {
                        format!("{} by {}", caller.key_id, source.as_str())
                    },
                ),
            )
            .layer(auth);
    let request = |key: &str| {
        http::Request::builder()
            .uri("/whoami")
            .header("authorization", key)
            .body(Body::empty())
            .unwrap()
    };
    for (presented, source) in [
        (active.clone(), "raw_authorization"),
        (format!("Bearer {active}"), "bearer"),
    ] {
        let ok = app.clone().oneshot(request(&presented)).await.unwrap();
        assert_eq!(ok.status(), 200);
        let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
        assert_eq!(body, format!("k-active by {source}").as_bytes());
    }
    let unknown = config().generate().unwrap();
    let refused = app
        .oneshot(request(unknown.key().expose_secret()))
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let body = axum::body::to_bytes(refused.into_body(), 1024)
        .await
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["detail"], "unknown API key");
}

/// Keys by hash that can be moved to another hash: what a database with a `key_hash` column
/// does in [`KeyStore::rehash`].
#[derive(Debug, Default)]
struct MovableStore {
    keys: Mutex<HashMap<[u8; 32], KeyRecord<Caller>>>,
    /// This many rehashes fail before one succeeds.
    failing_rehashes: AtomicUsize,
}

impl KeyStore for MovableStore {
    type Identity = Caller;
    type Error = Down;

    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyRecord<Caller>>, Down> {
        Ok(self.keys.lock().unwrap().get(hash.as_bytes()).cloned())
    }

    async fn rehash(&self, old: &KeyHash, new: &KeyHash) -> Result<bool, Down> {
        let failing = self.failing_rehashes.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing_rehashes.store(failing - 1, Ordering::SeqCst);
            return Err(Down);
        }
        let mut keys = self.keys.lock().unwrap();
        let record = keys.remove(old.as_bytes());
        let moved = record.is_some();
        if let Some(record) = record {
            keys.insert(*new.as_bytes(), record);
        }
        Ok(moved)
    }
}

#[tokio::test]
async fn keys_hashed_with_a_fallback_pepper_authenticate_and_move_to_the_current_one() {
    let old_config = KeyConfig::new("sk_test")
        .unwrap()
        .with_hasher(KeyHasher::hmac_sha256(&[1; 32]).unwrap());
    let old_hasher = old_config.hasher().clone();
    let store = MovableStore::default();
    let mut keys = Vec::new();
    for id in ["k-used", "k-idle"] {
        let generated = old_config.generate().unwrap();
        let caller = Caller {
            key_id: id.to_owned(),
            service: "billing".to_owned(),
        };
        store
            .keys
            .lock()
            .unwrap()
            .insert(*generated.hash().as_bytes(), KeyRecord::active(caller));
        keys.push(generated.key().expose_secret().to_owned());
    }
    let clock = FakeClock::at_unix_secs(NOW);
    let rotated = Authenticator::builder(config(), store)
        .clock(clock.clone())
        .fallback_hashers([old_hasher.clone()])
        .build()
        .unwrap();
    assert_eq!(
        rotated.authenticate(&keys[0]).await.unwrap().key_id,
        "k-used"
    );
    // The used key is now stored under the current pepper only.
    let current = config().hash(&keys[0]);
    {
        let stored = rotated.store().keys.lock().unwrap();
        assert!(stored.contains_key(current.as_bytes()));
        assert!(!stored.contains_key(old_hasher.hash(&keys[0]).as_bytes()));
    }
    // Found under its current hash, and still found after the cache is gone.
    assert_eq!(
        rotated.authenticate(&keys[0]).await.unwrap().key_id,
        "k-used"
    );
    rotated.invalidate_all();
    assert_eq!(
        rotated.authenticate(&keys[0]).await.unwrap().key_id,
        "k-used"
    );

    // With the fallback dropped, the used key works and the idle one is unknown.
    let store = MovableStore {
        keys: Mutex::new(std::mem::take(&mut *rotated.store().keys.lock().unwrap())),
        ..MovableStore::default()
    };
    let dropped = Authenticator::builder(config(), store)
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(
        dropped.authenticate(&keys[0]).await.unwrap().key_id,
        "k-used"
    );
    assert_eq!(dropped.authenticate(&keys[1]).await, Err(Error::UnknownKey));
}

/// A revocation reaches a key found through a fallback hasher within one TTL, even when the
/// record that was moved had been read almost a TTL before.
#[tokio::test]
async fn a_revocation_reaches_a_key_moved_from_a_fallback_hash_within_the_ttl() {
    let old = KeyHasher::hmac_sha256(&[1; 32]).unwrap();
    let generated = KeyConfig::new("sk_test")
        .unwrap()
        .with_hasher(old.clone())
        .generate()
        .unwrap();
    let store = MovableStore {
        failing_rehashes: AtomicUsize::new(1),
        ..MovableStore::default()
    };
    let caller = Caller {
        key_id: "k-old".to_owned(),
        service: "billing".to_owned(),
    };
    store
        .keys
        .lock()
        .unwrap()
        .insert(*generated.hash().as_bytes(), KeyRecord::active(caller));
    let key = generated.key().expose_secret().to_owned();
    let clock = FakeClock::at_unix_secs(NOW);
    let auth = Authenticator::builder(config(), store)
        .clock(clock.clone())
        .fallback_hashers([old])
        .build()
        .unwrap();
    // Read and cached at 0 s; the move to the current hash fails this time.
    assert!(auth.authenticate(&key).await.is_ok());
    clock.advance(Duration::from_millis(100));
    for record in auth.store().keys.lock().unwrap().values_mut() {
        *record = record.clone().revoked(true);
    }
    // At 4.9 s the cached record is still trusted, and the move succeeds.
    clock.advance(Duration::from_millis(4_800));
    assert!(auth.authenticate(&key).await.is_ok());
    // At 5.1 s, past the TTL of the answer read at 0 s, the revocation holds.
    clock.advance(Duration::from_millis(200));
    assert_eq!(auth.authenticate(&key).await, Err(Error::RevokedKey));
}

/// A store (which cannot move keys) holding the key `k-old`, hashed with an old pepper; returns
/// that pepper's hasher, the store and the key.
fn store_with_a_key_of_the_old_pepper() -> (KeyHasher, Store, String) {
    let old = KeyHasher::hmac_sha256(&[1; 32]).unwrap();
    let generated = KeyConfig::new("sk_test")
        .unwrap()
        .with_hasher(old.clone())
        .generate()
        .unwrap();
    let mut store = Store::default();
    let caller = Caller {
        key_id: "k-old".to_owned(),
        service: "billing".to_owned(),
    };
    store
        .keys
        .insert(*generated.hash().as_bytes(), KeyRecord::active(caller));
    (old, store, generated.key().expose_secret().to_owned())
}

#[tokio::test]
async fn a_store_that_cannot_rehash_keeps_authenticating_through_the_fallback() {
    let (old, store, key) = store_with_a_key_of_the_old_pepper();
    let old_hash = old.hash(&key);
    let clock = FakeClock::at_unix_secs(NOW);
    let auth = Authenticator::builder(config(), store)
        .clock(clock.clone())
        .cache_ttl(Duration::ZERO)
        .fallback_hashers([old])
        .build()
        .unwrap();
    for _ in 0..2 {
        assert_eq!(auth.authenticate(&key).await.unwrap().key_id, "k-old");
    }
    // Each call looked up the current hash, then the fallback's.
    assert_eq!(auth.store().lookups_of(&config().hash(&key)), 2);
    assert_eq!(auth.store().lookups_of(&old_hash), 2);
}

#[test]
fn actix_and_http_header_maps_present_keys_as_presented_key_reads_them() {
    use actix_web::http::header as actix_header;
    /// Headers, and the key and source read from them.
    type Case = (
        &'static [(&'static str, &'static str)],
        Result<(&'static str, KeySource), Error>,
    );
    let cases: [Case; 7] = [
        (
            &[("authorization", "sk_abc")],
            Ok(("sk_abc", KeySource::RawAuthorization)),
        ),
        (
            &[("authorization", "Bearer sk_abc")],
            Ok(("sk_abc", KeySource::Bearer)),
        ),
        (
            &[("authorization", "other"), ("x-api-key", "sk_abc")],
            Ok(("sk_abc", KeySource::XApiKey)),
        ),
        (&[("x-request-id", "sk_abc")], Err(Error::MissingKey)),
        // A credential sent twice is refused, whichever comes first.
        (
            &[("authorization", "sk_abc"), ("authorization", "other")],
            Err(Error::MalformedHeader {
                reason: "Authorization sent more than once",
            }),
        ),
        (
            &[("x-api-key", "other"), ("x-api-key", "sk_abc")],
            Err(Error::MalformedHeader {
                reason: "X-API-Key sent more than once",
            }),
        ),
        // Authorization is not read when X-API-Key carries the key.
        (
            &[
                ("x-api-key", "sk_abc"),
                ("authorization", "a"),
                ("authorization", "b"),
            ],
            Ok(("sk_abc", KeySource::XApiKey)),
        ),
    ];
    for (pairs, expected) in cases {
        let mut actix = actix_header::HeaderMap::new();
        let mut http = http::HeaderMap::new();
        for (name, value) in pairs {
            actix.append(
                actix_header::HeaderName::from_static(name),
                actix_header::HeaderValue::from_static(value),
            );
            http.append(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let read = |presented: apikey_gen::Result<apikey_gen::PresentedKey<'_>>| {
            presented.map(|p| (p.expose_secret().to_owned(), p.source()))
        };
        let expected = expected.map(|(key, source)| (key.to_owned(), source));
        assert_eq!(
            read(apikey_gen::actix_presented_key(&actix)),
            expected,
            "{pairs:?}"
        );
        assert_eq!(
            read(apikey_gen::http_presented_key(&http)),
            expected,
            "{pairs:?}"
        );
    }
}

/// A refusal's headers may be named in any case (`HeaderName::from_static` would panic on every
/// refusal); a name that is no header name is left out.
#[test]
fn refusal_headers_may_be_named_in_any_case() {
    let rejection = || {
        apikey_gen::Rejection::problem(401, "no")
            .with_header("WWW-Authenticate", "Bearer")
            .with_header("not a name", "left out")
    };
    let tower = apikey_gen::http_response::<Body>(rejection());
    assert_eq!(tower.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        tower.headers().len(),
        2,
        "content-type and www-authenticate"
    );
    let actix = apikey_gen::actix_response(rejection());
    assert_eq!(actix.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(
        actix.headers().len(),
        2,
        "content-type and www-authenticate"
    );
}

/// A move of a key: from the first hash to the second.
type Move = ([u8; 32], [u8; 32]);

/// Keys by hash in one table that several authenticators share, as the instances of one
/// deployment share a database; moves are recorded.
#[derive(Clone, Debug, Default)]
struct SharedTable {
    keys: Arc<Mutex<HashMap<[u8; 32], KeyRecord<Caller>>>>,
    moves: Arc<Mutex<Vec<Move>>>,
    /// `(old, new)`: the next lookup of `new` answers as the table was, then moves the key
    /// from `old` to `new`, as another instance would while this one looks.
    moved_while_looked_up: Arc<Mutex<Option<Move>>>,
}

impl KeyStore for SharedTable {
    type Identity = Caller;
    type Error = Down;

    async fn lookup(&self, hash: &KeyHash) -> Result<Option<KeyRecord<Caller>>, Down> {
        let mut keys = self.keys.lock().unwrap();
        let found = keys.get(hash.as_bytes()).cloned();
        let mut pending = self.moved_while_looked_up.lock().unwrap();
        if let Some((old, new)) = *pending
            && new == *hash.as_bytes()
        {
            *pending = None;
            if let Some(record) = keys.remove(&old) {
                keys.insert(new, record);
            }
        }
        Ok(found)
    }

    async fn rehash(&self, old: &KeyHash, new: &KeyHash) -> Result<bool, Down> {
        let mut keys = self.keys.lock().unwrap();
        let Some(record) = keys.remove(old.as_bytes()) else {
            return Ok(false);
        };
        keys.insert(*new.as_bytes(), record);
        self.moves
            .lock()
            .unwrap()
            .push((*old.as_bytes(), *new.as_bytes()));
        Ok(true)
    }
}

/// A key of the service "billing", made with `hasher`, in `table`; returns its text.
fn key_in(table: &SharedTable, hasher: &KeyHasher) -> String {
    let generated = KeyConfig::new("sk_test")
        .unwrap()
        .with_hasher(hasher.clone())
        .generate()
        .unwrap();
    let caller = Caller {
        key_id: "k-rotated".to_owned(),
        service: "billing".to_owned(),
    };
    table
        .keys
        .lock()
        .unwrap()
        .insert(*generated.hash().as_bytes(), KeyRecord::active(caller));
    generated.key().expose_secret().to_owned()
}

/// Another instance moves the key to its current hash after this one found that hash unknown
/// and before it asks for the fallback's: the key is still accepted, now and after.
#[tokio::test]
async fn a_key_moved_by_another_instance_while_it_is_looked_up_is_accepted() {
    let old = KeyHasher::hmac_sha256(&[1; 32]).unwrap();
    let table = SharedTable::default();
    let key = key_in(&table, &old);
    let (old_hash, current) = (old.hash(&key), config().hash(&key));
    *table.moved_while_looked_up.lock().unwrap() =
        Some((*old_hash.as_bytes(), *current.as_bytes()));
    let clock = FakeClock::at_unix_secs(NOW);
    let auth = Authenticator::builder(config(), table.clone())
        .clock(clock.clone())
        .fallback_hashers([old])
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(auth.authenticate(&key).await.unwrap().key_id, "k-rotated");
        clock.advance(Duration::from_secs(1));
    }
    assert!(table.keys.lock().unwrap().contains_key(current.as_bytes()));
    assert!(table.moves.lock().unwrap().is_empty());
}

/// The two deploys of a pepper rotation, running side by side: instances that accept the new
/// pepper's hashes leave keys there, so each key moves once, to the new pepper.
#[tokio::test]
async fn in_a_rolling_rotation_a_key_moves_to_the_new_pepper_once() {
    let old = KeyHasher::hmac_sha256(&[1; 32]).unwrap();
    let new = KeyHasher::hmac_sha256(&[2; 32]).unwrap();
    let table = SharedTable::default();
    let key = key_in(&table, &old);
    let clock = FakeClock::at_unix_secs(NOW);
    let with = |hasher: &KeyHasher| {
        KeyConfig::new("sk_test")
            .unwrap()
            .with_hasher(hasher.clone())
    };
    let first_deploy = Authenticator::builder(with(&old), table.clone())
        .clock(clock.clone())
        .accepted_hashers([new.clone()])
        .build()
        .unwrap();
    let second_deploy = Authenticator::builder(with(&new), table.clone())
        .clock(clock.clone())
        .fallback_hashers([old.clone()])
        .build()
        .unwrap();
    for _ in 0..3 {
        for auth in [&first_deploy, &second_deploy] {
            assert_eq!(auth.authenticate(&key).await.unwrap().key_id, "k-rotated");
            // Past every cached answer.
            clock.advance(Duration::from_secs(6));
        }
    }
    assert_eq!(
        *table.moves.lock().unwrap(),
        [(*old.hash(&key).as_bytes(), *new.hash(&key).as_bytes())]
    );
}

/// A store that cannot move keys: the answer found through the fallback is cached for the
/// current hash too, so repeated calls cost no lookup until it expires.
#[tokio::test]
async fn a_key_found_through_a_fallback_is_cached_for_the_ttl() {
    let (old, store, key) = store_with_a_key_of_the_old_pepper();
    let old_hash = old.hash(&key);
    let clock = FakeClock::at_unix_secs(NOW);
    let auth = Authenticator::builder(config(), store)
        .clock(clock.clone())
        .fallback_hashers([old])
        .build()
        .unwrap();
    for _ in 0..10 {
        assert_eq!(auth.authenticate(&key).await.unwrap().key_id, "k-old");
    }
    assert_eq!(auth.store().lookups_of(&config().hash(&key)), 1);
    assert_eq!(auth.store().lookups_of(&old_hash), 1);
    // Past the TTL (5 s), both are asked again, once.
    clock.advance(Duration::from_millis(5_100));
    assert_eq!(auth.authenticate(&key).await.unwrap().key_id, "k-old");
    assert_eq!(auth.store().lookups_of(&config().hash(&key)), 2);
    assert_eq!(auth.store().lookups_of(&old_hash), 2);
}

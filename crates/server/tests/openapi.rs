//! `docs/openapi.json` is the document the server serves at `/openapi.json`.
//!
//! After changing a route: `UPDATE_OPENAPI=1 cargo test -p secure-api --test openapi`.

use std::path::PathBuf;

#[test]
fn the_committed_openapi_document_matches_the_handlers() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let generated = secure_api::routes::openapi_json() + "\n";
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("docs/openapi.json is writable");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p secure-api --test openapi`"
    );
}

//! API1:2023 Broken Object Level Authorization: no object of another principal is reachable by
//! its id. The objects with ids are API keys (`/admin/keys/{id}`, admin only) and users (the
//! JWT `sub`); every other answer is about the caller itself.

use serde_json::json;

use crate::common::spawn;
use crate::{admin, user_tokens};

#[actix_web::test]
async fn a_key_sees_only_itself_and_reaches_no_other_key_by_id() {
    let app = spawn().await;
    let mine = app.create_key(json!({"service": "alpha"})).await;
    let theirs = app.create_key(json!({"service": "beta"})).await;
    let (my_key, their_id) = (
        mine["key"].as_str().unwrap(),
        theirs["id"].as_str().unwrap(),
    );

    let me = app.get("/whoami", &[("authorization", my_key)]).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["key_id"], mine["id"]);
    assert_eq!(me.body["service"], "alpha");
    assert!(!me.text.contains(their_id) && !me.text.contains("beta"));

    // Another key's usage, revocation or rotation by id, with this key in every form.
    for auth in [my_key.to_owned(), format!("Bearer {my_key}")] {
        let h = [("authorization", auth.as_str())];
        let usage = app.get(&format!("/admin/keys/{their_id}/usage"), &h).await;
        let revoke = app
            .send("DELETE", &format!("/admin/keys/{their_id}"), &h, None)
            .await;
        let rotate = app
            .post(&format!("/admin/keys/{their_id}/rotate"), &h, "{}")
            .await;
        for reply in [usage, revoke, rotate] {
            assert_eq!(reply.status, 401, "{}", reply.body);
            assert!(!reply.text.contains("beta"));
        }
    }
    // The other key still works: nothing was done to it.
    let still = app
        .post(
            "/get-current-time",
            &[("authorization", theirs["key"].as_str().unwrap())],
            "",
        )
        .await;
    assert_eq!(still.status, 200);
}

#[actix_web::test]
async fn a_user_token_names_only_its_own_user() {
    let app = spawn().await;
    let (alice, _) = user_tokens(&app, "alice_api1").await;
    let (bob, _) = user_tokens(&app, "bob_api1").await;
    for (token, name) in [(&alice, "alice_api1"), (&bob, "bob_api1")] {
        let reply = app
            .get(
                "/protected",
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["logged_in_as"], name);
    }
    // Alice's token with Bob's `sub` swapped in is no longer a valid token.
    let parts: Vec<&str> = alice.split('.').collect();
    let bob_parts: Vec<&str> = bob.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], bob_parts[1], parts[2]);
    let reply = app
        .get(
            "/protected",
            &[("authorization", &format!("Bearer {forged}"))],
        )
        .await;
    assert_eq!(reply.status, 401);
    // A user token is not an admin token, and reaches no key by id.
    let reply = app
        .get(
            &format!("/admin/keys/{}/usage", app.first.demo_key.id),
            &[("authorization", &format!("Bearer {alice}"))],
        )
        .await;
    assert_eq!(reply.status, 401);
    // The admin can; an unknown id is a plain 404.
    let known = app
        .get(
            &format!("/admin/keys/{}/usage", app.first.demo_key.id),
            &[("authorization", &admin(&app))],
        )
        .await;
    assert_eq!(known.status, 200);
    let unknown = app
        .get(
            "/admin/keys/sapi_...000000000000/usage",
            &[("authorization", &admin(&app))],
        )
        .await;
    assert_eq!(unknown.status, 404);
}

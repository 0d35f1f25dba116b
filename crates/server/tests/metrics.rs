//! `/metrics`: requests, latencies, refusals and denials, with bounded labels.
//!
//! The only test in its binary (its own process, so its own recorder): the counts it reads
//! are exactly the requests it made.

mod common;

use common::{Spawn, sample, spawn_with};
use secure_api::cli::SettingsArgs;

#[actix_web::test]
async fn metrics_count_requests_failures_and_denials_by_bounded_labels() {
    let app = spawn_with(Spawn {
        args: SettingsArgs {
            default_daily_quota: Some(2),
            ..SettingsArgs::default()
        },
        ..Spawn::default()
    })
    .await;
    let key = app.first.demo_key.key.clone();
    let before = app.metrics_page().await;
    let spent = |page: &str| {
        sample(page, "secure_api_quota_denials_total", "reason=\"spent\"").unwrap_or(0.0)
    };
    for _ in 0..3 {
        app.post("/get-current-time", &[("authorization", &key)], "")
            .await;
    }
    let unknown = "sapi_".to_owned() + &"A".repeat(40);
    app.post("/get-current-time", &[("authorization", &unknown)], "")
        .await;
    app.post("/get-current-time", &[], "").await;
    app.get("/admin/keys/sapi_secret_looking_path_123/usage", &[])
        .await;
    app.get("/no/such/path/with/a/sapi_key_in_it", &[]).await;

    let page = app.metrics_page().await;
    assert_eq!(
        sample(
            &page,
            "secure_api_http_requests_total",
            "route=\"/get-current-time\",method=\"POST\",status=\"200\""
        ),
        Some(2.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "secure_api_http_requests_total",
            "route=\"/get-current-time\",method=\"POST\",status=\"429\""
        ),
        Some(1.0)
    );
    assert_eq!(spent(&page) - spent(&before), 1.0);
    for reason in ["missing_key", "missing_admin_token"] {
        assert!(
            sample(
                &page,
                "secure_api_auth_failures_total",
                &format!("reason=\"{reason}\"")
            )
            .is_some_and(|n| n >= 1.0),
            "{reason}: {page}"
        );
    }
    // A well-formed key that is not stored: its checksum fails offline, so it never reaches
    // the database, and it is counted as unknown.
    assert!(
        sample(
            &page,
            "secure_api_auth_failures_total",
            "reason=\"unknown_key\""
        )
        .is_some_and(|n| n >= 1.0)
    );
    // Route patterns, never raw paths: nothing a client sent in a path becomes a label.
    assert!(page.contains("route=\"/admin/keys/{id}/usage\""), "{page}");
    assert!(page.contains("route=\"unmatched\""), "{page}");
    assert!(!page.contains("sapi_secret_looking_path"), "{page}");
    assert!(!page.contains("/no/such/path"), "{page}");
    assert!(!page.contains(&key), "the key never appears");
    // The latency histogram has buckets.
    assert!(
        page.lines().any(|l| l.starts_with(
            "secure_api_http_request_duration_seconds_bucket{route=\"/get-current-time\",method=\"POST\",le=\"0.005\"}"
        )),
        "{page}"
    );
    assert!(sample(&page, "secure_api_argon2_queue_depth", "").is_some());
    assert!(page.contains("# TYPE secure_api_http_requests_total counter"));
}

//! Cross-language test: `tests/data/sign_request.py` (Python stdlib only) signs, Rust verifies.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{block_on, verifier, verifier_v0};
use request_signing::{Error, Request, Scheme, SignatureHeaders};

const SCRIPT: &str = include_str!("data/sign_request.py");
const KEY: &str = "svc-python";
const SECRET: &str = "python-shared-secret-0123456789";
const METHOD: &str = "post";
const PATH: &str = "/v1/orders/42";
const QUERY: &str = "expand=items&lang=en";
const BODY: &[u8] = b"{\"qty\":3,\"note\":\"caf\xc3\xa9\"}";

/// A header set as (name, value) pairs, as the Python script printed them.
type HeaderSet = Vec<(String, String)>;

/// Runs the Python signer; returns the v1 and the v0 header sets.
fn python_headers() -> Option<(HeaderSet, HeaderSet)> {
    let mut child = match Command::new("python3")
        .args(["-c", SCRIPT, KEY, SECRET, METHOD, PATH, QUERY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound && !test_services::services_required() =>
        {
            eprintln!("skipped python cross-language test: python3 not found");
            return None;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    child.stdin.take().unwrap().write_all(BODY).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut sets = text.split("\n\n").map(|block| {
        block
            .lines()
            .map(|l| {
                let (n, v) = l.split_once(": ").unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect::<Vec<_>>()
    });
    Some((sets.next().unwrap(), sets.next().unwrap()))
}

fn get<'a>(set: &'a [(String, String)], name: &str) -> Option<&'a [u8]> {
    set.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_bytes())
}

fn headers(set: &[(String, String)]) -> SignatureHeaders<'_> {
    SignatureHeaders::from_fn(|name| get(set, name))
}

fn timestamp(set: &[(String, String)]) -> u64 {
    std::str::from_utf8(get(set, "x-api-timestamp").unwrap())
        .unwrap()
        .parse()
        .unwrap()
}

/// Verifies `set` against `request` with a fresh verifier accepting both schemes (so a
/// rejection is never a replay).
fn check(set: &[(String, String)], request: &Request<'_>) -> request_signing::Result<Scheme> {
    let (verifier, _) = verifier_v0(KEY, SECRET, timestamp(set));
    block_on(verifier.verify(&headers(set), request)).map(|v| v.scheme())
}

fn with_header(set: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    set.iter()
        .map(|(n, v)| {
            (
                n.clone(),
                if n == name {
                    value.to_owned()
                } else {
                    v.clone()
                },
            )
        })
        .collect()
}

#[test]
#[ignore = "needs python3"]
fn python_v1_headers_verify_and_any_change_is_rejected() {
    let Some((v1, _)) = python_headers() else {
        return;
    };
    let target = format!("{PATH}?{QUERY}");
    let request = Request::new("POST", &target, BODY);
    assert_eq!(check(&v1, &request).unwrap(), Scheme::V1);

    // Changed request parts.
    let other_query = format!("{PATH}?expand=items&lang=de");
    let other_path = format!("/v1/orders/43?{QUERY}");
    for changed in [
        Request::new("PUT", &target, BODY),
        Request::new("POST", &other_path, BODY),
        Request::new("POST", &other_query, BODY),
        Request::new("POST", PATH, BODY),
        Request::new("POST", &target, b"{\"qty\":4,\"note\":\"caf\xc3\xa9\"}"),
        Request::new("POST", &target, b""),
    ] {
        assert!(
            matches!(check(&v1, &changed), Err(Error::BadSignature)),
            "{changed:?}"
        );
    }
    // Same request, written differently (case of method, order and encoding of query): accepted.
    let reordered = format!("{PATH}?lang=%65n&expand=items");
    assert!(check(&v1, &Request::new("post", &reordered, BODY)).is_ok());

    // Changed signed headers.
    let ts = timestamp(&v1);
    let nonce = std::str::from_utf8(get(&v1, "X-API-Nonce").unwrap()).unwrap();
    let last = if nonce.ends_with('0') { '1' } else { '0' };
    let other_nonce = format!("{}{last}", &nonce[..nonce.len() - 1]);
    let changed_ts = with_header(&v1, "X-API-Timestamp", &(ts - 1).to_string());
    let (verifier, _) = verifier(KEY, SECRET, ts);
    assert!(matches!(
        block_on(verifier.verify(&headers(&changed_ts), &request)),
        Err(Error::BadSignature)
    ));
    let changed_nonce = with_header(&v1, "X-API-Nonce", &other_nonce);
    assert!(matches!(
        check(&changed_nonce, &request),
        Err(Error::BadSignature)
    ));
    let changed_key = with_header(&v1, "X-API-Key", "svc-pythoN");
    assert!(matches!(
        check(&changed_key, &request),
        Err(Error::UnknownKey)
    ));
}

#[test]
#[ignore = "needs python3"]
fn python_v0_headers_verify_once_and_changes_are_rejected() {
    let Some((_, v0)) = python_headers() else {
        return;
    };
    let request = Request::new("GET", "/legacy", b"");
    let ts = timestamp(&v0);
    let (verifier, _) = verifier_v0(KEY, SECRET, ts);
    let ok = block_on(verifier.verify(&headers(&v0), &request)).unwrap();
    assert_eq!(ok.scheme(), Scheme::V0);
    assert!(matches!(
        block_on(verifier.verify(&headers(&v0), &request)),
        Err(Error::Replayed)
    ));

    let changed_ts = with_header(&v0, "X-API-Timestamp", &(ts + 1).to_string());
    assert!(matches!(
        check(&changed_ts, &request),
        Err(Error::BadSignature)
    ));
    let sig = std::str::from_utf8(get(&v0, "X-API-Signature").unwrap()).unwrap();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    let changed_sig = with_header(&v0, "X-API-Signature", &flipped);
    assert!(matches!(
        check(&changed_sig, &request),
        Err(Error::BadSignature)
    ));
}

#[test]
fn readme_shows_the_tested_python_signer() {
    assert!(include_str!("../README.md").contains(SCRIPT));
}

//! The awc helper adds headers that the verifier accepts for that request.

mod common;

use common::{block_on, verifier};
use request_signing::{
    Error, FakeClock, Request, Secret, SignatureHeaders, Signer, sign_awc_request,
};

#[test]
fn signed_awc_request_verifies() {
    const NOW: u64 = 1_700_000_000;
    let signer = Signer::new("svc", Secret::from("s"))
        .unwrap()
        .with_clock(FakeClock::at_unix_secs(NOW));
    let client = awc::Client::default();
    let body = br#"{"a":1}"#;
    let req = sign_awc_request(
        &signer,
        client.post("http://127.0.0.1:9/v1/items?b=2&a=1"),
        body,
    )
    .unwrap();
    let headers = req.headers();
    let sig = SignatureHeaders::from_fn(|name| headers.get(name).map(|v| v.as_bytes()));
    assert!(sig.nonce.is_some());

    let (v, _) = verifier("svc", "s", NOW);
    let ok = block_on(v.verify(&sig, &Request::new("POST", "/v1/items?a=1&b=2", body)));
    assert!(ok.is_ok(), "{ok:?}");
    let (v, _) = verifier("svc", "s", NOW);
    let bad = block_on(v.verify(&sig, &Request::new("POST", "/v1/items?a=1&b=3", body)));
    assert!(matches!(bad, Err(Error::BadSignature)));
}

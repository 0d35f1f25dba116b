//! The published vectors in `tests/data/` (computed by `gen_vectors.py` with Python's stdlib).

mod common;

use std::collections::HashMap;

use common::{block_on, verifier, verifier_v0};
use request_signing::dangerous::verify_ignoring_timestamp;
use request_signing::{
    Request, Scheme, Secret, SignatureHeaders, Signer, canonical_string_v1, sign_v0,
};

fn blocks(text: &str) -> Vec<HashMap<&str, &str>> {
    text.split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .map(|l| {
                    let (k, v) = l.split_once(':').unwrap();
                    (k, v.strip_prefix(' ').unwrap_or(v))
                })
                .collect()
        })
        .collect()
}

#[test]
fn v1_vectors() {
    let data = include_str!("data/v1_vectors.txt");
    let vectors = blocks(data);
    assert_eq!(vectors.len(), 5);
    for v in vectors {
        let name = v["name"];
        let ts: u64 = v["timestamp"].parse().unwrap();
        let body = hex::decode(v["body_hex"]).unwrap();
        let canonical =
            canonical_string_v1(v["key_id"], ts, v["nonce"], v["method"], v["target"], &body)
                .unwrap();
        assert_eq!(canonical, v["canonical"].replace("\\n", "\n"), "{name}");

        let signer = Signer::new(v["key_id"], Secret::from(v["secret"])).unwrap();
        let headers = signer
            .sign_with(v["method"], v["target"], &body, ts, v["nonce"])
            .unwrap();
        assert_eq!(headers.signature(), v["signature"], "{name}");

        // The verifier accepts the published headers once, at the signed time.
        let (verifier, _) = verifier(v["key_id"], v["secret"], ts);
        let sig = SignatureHeaders {
            key: Some(v["key_id"].as_bytes()),
            timestamp: Some(v["timestamp"].as_bytes()),
            nonce: Some(v["nonce"].as_bytes()),
            signature: Some(v["signature"].as_bytes()),
        };
        let request = Request::new(v["method"], v["target"], &body);
        let ok = block_on(verifier.verify(&sig, &request)).unwrap();
        assert_eq!(ok.scheme(), Scheme::V1);
        assert_eq!(ok.key_id(), v["key_id"]);
        assert!(
            block_on(verifier.verify(&sig, &request)).is_err(),
            "{name} replay"
        );
        assert!(verify_ignoring_timestamp(&sig, &request, &[Secret::from(v["secret"])]).is_ok());
    }
}

#[test]
fn v0_vectors() {
    let vectors = blocks(include_str!("data/v0_vectors.txt"));
    assert_eq!(vectors.len(), 3);
    for v in vectors {
        let ts: u64 = v["timestamp"].parse().unwrap();
        let headers = sign_v0(v["api_key"], &Secret::from(v["secret"]), ts).unwrap();
        assert_eq!(headers.signature(), v["signature"], "{}", v["name"]);
        assert_eq!(headers.nonce(), None);

        let (verifier, _) = verifier_v0(v["api_key"], v["secret"], ts + 10);
        let sig = SignatureHeaders::from_signed(&headers);
        // v0 does not cover the request: any method, path and body pass.
        let request = Request::new("POST", "/anything", b"body");
        let ok = block_on(verifier.verify(&sig, &request)).unwrap();
        assert_eq!(ok.scheme(), Scheme::V0);
        assert!(block_on(verifier.verify(&sig, &request)).is_err());
    }
}

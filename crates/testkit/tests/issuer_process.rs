//! The `test-issuer` binary as the other tests use it: a process of its own serving OIDC
//! discovery and a JWKS, minting tokens on request. Being an integration test of this package
//! also makes `cargo test --workspace` build the binary (`scripts/test.sh` then points
//! `WISHCTL_TEST_ISSUER` at it instead of letting each test process build it again).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::time::Duration;

use serde_json::{json, Value};
use testkit::issuer::IssuerProcess;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET url` over a fresh loopback connection; the body of a 200 answer.
async fn get(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .unwrap()
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{url}: {response}");
    response.split_once("\r\n\r\n").unwrap().1.to_string()
}

fn header_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .unwrap();
    let header: Value = serde_json::from_slice(&bytes).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_issuer_process_serves_discovery_and_a_jwks_holding_the_key_of_its_tokens() {
    // GIVEN the test-issuer binary this package builds
    let process = IssuerProcess::spawn_binary(env!("CARGO_BIN_EXE_test-issuer")).unwrap();
    let issuer = process.issuer().to_string();

    // WHEN its discovery document, its JWKS and a minted token are fetched
    let discovery: Value = serde_json::from_str(
        &get(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
        .await,
    )
    .unwrap();
    let jwks: Value =
        serde_json::from_str(&get(discovery["jwks_uri"].as_str().unwrap()).await).unwrap();
    let token = process
        .mint(&json!({"sub": "auth0|tester", "aud": "a"}))
        .await
        .unwrap();

    // THEN discovery names the issuer exactly, and the token's kid is an RSA key of the JWKS
    assert_eq!(discovery["issuer"], issuer.as_str());
    let kid = header_kid(&token);
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    assert_eq!(key["kty"], "RSA");
    assert!(key["n"].as_str().unwrap().len() > 300, "a 2048-bit modulus");
}

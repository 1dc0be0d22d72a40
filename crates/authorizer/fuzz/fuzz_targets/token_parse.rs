//! Token parsing on arbitrary input: the `Authorization` header value, the compact JWS split,
//! header and claims decoding, claim rendering and scope reading never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let _ = authorizer::decode_claims_unverified(&header);
    if let Ok(token) = authorizer::extract_token(Some(&header)) {
        if let Ok(parsed) = authorizer::UnverifiedToken::parse(token) {
            let _ = authorizer::render_claims(&parsed.claims);
            let held = authorizer::token_scopes(&parsed.claims);
            let _ = authorizer::matched_scopes(&["write:items".to_string()], &held);
            assert!(parsed.signing_input.len() < token.len());
        }
    }
});

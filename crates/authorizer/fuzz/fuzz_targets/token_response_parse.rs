//! The token endpoint's answer on arbitrary status and bytes: never panics, and what it shows of
//! an issuer's error is printable.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_be_bytes(*status) % 500;
    let Ok(url) = url::Url::parse("https://tenant.auth0.com/oauth/token") else {
        return;
    };
    if let Err(err) =
        authorizer::client_credentials::parse_token_response(&url, "client", status, body)
    {
        assert!(!err.to_string().chars().any(char::is_control));
    }
});

//! OIDC discovery parsing on arbitrary bytes, and the checks on the endpoints it names, from an
//! https issuer and from a local http one: never panics, and never lets plain http through from
//! an https issuer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(document) = authorizer::DiscoveryDocument::from_slice(data) else {
        return;
    };
    let origins = [
        "https://tenant.auth0.com/.well-known/openid-configuration",
        "http://127.0.0.1:3000/.well-known/openid-configuration",
    ];
    for origin in origins {
        let Ok(origin) = url::Url::parse(origin) else {
            return;
        };
        for endpoint in [document.jwks_uri(&origin), document.token_endpoint(&origin)]
            .into_iter()
            .flatten()
        {
            if origin.scheme() == "https" {
                assert_eq!(endpoint.scheme(), "https");
            }
            assert!(endpoint.username().is_empty() && endpoint.password().is_none());
        }
    }
});

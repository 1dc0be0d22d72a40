//! JWKS parsing on arbitrary bytes (what an issuer's `jwks_uri` answers): never panics, and only
//! RSA signing keys with a kid survive.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = authorizer::JwkSet::from_slice(data) {
        assert_eq!(set.kids().len(), set.len());
    }
});

//! The wish-list HTTP API on one machine, behind API Gateway's JWT authorizer.
//!
//! [`DevServer`] listens on 127.0.0.1 and serves exactly the routes of `stack::ROUTES` (any other
//! path or method: 404 `{"message":"Not Found"}`). Requests to a JWT route go through
//! `authorizer` first (401 `{"message":"Unauthorized"}` with a `www-authenticate` header, or 403
//! `{"message":"Forbidden"}` for a scope mismatch); then every request becomes the payload
//! format 2.0 event API Gateway would send ([`event::build_event`]) and is answered by
//! `wishlist::event::handle_event`, the code the Lambda runs, over any `wishlist::Store`.
//!
//! Without an external issuer the server is its own OIDC issuer: it serves discovery and a
//! JWKS for the [`DevKey`] kept in the dev folder, and `wishctl token` mints tokens with that key.
//!
//! Not here: flags and printing (`deploy`), the authorizer rules themselves (`authorizer`).

mod dev_key;
pub mod event;
mod server;

pub use dev_key::{
    DevKey, DevKeyError, KeyOrigin, MintedToken, TokenRequest, DEFAULT_AUDIENCE, DEFAULT_DEV_DIR,
    DEFAULT_SUBJECT, KEY_FILE,
};
pub use server::{
    self_issuer_url, DevServer, DevServerError, DevServerOptions, RequestLog, RequestRecord,
    TokenIssuer, DISCOVERY_PATH, JWKS_PATH, MAX_REQUEST_BYTES,
};

/// The port `wishctl dev` listens on, and `wishctl token` assumes, by default.
pub const DEFAULT_PORT: u16 = 3000;

//! The wish-list HTTP API on one machine, behind API Gateway's JWT authorizer.
//!
//! [`DevServer`] listens on 127.0.0.1 and serves exactly the routes of `stack::ROUTES` (any other
//! path or method: 404 `{"message":"Not Found"}`). Requests to a JWT route go through
//! `authorizer` first (401 `{"message":"Unauthorized"}` with a `www-authenticate` header, or 403
//! `{"message":"Forbidden"}` for a scope mismatch); then every request becomes the payload
//! format 2.0 event API Gateway would send ([`event::build_event`]) and is answered by
//! `wishlist::event::handle_event`, the code the Lambda runs, over any `wishlist::Store`.
//!
//! Without an external issuer the server is its own OIDC issuer: it serves discovery, a JWKS for
//! the [`DevKey`] kept in the dev folder ([`default_dev_dir`]), and a client-credentials token
//! endpoint ([`TOKEN_PATH`]) for the [`DevClient`] kept beside the key; `wishctl token` mints
//! tokens with that key, or asks the endpoint as a pipeline would.
//!
//! It is built for hostile clients: connection cap, header and body time limits, size limits,
//! and a request log that never blocks ([`ServerLimits`], [`RequestLog`]); [`LogQueue`] is the
//! bounded, dropping writer that `wishctl dev` sends all its log lines through.
//!
//! Not here: flags and printing (`deploy`), the authorizer rules themselves (`authorizer`).

mod dev_key;
pub mod event;
mod log_queue;
mod request_log;
mod server;
mod token_endpoint;

pub use dev_key::{
    default_dev_dir, DevClient, DevKey, DevKeyError, KeyOrigin, MintedToken, TokenRequest,
    CLIENT_SECRET_FILE, DEFAULT_AUDIENCE, DEFAULT_SUBJECT, DEV_CLIENT_ID, KEY_FILE,
};
pub use log_queue::{LogQueue, QueuedLine, LOG_QUEUE_CAPACITY, LOG_QUEUE_MAX_BYTES};
pub use request_log::{LineLog, LogFormat, RequestLog, RequestRecord};
pub use server::{
    self_issuer_url, DevServer, DevServerError, DevServerOptions, ServerLimits, ServerStats,
    TokenIssuer, DISCOVERY_PATH, JWKS_PATH, MAX_LINGERING_REFUSALS, MAX_REQUEST_BYTES,
};
pub use token_endpoint::{ISSUED_TOKEN_LIFETIME, MAX_TOKEN_REQUEST_BYTES, TOKEN_PATH};

/// The port `wishctl dev` listens on, and `wishctl token` assumes, by default.
pub const DEFAULT_PORT: u16 = 3000;

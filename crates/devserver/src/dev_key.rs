//! The local signing key: the dev server's own issuer signs with it and `wishctl token` mints
//! with it. One RSA-2048 key per dev folder, created on first use (PKCS#8, mode 0600) and reused
//! across restarts, so tokens minted yesterday still verify today until they expire.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use thiserror::Error;

/// Where `wishctl dev` keeps its key unless told otherwise (relative to the current directory;
/// `.wishctl/` is git-ignored).
pub const DEFAULT_DEV_DIR: &str = ".wishctl/dev";
/// The key file inside the dev folder.
pub const KEY_FILE: &str = "signing-key.pk8";
/// The audience of the dev server's own issuer when none is given, and of `wishctl token`.
pub const DEFAULT_AUDIENCE: &str = "wishctl-dev";
/// The `sub` of `wishctl token` when none is given.
pub const DEFAULT_SUBJECT: &str = "wishctl|dev-user";

#[derive(Debug, Error)]
pub enum DevKeyError {
    #[error("cannot create the dev folder {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the dev key {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the dev key {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an RSA private key in PKCS#8 DER ({reason}); delete it to get a new one"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error("generating an RSA key failed")]
    Generate,
    #[error("signing a token failed")]
    Sign,
}

/// The dev folder's RSA key, with its JWK thumbprint as `kid`.
pub struct DevKey {
    pair: RsaKeyPair,
    kid: String,
    path: PathBuf,
}

impl std::fmt::Debug for DevKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKey")
            .field("kid", &self.kid)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Whether [`DevKey::load_or_create`] found a key or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Created,
    Loaded,
}

impl DevKey {
    /// The key in `dir`, created (with `dir`) if there is none. Two processes starting at once
    /// end up with the same key: the file appears atomically and the loser reads the winner's.
    pub fn load_or_create(dir: &Path) -> Result<(DevKey, KeyOrigin), DevKeyError> {
        let path = dir.join(KEY_FILE);
        if path.exists() {
            return Ok((Self::load(&path)?, KeyOrigin::Loaded));
        }
        create_private_dir(dir)?;
        let pkcs8 = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map_err(|_| DevKeyError::Generate)?;
        let write_err = |source| DevKeyError::Write {
            path: path.clone(),
            source,
        };
        let temp = dir.join(format!(
            ".{KEY_FILE}.{}.{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut file = private_file_options().open(&temp).map_err(write_err)?;
        let written = file
            .write_all(pkcs8.as_ref())
            .and_then(|()| file.sync_all());
        drop(file);
        let linked = written.and_then(|()| fs::hard_link(&temp, &path));
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok((Self::load(&path)?, KeyOrigin::Created)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::load(&path)?, KeyOrigin::Loaded))
            }
            Err(err) => Err(write_err(err)),
        }
    }

    fn load(path: &Path) -> Result<DevKey, DevKeyError> {
        let der = fs::read(path).map_err(|source| DevKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        restrict_to_owner(path).map_err(|source| DevKeyError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let pair = RsaKeyPair::from_pkcs8(&der).map_err(|err| DevKeyError::Corrupt {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
        let kid = thumbprint(&pair);
        Ok(DevKey {
            pair,
            kid,
            path: path.to_path_buf(),
        })
    }

    /// RFC 7638 thumbprint of the public key: stable across restarts, changes with the key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The public key as a JWK (`kty`, `kid`, `use`, `alg`, `n`, `e`).
    pub fn jwk(&self) -> Value {
        let (n, e) = public_components(&self.pair);
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": n, "e": e})
    }

    /// The JWKS the dev server publishes: this one key.
    pub fn jwks(&self) -> Value {
        json!({ "keys": [self.jwk()] })
    }

    /// An RS256 token for `request`, issued now.
    pub fn mint(&self, request: &TokenRequest) -> Result<MintedToken, DevKeyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.mint_at(request, now)
    }

    /// An RS256 token for `request`, issued at `now` (seconds since the epoch).
    pub fn mint_at(&self, request: &TokenRequest, now: u64) -> Result<MintedToken, DevKeyError> {
        let expires_at = now.saturating_add(request.expires_in.as_secs());
        let mut claims = json!({
            "iss": request.issuer,
            "sub": request.subject,
            "aud": request.audience,
            "iat": now,
            "exp": expires_at,
        });
        if !request.scopes.is_empty() {
            claims["scope"] = Value::String(request.scopes.join(" "));
        }
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| DevKeyError::Sign)?;
        Ok(MintedToken {
            token: format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            claims,
            expires_at,
        })
    }
}

/// What `wishctl token` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `iss`: the dev server's issuer URL ([`crate::self_issuer_url`]).
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    /// Written as the space-separated `scope` claim, as Auth0 does.
    pub scopes: Vec<String>,
    pub expires_in: Duration,
}

/// A signed token and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MintedToken {
    pub token: String,
    pub claims: Value,
    /// `exp`, seconds since the epoch.
    pub expires_at: u64,
}

fn public_components(pair: &RsaKeyPair) -> (String, String) {
    let public = pair.public_key();
    (
        URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    )
}

fn thumbprint(pair: &RsaKeyPair) -> String {
    let (n, e) = public_components(pair);
    // RFC 7638: the required members, sorted, no whitespace.
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn create_private_dir(dir: &Path) -> Result<(), DevKeyError> {
    let err = |source| DevKeyError::CreateDir {
        path: dir.to_path_buf(),
        source,
    };
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

fn private_file_options() -> fs::OpenOptions {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

/// A private key readable by others is narrowed to its owner rather than refused.
fn restrict_to_owner(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o700))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_empty_folder_then_a_key_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("nested/dev");
        let (first, origin) = DevKey::load_or_create(&dev).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        let (second, origin) = DevKey::load_or_create(&dev).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(first.kid(), second.kid());
        assert_eq!(first.jwk(), second.jwk());
        let leftovers: Vec<_> = fs::read_dir(&dev)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, [std::ffi::OsString::from(KEY_FILE)]);
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("dev");
        let (key, _) = DevKey::load_or_create(&dev).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(key.path()), 0o600);
        assert_eq!(mode(&dev), 0o700);
        // A key someone made world-readable is narrowed on the next load.
        fs::set_permissions(key.path(), fs::Permissions::from_mode(0o644)).unwrap();
        DevKey::load_or_create(&dev).unwrap();
        assert_eq!(mode(key.path()), 0o600);
    }

    #[test]
    fn a_corrupt_key_file_is_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEY_FILE), b"not a key").unwrap();
        let err = DevKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, DevKeyError::Corrupt { .. }), "{err}");
        assert_eq!(fs::read(dir.path().join(KEY_FILE)).unwrap(), b"not a key");
    }

    #[test]
    fn minted_tokens_carry_the_requested_claims() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = DevKey::load_or_create(dir.path()).unwrap();
        let request = TokenRequest {
            issuer: "http://127.0.0.1:3000/".into(),
            subject: "alice".into(),
            audience: DEFAULT_AUDIENCE.into(),
            scopes: vec!["read".into(), "write".into()],
            expires_in: Duration::from_secs(3600),
        };
        let minted = key.mint_at(&request, 1_800_000_000).unwrap();
        assert_eq!(
            minted.claims,
            json!({"iss": "http://127.0.0.1:3000/", "sub": "alice", "aud": "wishctl-dev",
                   "iat": 1_800_000_000u64, "exp": 1_800_003_600u64, "scope": "read write"})
        );
        assert_eq!(minted.expires_at, 1_800_003_600);
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(minted.token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            header,
            json!({"alg": "RS256", "typ": "JWT", "kid": key.kid()})
        );
    }
}

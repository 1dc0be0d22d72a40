//! The local signing key: the dev server's own issuer signs with it and `wishctl token` mints
//! with it. One RSA-2048 key per dev folder, created on first use (PKCS#8, mode 0600) and reused
//! across restarts, so tokens minted yesterday still verify today until they expire. Beside it,
//! the secret of the dev issuer's one client-credentials client ([`DevClient`]).
//!
//! Where it lives: by default a per-user folder ([`default_dev_dir`]: `$XDG_STATE_HOME/wishctl/dev`,
//! else `~/.local/state/wishctl/dev`), never the current directory. A folder inside a git work
//! tree (given, or the default under a home that is a checkout) is used only when git ignores
//! every file written there (the key, the client secret and their temporary copies), asked
//! before anything is written, so no secret is ever left where `git add .` would commit it. A dev folder or key file that someone
//! else can write (group/world-writable, or owned by another user) is refused: whoever can swap
//! the key can mint tokens the server accepts.

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

/// The key file inside the dev folder.
pub const KEY_FILE: &str = "signing-key.pk8";
/// The client secret file inside the dev folder.
pub const CLIENT_SECRET_FILE: &str = "client-secret";
/// The client id of the dev issuer's client-credentials client.
pub const DEV_CLIENT_ID: &str = "wishctl-dev-client";
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
    #[error(
        "no folder for the dev key: neither XDG_STATE_HOME nor HOME is set; pass --dev-dir DIR"
    )]
    NoHome,
    #[error(
        "{path} is {problem}: whoever can change it can mint tokens the dev server accepts. {fix}"
    )]
    NotPrivate {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    #[error("refusing to keep the dev key and client secret in {dir}: it is inside the git work tree {repo} and git does not ignore {files}, so `git add` would commit them. Nothing was written. {fix}")]
    InsideCheckout {
        dir: PathBuf,
        repo: PathBuf,
        /// The files (as the folder would hold them) git would commit.
        files: String,
        /// What to do: the `.gitignore` line, and another folder when one would do.
        fix: String,
    },
    #[error("cannot ask git whether it ignores the dev folder {dir} (inside the git work tree {repo}): {reason}; pass --dev-dir with a folder outside the checkout")]
    GitCheck {
        dir: PathBuf,
        repo: PathBuf,
        reason: String,
    },
    #[error("signing a token failed")]
    Sign,
}

/// The dev folder's RSA key, with its JWK thumbprint as `kid`.
pub struct DevKey {
    pair: RsaKeyPair,
    kid: String,
    path: PathBuf,
    client: DevClient,
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
        refuse_inside_checkout(dir)?;
        let path = dir.join(KEY_FILE);
        if path.exists() {
            check_private(dir, true)?;
            return Ok((Self::load(&path)?, KeyOrigin::Loaded));
        }
        create_private_dir(dir)?;
        check_private(dir, true)?;
        let pkcs8 = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map_err(|_| DevKeyError::Generate)?;
        let write_err = |source| DevKeyError::Write {
            path: path.clone(),
            source,
        };
        let temp = temp_path(dir, KEY_FILE);
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
        check_private(path, false)?;
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
        let dir = path.parent().unwrap_or(Path::new("."));
        let client = DevClient::load_or_create(dir)?;
        Ok(DevKey {
            pair,
            kid,
            path: path.to_path_buf(),
            client,
        })
    }

    /// The dev issuer's client-credentials client (id and secret).
    pub fn client(&self) -> &DevClient {
        &self.client
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
        self.sign_claims(claims, expires_at)
    }

    /// An RS256 token over exactly `claims` (which should hold `exp` = `expires_at`).
    pub fn sign_claims(&self, claims: Value, expires_at: u64) -> Result<MintedToken, DevKeyError> {
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

/// The dev issuer's client for the client-credentials grant: a fixed id and a random secret kept
/// in the dev folder (mode 0600), stable across restarts so a pipeline's stored secret keeps
/// working.
#[derive(Clone)]
pub struct DevClient {
    pub id: String,
    pub secret: authorizer::Secret,
    pub path: PathBuf,
}

impl std::fmt::Debug for DevClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevClient")
            .field("id", &self.id)
            .field("secret", &self.secret)
            .field("path", &self.path)
            .finish()
    }
}

impl DevClient {
    fn load_or_create(dir: &Path) -> Result<DevClient, DevKeyError> {
        let path = dir.join(CLIENT_SECRET_FILE);
        if !path.exists() {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes).map_err(|_| DevKeyError::Generate)?;
            let secret = URL_SAFE_NO_PAD.encode(bytes);
            let write_err = |source| DevKeyError::Write {
                path: path.clone(),
                source,
            };
            let temp = temp_path(dir, CLIENT_SECRET_FILE);
            let mut file = private_file_options().open(&temp).map_err(write_err)?;
            let written = file
                .write_all(secret.as_bytes())
                .and_then(|()| file.sync_all());
            drop(file);
            let linked = written.and_then(|()| fs::hard_link(&temp, &path));
            let _ = fs::remove_file(&temp);
            match linked {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(write_err(err)),
            }
        }
        check_private(&path, false)?;
        restrict_to_owner(&path).map_err(|source| DevKeyError::Write {
            path: path.clone(),
            source,
        })?;
        let text = fs::read_to_string(&path).map_err(|source| DevKeyError::Read {
            path: path.clone(),
            source,
        })?;
        let secret = text.trim().to_string();
        if secret.len() < 16 || secret.len() > 512 {
            return Err(DevKeyError::Corrupt {
                path,
                reason: "the client secret must be 16 to 512 characters".into(),
            });
        }
        Ok(DevClient {
            id: DEV_CLIENT_ID.to_string(),
            secret: authorizer::Secret::new(secret),
            path,
        })
    }
}

/// The per-user dev folder: `$XDG_STATE_HOME/wishctl/dev`, else `$HOME/.local/state/wishctl/dev`.
pub fn default_dev_dir() -> Result<PathBuf, DevKeyError> {
    let from = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(state) = from("XDG_STATE_HOME") {
        return Ok(state.join("wishctl").join("dev"));
    }
    from("HOME")
        .map(|home| home.join(".local/state/wishctl/dev"))
        .ok_or(DevKeyError::NoHome)
}

/// Every file the dev folder holds, as shown in messages and as a path to ask git about: the key,
/// the client secret, and the temporary copy each is written to before it appears under its name
/// (left behind only if the process dies in between, and then it holds the secret too).
fn dev_files(dir: &Path) -> [(String, PathBuf); 4] {
    [
        (KEY_FILE.to_string(), dir.join(KEY_FILE)),
        (CLIENT_SECRET_FILE.to_string(), dir.join(CLIENT_SECRET_FILE)),
        (format!(".{KEY_FILE}.*"), temp_path(dir, KEY_FILE)),
        (
            format!(".{CLIENT_SECRET_FILE}.*"),
            temp_path(dir, CLIENT_SECRET_FILE),
        ),
    ]
}

/// Where `file` is written first, before it is linked to its name in one step.
fn temp_path(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!(
        ".{file}.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// What git thinks of a dev folder.
enum CheckoutStatus {
    /// Outside any git work tree, or every file it would hold is ignored.
    Private,
    /// Inside `repo`, where git would commit `files` (names as in [`dev_files`]); `relative` is
    /// the folder's path from the top of the work tree.
    Committed {
        repo: PathBuf,
        relative: PathBuf,
        files: Vec<String>,
    },
}

/// Asks git, without writing anything, whether it would commit any file of the dev folder `dir`.
fn checkout_status(dir: &Path) -> Result<CheckoutStatus, DevKeyError> {
    let absolute = absolute(dir);
    // The nearest existing ancestor, resolved, so symlinks cannot hide a checkout.
    let Some(existing_ancestor) = absolute.ancestors().find(|p| p.exists()) else {
        return Ok(CheckoutStatus::Private);
    };
    let Ok(existing) = existing_ancestor.canonicalize() else {
        return Ok(CheckoutStatus::Private);
    };
    let Some(repo) = existing
        .ancestors()
        .find(|p| p.join(".git").exists())
        .map(Path::to_path_buf)
    else {
        return Ok(CheckoutStatus::Private);
    };
    let rest = absolute
        .strip_prefix(existing_ancestor)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let resolved = existing.join(rest);
    let mut files = Vec::new();
    for (shown, path) in dev_files(&resolved) {
        if !git_ignores(&repo, &path).map_err(|reason| DevKeyError::GitCheck {
            dir: dir.to_path_buf(),
            repo: repo.clone(),
            reason,
        })? {
            files.push(shown);
        }
    }
    if files.is_empty() {
        return Ok(CheckoutStatus::Private);
    }
    let relative = resolved
        .strip_prefix(&repo)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Ok(CheckoutStatus::Committed {
        repo,
        relative,
        files,
    })
}

/// `git check-ignore`: whether git ignores `path` (which need not exist) in `repo`. A tracked
/// file is not ignored.
fn git_ignores(repo: &Path, path: &Path) -> Result<bool, String> {
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["check-ignore", "-q", "--"])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .map_err(|err| format!("running git failed ({err})"))?;
    match output.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(format!(
            "`git check-ignore` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )),
    }
}

fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// Refuses a dev folder inside a git work tree unless git ignores every file wishctl writes
/// there. Runs before anything is written, so a refused folder is left as it was.
fn refuse_inside_checkout(dir: &Path) -> Result<(), DevKeyError> {
    let CheckoutStatus::Committed {
        repo,
        relative,
        files,
    } = checkout_status(dir)?
    else {
        return Ok(());
    };
    let ignore_line = format!("/{}/", relative.display());
    let ignore = format!(
        "Add the line `{ignore_line}` to {}",
        repo.join(".gitignore").display()
    );
    // Another folder is suggested only when it would be accepted.
    let default = default_dev_dir().ok();
    let fix = match default {
        Some(default) if absolute(dir) == default => format!(
            "{ignore}, or set XDG_STATE_HOME to a folder outside the checkout (the dev folder is \
             then $XDG_STATE_HOME/wishctl/dev), or pass --dev-dir with a folder outside it."
        ),
        Some(default) if matches!(checkout_status(&default), Ok(CheckoutStatus::Private)) => {
            format!(
                "{ignore}, or pass --dev-dir with a folder outside the checkout, or leave \
                 --dev-dir out to use the default, {}.",
                default.display()
            )
        }
        _ => format!("{ignore}, or pass --dev-dir with a folder outside the checkout."),
    };
    Err(DevKeyError::InsideCheckout {
        dir: dir.to_path_buf(),
        repo,
        files: join_names(&files),
        fix,
    })
}

/// `a`, `a and b`, `a, b and c`.
fn join_names(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Refuses a folder or file that others can write or that another user owns.
fn check_private(path: &Path, is_dir: bool) -> Result<(), DevKeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
        let meta = fs::symlink_metadata(path).map_err(|source| DevKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let what = if is_dir { "folder" } else { "file" };
        if meta.file_type().is_symlink() {
            return Err(DevKeyError::NotPrivate {
                path: path.to_path_buf(),
                problem: format!("a symbolic link, not a {what}"),
                fix: format!("Replace it with a real {what} or pass another --dev-dir."),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            let fix = if is_dir {
                format!(
                    "Run `chmod 700 {}` if you trust its contents, or pass another --dev-dir.",
                    path.display()
                )
            } else {
                format!(
                    "Delete it (a new one is made) or run `chmod 600 {}` if you trust it.",
                    path.display()
                )
            };
            return Err(DevKeyError::NotPrivate {
                path: path.to_path_buf(),
                problem: format!("writable by others (mode {mode:o})"),
                fix,
            });
        }
        // The process's own uid, as the kernel reports it for /proc/self.
        if let Ok(me) = fs::metadata("/proc/self").map(|m| m.uid()) {
            if meta.uid() != me {
                return Err(DevKeyError::NotPrivate {
                    path: path.to_path_buf(),
                    problem: format!("owned by another user (uid {}, you are {me})", meta.uid()),
                    fix: "Pass a --dev-dir of your own.".into(),
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = (path, is_dir);
    Ok(())
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
        let mut leftovers: Vec<_> = fs::read_dir(&dev)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        leftovers.sort();
        assert_eq!(
            leftovers,
            [
                std::ffi::OsString::from(CLIENT_SECRET_FILE),
                std::ffi::OsString::from(KEY_FILE)
            ]
        );
        assert_eq!(first.client().secret, second.client().secret);
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

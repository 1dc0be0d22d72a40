//! Shared GIVEN steps: stack descriptions, a function zip, provisioners pointed at moto.

use std::path::Path;

use base64::Engine;
use provision::{FunctionCode, Provisioner, Settings};
use sha2::{Digest, Sha256};
use stack::{
    AuthorizerSettings, CorsSettings, FunctionSettings, Issuer, StackName, StackSpec, Tags,
};
use testkit::moto::{MotoServer, MotoSession};

pub const ISSUER: &str = "https://tenant.eu.auth0.com/";
pub const ACCOUNT: &str = testkit::moto::ACCOUNT_ID;
pub const REGION: &str = testkit::moto::REGION;

pub async fn moto() -> MotoSession {
    MotoServer::shared().session().await
}

/// A stack description as `wishctl up --stack NAME --audience ... --scope ... --tag team=web`.
pub fn spec(stack: &str, audiences: &[&str], scopes: &[&str]) -> StackSpec {
    let name: StackName = stack.parse().expect("valid stack name");
    StackSpec {
        authorizer: AuthorizerSettings::new(
            Issuer::parse(ISSUER).expect("valid issuer"),
            audiences.iter().map(|a| a.to_string()),
            scopes.iter().map(|s| s.to_string()),
        )
        .expect("valid authorizer settings"),
        function: FunctionSettings::default(),
        cors: CorsSettings::default(),
        tags: Tags::for_stack(&name, ["team=web"]).expect("valid tags"),
        name,
    }
}

/// A Lambda zip holding one entry `bootstrap` with `content`, and its `CodeSha256`.
pub fn code(dir: &Path, content: &[u8]) -> FunctionCode {
    let path = testkit::lambda_zip::write_zip(
        &dir.join(format!("bootstrap-{}.zip", content.len())),
        "bootstrap",
        content,
    );
    let bytes = std::fs::read(&path).expect("read zip");
    FunctionCode {
        path,
        sha256_base64: base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&bytes)),
    }
}

/// Settings with short bounds, so that fault tests finish quickly.
pub fn quick_settings() -> Settings {
    Settings {
        wait_timeout: std::time::Duration::from_secs(10),
        poll_interval: std::time::Duration::from_millis(20),
        propagation_timeout: std::time::Duration::from_secs(5),
        propagation_retry_interval: std::time::Duration::from_millis(50),
    }
}

pub async fn provisioner(session: &MotoSession) -> Provisioner {
    Provisioner::new(&session.sdk_config().await).with_settings(quick_settings())
}

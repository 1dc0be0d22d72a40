//! `wishctl verify`: the walkthrough's "Test it out", replayed against a deployed stack (its URL
//! read from the stack's outputs) or any server of the same API, such as `wishctl dev`.
//!
//! Five checks, always all of them, in this order:
//!
//! 1. `get-items`: `GET` answers 200 with an `Items` array (the route is open);
//! 2. `post-without-token`: `POST` with no `Authorization` header answers 401;
//! 3. `post-forged-signature`: `POST` with the caller's token re-signed by an RSA key generated on
//!    the spot (same header, `kid`, `iss`, `aud` and claims; only the signature differs, so the
//!    issuer never published the key) answers 401;
//! 4. `post-with-token`: `POST` with the token answers 201 with the new item's `id`;
//! 5. `item-listed`: that id, with the name posted, is in the next `GET` (every page, following
//!    `NextCursor` as `?cursor=`).
//!
//! The refused `POST`s carry a body the handler rejects (no `name`), so a route that is open or
//! that accepts any signature shows up as a 400 instead of a 401 and writes nothing: `verify`
//! writes at most one item, named `wishctl verify <time>`.

use std::fmt;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, RsaKeyPair};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use provision::Provisioner;
use serde::Serialize;
use serde_json::{json, Value};
use stack::{StackName, SERVICE_PATH};

use super::aws::AwsArgs;
use super::output::{print_json, OutputFormat};

/// Flags of `wishctl verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The deployed stack to verify; its URL comes from its outputs, read back from AWS.
    /// Default: the stack `wishlist`, unless --url is given.
    #[arg(long, value_name = "NAME", conflicts_with = "url")]
    pub stack: Option<String>,

    /// Verify this URL instead of a stack's: an invoke URL, or any server of the API such as
    /// `wishctl dev` (http://127.0.0.1:3000/wish-list-service). A bare origin gets the service
    /// path appended.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// An access token the stack accepts (issuer, audience and, with route scopes, a scope),
    /// used for the authorized POST and as the template of the forged one. WISHCTL_TOKEN keeps
    /// it out of the process list.
    #[arg(long, value_name = "T", env = "WISHCTL_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Get the token from the issuer's client-credentials grant instead (a machine-to-machine
    /// application, as a pipeline does): its client id. Needs --client-secret-env; with --url,
    /// --issuer too (with --stack the issuer and audience default to the stack's authorizer's).
    #[arg(long, value_name = "ID", requires = "client_secret_env")]
    pub client_id: Option<String>,

    /// Name of the environment variable holding the client secret (never the secret itself).
    #[arg(long, value_name = "VAR", requires = "client_id")]
    pub client_secret_env: Option<String>,

    /// The issuer of the grant, exactly as in the tokens' `iss` (Auth0: `https://TENANT.auth0.com/`);
    /// its discovery document names the token endpoint. Default with --stack: the issuer of
    /// the stack's authorizer.
    #[arg(long, value_name = "URL", requires = "client_id")]
    pub issuer: Option<String>,

    /// The API the token is for (Auth0: the API identifier, the stack's --audience). Default
    /// with --stack: the audience of the stack's authorizer, when it has exactly one.
    #[arg(long, value_name = "AUD", requires = "client_id")]
    pub audience: Option<String>,

    /// Scopes to ask for, space-separated (default: what the application is granted).
    #[arg(long, value_name = "S", requires = "client_id")]
    pub scope: Option<String>,

    /// Time limit of each HTTP request.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// Result format on stdout: a table of checks, or exactly one JSON object.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,

    #[command(flatten)]
    pub aws: AwsArgs,
}

/// The `name` of the item `verify` writes starts with this, so it is recognisable in a listing.
pub const ITEM_NAME_PREFIX: &str = "wishctl verify";
/// Pages the `item-listed` check reads at most before giving up.
const MAX_PAGES: usize = 1000;
/// The time the `item-listed` check spends paging at most.
const LISTING_DEADLINE: Duration = Duration::from_secs(60);
/// Bodies longer than this are not read further (a misbehaving server could send without end).
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// A body the handler refuses with 400 (`name` is missing): sent with the POSTs that must be
/// refused before they reach it, so that a route letting them through creates nothing.
const REFUSED_BODY: &str = r#"{"description": "wishctl verify: this request must be refused with 401 before it reaches the handler"}"#;

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub description: &'static str,
    pub expected: String,
    pub got: String,
    pub passed: bool,
}

/// The item `verify` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenItem {
    pub id: String,
    pub name: String,
}

/// What `verify --output json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    pub passed: bool,
    /// Names of the checks that failed, in order.
    pub failed: Vec<&'static str>,
    pub checks: Vec<Check>,
    /// The item written by the authorized POST (absent when it was refused).
    pub item: Option<WrittenItem>,
    pub elapsed_ms: u128,
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "verify {}", self.url)?;
        let width = |title: &str, column: &dyn Fn(&Check) -> usize| {
            self.checks
                .iter()
                .map(column)
                .chain([title.len()])
                .max()
                .unwrap_or(0)
        };
        let name_w = width("CHECK", &|c| c.name.chars().count());
        let expected_w = width("EXPECTED", &|c| c.expected.chars().count());
        let got_w = width("GOT", &|c| c.got.chars().count());
        writeln!(
            f,
            "  {:<name_w$}  {:<expected_w$}  {:<got_w$}  RESULT",
            "CHECK", "EXPECTED", "GOT"
        )?;
        for check in &self.checks {
            writeln!(
                f,
                "  {:<name_w$}  {:<expected_w$}  {:<got_w$}  {}",
                check.name,
                check.expected,
                check.got,
                if check.passed { "pass" } else { "FAIL" }
            )?;
        }
        if let Some(item) = &self.item {
            writeln!(f, "  wrote item {} ({:?})", item.id, item.name)?;
        }
        if self.passed {
            write!(
                f,
                "all {} checks passed in {:.1}s",
                self.checks.len(),
                self.elapsed_ms as f64 / 1000.0
            )
        } else {
            write!(
                f,
                "{} of {} checks failed:",
                self.failed.len(),
                self.checks.len()
            )?;
            for check in self.checks.iter().filter(|c| !c.passed) {
                write!(f, "\n  {}: {}", check.name, check.description)?;
            }
            Ok(())
        }
    }
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    // Flags are checked before any AWS call or request to the issuer.
    let source = token_source(&args)?;
    if args.timeout.is_zero() {
        anyhow::bail!("--timeout must be more than 0s");
    }
    let (url, stack, deployed) = match &args.url {
        Some(url) => (service_url(url)?, None, None),
        None => {
            let name = args.stack.as_deref().unwrap_or(stack::DEFAULT_STACK);
            let stack: StackName = name.parse()?;
            let sdk = args.aws.sdk_config().await?;
            let report = Provisioner::new(&sdk)
                .outputs(&stack)
                .await
                .with_context(|| format!("reading the URL of stack {stack} from its outputs"))?;
            (report.outputs.url, Some(stack), Some(report.authorizer))
        }
    };
    let token = match source {
        TokenSource::Given(token) => token,
        TokenSource::ClientCredentials(grant) => {
            let target = grant_target(&args, stack.as_ref().zip(deployed.as_ref()))?;
            request_token(grant, target).await?
        }
    };
    let stack = stack.map(|s| s.to_string());
    eprintln!("verifying {}", stack::url_for_message(&url));
    let client = reqwest::Client::builder()
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("wishctl-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("creating the HTTP client")?;
    let started = Instant::now();
    let (checks, item) = run_checks(&client, &url, &token).await;
    let failed: Vec<&'static str> = checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect();
    let report = VerifyReport {
        // The report is printed: a password in --url stays masked in it.
        url: stack::url_for_message(&url),
        stack,
        passed: failed.is_empty(),
        failed,
        checks,
        item,
        elapsed_ms: started.elapsed().as_millis(),
    };
    match args.output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Text => println!("{report}"),
    }
    if !report.passed {
        eprintln!(
            "error: verify failed: {} (see the table above)",
            report.failed.join(", ")
        );
    }
    Ok(if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Where the access token comes from.
enum TokenSource {
    /// `--token` / `WISHCTL_TOKEN`, without a `Bearer ` prefix.
    Given(String),
    /// The issuer's client-credentials grant.
    ClientCredentials(ClientGrant),
}

/// `--client-id` and its secret, read from the variable `--client-secret-env` names.
struct ClientGrant {
    client_id: String,
    secret: authorizer::client_credentials::Secret,
    scope: Option<String>,
}

/// Whom the grant asks for a token: the issuer and the audience, each from its flag or from the
/// stack's authorizer.
#[derive(Debug, PartialEq, Eq)]
struct GrantTarget {
    issuer: String,
    audience: Option<String>,
}

/// The token source the flags name; an error, before anything is sent, when they name none or
/// both, or when the secret's variable is empty.
fn token_source(args: &VerifyArgs) -> anyhow::Result<TokenSource> {
    let Some(client_id) = &args.client_id else {
        return match &args.token {
            Some(token) if !token.trim().is_empty() => {
                let token = token.trim();
                Ok(TokenSource::Given(
                    token
                        .strip_prefix("Bearer ")
                        .unwrap_or(token)
                        .trim()
                        .to_string(),
                ))
            }
            _ => anyhow::bail!(
                "verify needs an access token the stack accepts, for its POST checks: pass --token \
                 (or set WISHCTL_TOKEN), or --client-id with --client-secret-env (and --issuer \
                 with --url); for `wishctl dev`, TOKEN=$(wishctl token) mints one"
            ),
        };
    };
    if args.token.is_some() {
        anyhow::bail!(
            "pass either a token (--token or WISHCTL_TOKEN) or --client-id, not both; unset \
             WISHCTL_TOKEN to use the client credentials"
        );
    }
    let Some(secret_env) = &args.client_secret_env else {
        anyhow::bail!("--client-id needs --client-secret-env VAR");
    };
    if args.url.is_some() && args.issuer.is_none() {
        anyhow::bail!(
            "--client-id with --url needs --issuer URL: the issuer whose tokens that server \
             accepts (with --stack it is read from the stack's authorizer)"
        );
    }
    let secret = std::env::var(secret_env).unwrap_or_default();
    if secret.is_empty() {
        anyhow::bail!(
            "the environment variable {secret_env} (named by --client-secret-env) is not set or \
             empty: it must hold the client secret of {client_id}"
        );
    }
    Ok(TokenSource::ClientCredentials(ClientGrant {
        client_id: client_id.clone(),
        secret: authorizer::client_credentials::Secret::new(secret),
        scope: args.scope.clone(),
    }))
}

/// The grant's issuer and audience: `--issuer` / `--audience` when given, else (with a stack)
/// what its deployed authorizer trusts, said on stderr.
fn grant_target(
    args: &VerifyArgs,
    stack: Option<(&StackName, &provision::DeployedAuthorizer)>,
) -> anyhow::Result<GrantTarget> {
    let Some((stack, deployed)) = stack else {
        let Some(issuer) = &args.issuer else {
            anyhow::bail!("--client-id with --url needs --issuer URL");
        };
        return Ok(GrantTarget {
            issuer: issuer.clone(),
            audience: args.audience.clone(),
        });
    };
    let mut taken = Vec::new();
    let issuer = match (&args.issuer, &deployed.issuer) {
        (Some(issuer), _) => issuer.clone(),
        (None, Some(issuer)) => {
            taken.push(format!("issuer {}", stack::url_for_message(issuer)));
            issuer.clone()
        }
        (None, None) => anyhow::bail!(
            "the authorizer of stack {stack} has no JWT issuer to ask for a token: pass --issuer \
             URL, or run `wishctl up --stack {stack} --issuer URL ...` to repair it"
        ),
    };
    let audience = match (&args.audience, deployed.audiences.as_slice()) {
        (Some(audience), _) => Some(audience.clone()),
        (None, []) => None,
        (None, [audience]) => {
            taken.push(format!("audience {audience}"));
            Some(audience.clone())
        }
        (None, several) => anyhow::bail!(
            "the authorizer of stack {stack} accepts several audiences ({}): pass --audience \
             with the one the client's grant is for",
            several.join(", ")
        ),
    };
    if !taken.is_empty() {
        eprintln!(
            "using the {} of stack {stack}'s authorizer (--issuer / --audience override)",
            taken.join(" and ")
        );
    }
    Ok(GrantTarget { issuer, audience })
}

/// A token from the issuer's client-credentials grant; the issuer's own error when it refuses.
async fn request_token(grant: ClientGrant, target: GrantTarget) -> anyhow::Result<String> {
    let ClientGrant {
        client_id,
        secret,
        scope,
    } = grant;
    let GrantTarget { issuer, audience } = target;
    eprintln!(
        "requesting a token from {} for client {client_id} (client credentials)",
        stack::url_for_message(&issuer)
    );
    let credentials = authorizer::client_credentials::ClientCredentials {
        issuer,
        client_id,
        client_secret: secret,
        audience,
        scope,
    };
    match authorizer::client_credentials::request_token(&credentials).await {
        Ok(issued) => Ok(issued.access_token.expose().to_string()),
        Err(err) => {
            let hint = err.hint().map(|h| format!("; {h}")).unwrap_or_default();
            anyhow::bail!("no token for verify: {err}{hint}")
        }
    }
}

/// `--url` as the route's URL: http(s) only; a bare origin gets `/wish-list-service`.
fn service_url(raw: &str) -> anyhow::Result<String> {
    let shown = stack::url_for_message(raw);
    let mut url = url::Url::parse(raw).with_context(|| {
        format!("invalid --url {shown:?}: expected an absolute http(s) URL such as http://127.0.0.1:3000{SERVICE_PATH}")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!("invalid --url {shown:?}: expected an http or https URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() {
        anyhow::bail!("invalid --url {shown:?}: give the route's URL without a query or fragment");
    }
    if url.path() == "/" || url.path().is_empty() {
        url.set_path(SERVICE_PATH);
    }
    Ok(url.to_string())
}

/// Runs the five checks in order; each runs even when an earlier one failed, except
/// `item-listed`, which needs the id of the authorized POST.
async fn run_checks(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (Vec<Check>, Option<WrittenItem>) {
    let mut checks = Vec::with_capacity(5);
    checks.push(check_get(client, url).await);
    checks.push(check_post_without_token(client, url).await);
    checks.push(check_forged_signature(client, url, token).await);
    let (posted, item) = check_post_with_token(client, url, token).await;
    checks.push(posted);
    checks.push(match &item {
        Some(item) => check_item_listed(client, url, item).await,
        None => Check {
            name: "item-listed",
            description: "the item POSTed with the token is in the next GET",
            expected: "the new id in GET".into(),
            got: "not run: the POST with the token created no item".into(),
            passed: false,
        },
    });
    (checks, item)
}

/// An HTTP answer, or why there was none.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let mut response = request.send().await.map_err(|e| error_chain(&e))?;
    let status = response.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BODY_BYTES {
            return Err(format!(
                "{status} with a body over {MAX_BODY_BYTES} bytes (not read further)"
            ));
        }
    }
    Ok(Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `error: <message>: <cause>: ...` for a failed request (reqwest's own message hides the cause).
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("error: {err}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The status and the start of the body, for the GOT column.
fn describe(answer: &Answer) -> String {
    let body: String = answer.body.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.is_empty() {
        return answer.status.to_string();
    }
    let excerpt: String = body.chars().take(80).collect();
    let more = if body.chars().count() > 80 { "..." } else { "" };
    format!("{} {excerpt}{more}", answer.status)
}

/// One page of `GET`: `{"Items":[...],"Count":N}` plus `NextCursor` when more pages exist.
#[derive(Debug)]
struct Page {
    items: Vec<Value>,
    next_cursor: Option<String>,
}

fn parse_page(answer: &Answer) -> Result<Page, String> {
    if answer.status != 200 {
        return Err(describe(answer));
    }
    let value: Value = serde_json::from_str(&answer.body)
        .map_err(|e| format!("200 but the body is not JSON ({e})"))?;
    let Some(items) = value.get("Items").and_then(Value::as_array) else {
        return Err(format!("200 without an Items array: {}", describe(answer)));
    };
    if let Some(count) = value.get("Count") {
        if count.as_u64() != Some(items.len() as u64) {
            return Err(format!("200 with {} Items but Count {count}", items.len()));
        }
    }
    let next_cursor = match value.get("NextCursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(cursor)) if !cursor.is_empty() => Some(cursor.clone()),
        Some(other) => {
            return Err(format!(
                "200 with a NextCursor that is not a string: {other}"
            ))
        }
    };
    Ok(Page {
        items: items.clone(),
        next_cursor,
    })
}

async fn get_page(
    client: &reqwest::Client,
    url: &str,
    cursor: Option<&str>,
) -> Result<Page, String> {
    let request = match cursor {
        None => client.get(url),
        Some(cursor) => {
            let mut with_cursor = url::Url::parse(url)
                .map_err(|e| format!("error: the URL {}: {e}", stack::url_for_message(url)))?;
            with_cursor.query_pairs_mut().append_pair("cursor", cursor);
            client.get(with_cursor)
        }
    };
    parse_page(&send(request).await?)
}

async fn check_get(client: &reqwest::Client, url: &str) -> Check {
    let (got, passed) = match get_page(client, url, None).await {
        Ok(page) => {
            let more = if page.next_cursor.is_some() {
                " (first page; more follow)"
            } else {
                ""
            };
            (format!("200, {} items{more}", page.items.len()), true)
        }
        Err(got) => (got, false),
    };
    Check {
        name: "get-items",
        description: "GET without a token answers 200 with the items (the route is open)",
        expected: "200 with Items".into(),
        got,
        passed,
    }
}

async fn check_post_without_token(client: &reqwest::Client, url: &str) -> Check {
    let answer = send(
        client
            .post(url)
            .header("content-type", "application/json")
            .body(REFUSED_BODY),
    )
    .await;
    refused_check(
        "post-without-token",
        "POST without a token is refused with 401 (the route is guarded by the JWT authorizer)",
        answer,
    )
}

async fn check_forged_signature(client: &reqwest::Client, url: &str, token: &str) -> Check {
    let description = "POST with the token re-signed by a key the issuer never published is \
                       refused with 401 (signatures are checked)";
    let forged = match forge_signature(token) {
        Ok(forged) => forged,
        Err(why) => {
            return Check {
                name: "post-forged-signature",
                description,
                expected: "401".into(),
                got: format!("not run: {why}"),
                passed: false,
            }
        }
    };
    let answer = send(
        client
            .post(url)
            .bearer_auth(forged)
            .header("content-type", "application/json")
            .body(REFUSED_BODY),
    )
    .await;
    refused_check("post-forged-signature", description, answer)
}

fn refused_check(
    name: &'static str,
    description: &'static str,
    answer: Result<Answer, String>,
) -> Check {
    let (got, passed) = match answer {
        Ok(answer) => {
            let passed = answer.status == 401;
            let mut got = describe(&answer);
            if answer.status == 400 {
                got.push_str(" (the request reached the handler)");
            }
            (got, passed)
        }
        Err(got) => (got, false),
    };
    Check {
        name,
        description,
        expected: "401".into(),
        got,
        passed,
    }
}

async fn check_post_with_token(
    client: &reqwest::Client,
    url: &str,
    token: &str,
) -> (Check, Option<WrittenItem>) {
    let name = format!("{ITEM_NAME_PREFIX} {}", wishlist::event::now_rfc3339());
    let body = json!({
        "name": name,
        "description": concat!("written by wishctl verify ", env!("CARGO_PKG_VERSION"), "; safe to delete"),
    });
    let answer = send(client.post(url).bearer_auth(token).json(&body)).await;
    let mut item = None;
    let (got, passed) = match answer {
        Ok(answer) if answer.status == 201 => {
            let id = serde_json::from_str::<Value>(&answer.body)
                .ok()
                .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
                .filter(|id| !id.is_empty());
            match id {
                Some(id) => {
                    item = Some(WrittenItem {
                        id: id.clone(),
                        name,
                    });
                    (format!("201, id {id}"), true)
                }
                None => (format!("201 without an id: {}", describe(&answer)), false),
            }
        }
        Ok(answer) => {
            let mut got = describe(&answer);
            match answer.status {
                401 => got.push_str(
                    " (is the token for this stack's issuer and audience, and unexpired?)",
                ),
                403 => got.push_str(" (the token lacks the route's scope)"),
                _ => {}
            }
            (got, false)
        }
        Err(got) => (got, false),
    };
    let check = Check {
        name: "post-with-token",
        description: "POST with the token answers 201 with the new item's id",
        expected: "201 with an id".into(),
        got,
        passed,
    };
    (check, item)
}

async fn check_item_listed(client: &reqwest::Client, url: &str, item: &WrittenItem) -> Check {
    let (got, passed) = find_item(client, url, item).await;
    Check {
        name: "item-listed",
        description: "the item POSTed with the token is in the next GET, with its name",
        expected: format!("id {} in GET", item.id),
        got,
        passed,
    }
}

/// Reads every page (bounded in count and time) until the item shows up.
async fn find_item(client: &reqwest::Client, url: &str, item: &WrittenItem) -> (String, bool) {
    let deadline = Instant::now() + LISTING_DEADLINE;
    let mut cursor: Option<String> = None;
    let mut seen_cursors = std::collections::HashSet::new();
    let mut items_seen = 0usize;
    for page_number in 1..=MAX_PAGES {
        let page = match get_page(client, url, cursor.as_deref()).await {
            Ok(page) => page,
            Err(got) => return (format!("page {page_number}: {got}"), false),
        };
        items_seen += page.items.len();
        let found = page
            .items
            .iter()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(item.id.as_str()));
        if let Some(found) = found {
            let name = found.get("name").and_then(Value::as_str);
            return if name == Some(item.name.as_str()) {
                (format!("listed on page {page_number}"), true)
            } else {
                (
                    format!(
                        "listed on page {page_number} with name {name:?}, not {:?}",
                        item.name
                    ),
                    false,
                )
            };
        }
        match page.next_cursor {
            None => {
                return (
                    format!("not in {items_seen} items on {page_number} page(s)"),
                    false,
                )
            }
            Some(next) => {
                if !seen_cursors.insert(next.clone()) {
                    return (
                        format!("page {page_number} repeats an earlier NextCursor (a loop)"),
                        false,
                    );
                }
                cursor = Some(next);
            }
        }
        if Instant::now() >= deadline {
            return (
                format!(
                    "not found in {items_seen} items on {page_number} pages within {}s",
                    LISTING_DEADLINE.as_secs()
                ),
                false,
            );
        }
    }
    (
        format!("not found in {items_seen} items on the first {MAX_PAGES} pages"),
        false,
    )
}

/// The token with its signature replaced by one from a fresh RSA-2048 key: the same header (so
/// the same `kid`, naming a key the issuer did publish, and `alg` RS256) and the same claims,
/// `iat` and `exp` renewed so that only the signature can be the reason to refuse it.
fn forge_signature(token: &str) -> Result<String, String> {
    let token = token.strip_prefix("Bearer ").unwrap_or(token);
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a JWT (three dot-separated parts)".into());
    };
    let decode = |part: &str, what: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| format!("the token's {what} is not base64url"))?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("the token's {what} is not a JSON object"))
    };
    let mut header = decode(header, "header")?;
    let mut claims = decode(claims, "claims")?;
    header["alg"] = json!("RS256");
    if header.get("kid").is_none() {
        header["kid"] = json!(random_kid());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 300);
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .map_err(|_| "cannot generate an RSA key".to_string())?;
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &signature::RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "cannot sign with the generated RSA key".to_string())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// A `kid` shaped like an RFC 7638 thumbprint (43 base64url characters), for tokens without one.
fn random_kid() -> String {
    use aws_lc_rs::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    let _ = SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn part(token: &str, index: usize) -> Value {
        let part = token.split('.').nth(index).unwrap_or_default();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
            .unwrap_or_default()
    }

    #[test]
    fn the_forged_token_keeps_kid_issuer_and_audience_and_changes_only_the_signature() {
        let token = jwt(
            &json!({"alg": "RS256", "typ": "JWT", "kid": "published-key-1"}),
            &json!({"iss": "https://tenant.auth0.com/", "aud": "api", "sub": "ci@clients", "scope": "write:items", "exp": 1}),
        );
        let forged = forge_signature(&token).unwrap_or_default();
        assert_eq!(part(&forged, 0)["kid"], "published-key-1");
        assert_eq!(part(&forged, 0)["alg"], "RS256");
        let claims = part(&forged, 1);
        assert_eq!(claims["iss"], "https://tenant.auth0.com/");
        assert_eq!(claims["aud"], "api");
        assert_eq!(claims["scope"], "write:items");
        assert!(claims["exp"].as_u64().unwrap_or(0) > 1_700_000_000);
        let signature = forged.rsplit('.').next().unwrap_or_default();
        assert_eq!(URL_SAFE_NO_PAD.decode(signature).map(|s| s.len()), Ok(256));
    }

    #[test]
    fn a_token_that_is_not_a_jwt_cannot_be_forged() {
        assert!(forge_signature("opaque-token").is_err());
        assert!(forge_signature("a.b.c.d").is_err());
        assert!(forge_signature("!!.??.x").is_err());
    }

    #[test]
    fn a_bare_origin_gets_the_service_path() {
        assert_eq!(
            service_url("http://127.0.0.1:3000").ok().as_deref(),
            Some("http://127.0.0.1:3000/wish-list-service")
        );
        assert_eq!(
            service_url("https://abc.execute-api.eu-west-1.amazonaws.com/wish-list-service")
                .ok()
                .as_deref(),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com/wish-list-service")
        );
        assert!(service_url("ftp://host/x").is_err());
        assert!(service_url("not a url").is_err());
    }

    #[test]
    fn a_page_whose_count_disagrees_with_its_items_is_refused() {
        let page = |body: &str| {
            parse_page(&Answer {
                status: 200,
                body: body.into(),
            })
        };
        assert!(page(r#"{"Items":[{"id":"a"}],"Count":1}"#).is_ok());
        assert!(page(r#"{"Items":[{"id":"a"}],"Count":2}"#).is_err());
        assert!(page(r#"{"Count":0}"#).is_err());
        assert_eq!(
            page(r#"{"Items":[],"Count":0,"NextCursor":"c2"}"#)
                .ok()
                .and_then(|p| p.next_cursor),
            Some("c2".to_string())
        );
    }

    fn verify_args(flags: &[&str]) -> VerifyArgs {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: VerifyArgs,
        }
        let argv = std::iter::once("verify").chain(flags.iter().copied());
        <Cli as clap::Parser>::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{e}"))
            .args
    }

    fn deployed(issuer: Option<&str>, audiences: &[&str]) -> provision::DeployedAuthorizer {
        provision::DeployedAuthorizer {
            issuer: issuer.map(str::to_string),
            audiences: audiences.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn the_grant_goes_to_the_stacks_issuer_and_audience_unless_a_flag_says_otherwise() {
        let stack: StackName = "pr-1".parse().unwrap_or_else(|e| panic!("{e}"));
        let both = deployed(Some("https://t.auth0.com/"), &["https://api"]);
        let from_stack = grant_target(&verify_args(&[]), Some((&stack, &both)));
        assert_eq!(
            from_stack.ok(),
            Some(GrantTarget {
                issuer: "https://t.auth0.com/".into(),
                audience: Some("https://api".into()),
            })
        );
        let flags = verify_args(&[
            "--client-id",
            "c",
            "--client-secret-env",
            "S",
            "--issuer",
            "https://other/",
            "--audience",
            "aud",
        ]);
        assert_eq!(
            grant_target(&flags, Some((&stack, &both))).ok(),
            Some(GrantTarget {
                issuer: "https://other/".into(),
                audience: Some("aud".into()),
            })
        );
        // No audience on the authorizer: none asked for.
        let no_audience = deployed(Some("https://t.auth0.com/"), &[]);
        assert_eq!(
            grant_target(&verify_args(&[]), Some((&stack, &no_audience)))
                .ok()
                .and_then(|t| t.audience),
            None
        );
    }

    #[test]
    fn an_authorizer_with_several_audiences_or_no_issuer_asks_for_the_flag() {
        let stack: StackName = "pr-1".parse().unwrap_or_else(|e| panic!("{e}"));
        let several = deployed(Some("https://t.auth0.com/"), &["a", "b"]);
        let err = grant_target(&verify_args(&[]), Some((&stack, &several)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("(a, b)") && err.contains("--audience"),
            "{err}"
        );
        let no_issuer = deployed(None, &["a"]);
        let err = grant_target(&verify_args(&[]), Some((&stack, &no_issuer)))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("pr-1") && err.contains("--issuer"), "{err}");
    }
}

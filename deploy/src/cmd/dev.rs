//! `wishctl dev`: the wish-list API on 127.0.0.1, behind API Gateway's JWT authorizer rules.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use devserver::{
    DevKey, DevServer, DevServerOptions, KeyOrigin, RequestLog, RequestRecord, TokenIssuer,
};
use stack::{Issuer, RouteAuth};
use wishlist::Store;

/// Flags of `wishctl dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port to listen on, on 127.0.0.1 only (0 picks a free port).
    #[arg(long, default_value_t = devserver::DEFAULT_PORT)]
    pub port: u16,

    /// Issuer URL of an OIDC provider whose tokens to accept, exactly as in the tokens' `iss`
    /// (Auth0: `https://TENANT.auth0.com/`, with the slash). Without it, the dev server is its own
    /// issuer and `wishctl token` mints tokens for it.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,

    /// Audience a token must carry in `aud` (or `client_id` when it has no `aud`); repeat for
    /// several. Required with --issuer; `wishctl-dev` by default otherwise.
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,

    /// Authorization scope of the POST route; repeat for several (a token needs one of them in
    /// `scope` or `scp`, else 403).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scopes: Vec<String>,

    /// Keep items in a DynamoDB-compatible server (DynamoDB Local, moto) instead of in memory.
    #[arg(long, value_name = "URL")]
    pub dynamodb_endpoint: Option<url::Url>,

    /// Table to use on --dynamodb-endpoint; created if missing.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "wishctl-dev-items",
        requires = "dynamodb_endpoint"
    )]
    pub table: String,

    /// Folder holding the local signing key (created on first use, mode 0600).
    #[arg(long, value_name = "DIR", default_value = devserver::DEFAULT_DEV_DIR)]
    pub dev_dir: PathBuf,

    /// Request log on stderr: one line per request, never the token.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `key=value` pairs.
    Text,
    /// One JSON object per line.
    Json,
    /// No request log.
    Off,
}

pub async fn run(args: DevArgs) -> anyhow::Result<ExitCode> {
    let issuer = match &args.issuer {
        Some(url) => {
            TokenIssuer::External(Issuer::parse_local(url).context("--issuer is not usable")?)
        }
        None => {
            let (key, origin) = DevKey::load_or_create(&args.dev_dir)
                .context("preparing the local signing key (use --dev-dir to put it elsewhere)")?;
            if origin == KeyOrigin::Created {
                eprintln!("created a new signing key in {}", key.path().display());
            }
            TokenIssuer::SelfIssued(Arc::new(key))
        }
    };
    let audiences = match (&issuer, args.audiences.is_empty()) {
        (TokenIssuer::External(issuer), true) => anyhow::bail!(
            "--issuer {issuer} needs at least one --audience (the API identifier its tokens carry in aud)"
        ),
        (TokenIssuer::SelfIssued(_), true) => vec![devserver::DEFAULT_AUDIENCE.to_string()],
        (_, false) => args.audiences.clone(),
    };
    let (store, store_label) = open_store(&args).await?;

    let mut options = DevServerOptions::new(issuer, store);
    options.listen = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    options.audiences = audiences;
    options.scopes = args.scopes.clone();
    options.log = request_log(args.log);
    let server = DevServer::start(options)
        .await
        .with_context(|| format!("starting the dev server on 127.0.0.1:{}", args.port))?;
    if let Err(err) = server.key_status() {
        eprintln!(
            "warning: cannot fetch the signing keys of {}: {err}\n         POST requests are refused until the issuer answers",
            server.settings().issuer
        );
    }
    println!("{}", banner(&server, &args, &store_label));

    wait_for_shutdown().await;
    eprintln!("stopping");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

async fn open_store(args: &DevArgs) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let Some(endpoint) = &args.dynamodb_endpoint else {
        return Ok((
            Arc::new(wishlist::MemoryStore::new()),
            "in memory (items are lost when wishctl dev stops)".into(),
        ));
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint.as_str())
        .region(
            aws_config::meta::region::RegionProviderChain::default_provider().or_else("us-east-1"),
        );
    let has_credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || std::env::var_os("AWS_PROFILE").is_some();
    if !has_credentials {
        // Local DynamoDB servers accept any credentials but the SDK insists on having some.
        loader = loader.credentials_provider(aws_credential_types::Credentials::new(
            "local",
            "local",
            None,
            None,
            "wishctl-dev",
        ));
    }
    let config = loader.load().await;
    let store = wishlist::DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &args.table);
    let created = store
        .create_table_if_missing()
        .await
        .with_context(|| format!("preparing table {} on {endpoint}", args.table))?;
    let label = format!(
        "DynamoDB table {} on {endpoint}{}",
        args.table,
        if created { " (created)" } else { "" }
    );
    Ok((Arc::new(store), label))
}

/// Log lines are formatted and written by a thread of their own, in batches, so that a request
/// never waits for stderr.
fn request_log(format: LogFormat) -> RequestLog {
    if format == LogFormat::Off {
        return RequestLog::Off;
    }
    let (lines, queue) = std::sync::mpsc::sync_channel::<RequestRecord>(4096);
    let spawned = std::thread::Builder::new()
        .name("request-log".into())
        .spawn(move || write_request_log(format, &queue));
    if let Err(err) = spawned {
        eprintln!("warning: no request log: cannot start its thread: {err}");
        return RequestLog::Off;
    }
    RequestLog::Custom(Arc::new(move |record: &RequestRecord| {
        let _ = lines.send(record.clone());
    }))
}

fn write_request_log(format: LogFormat, queue: &std::sync::mpsc::Receiver<RequestRecord>) {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::io::stderr());
    while let Ok(first) = queue.recv() {
        for record in std::iter::once(first).chain(queue.try_iter()) {
            let time = wishlist::event::now_rfc3339();
            let written = match format {
                LogFormat::Json => {
                    let mut line = serde_json::to_value(&record).unwrap_or_default();
                    line["time"] = serde_json::Value::String(time);
                    writeln!(out, "{line}")
                }
                _ => writeln!(out, "time={time} {record}"),
            };
            if written.is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// What `wishctl dev` prints on start: where it listens, what it enforces, and how to try it.
fn banner(server: &DevServer, args: &DevArgs, store: &str) -> String {
    let settings = server.settings();
    let url = server.service_url();
    let mut out = format!("wishctl dev: the wish-list API on {url}\n");
    for (i, route) in stack::ROUTES.iter().enumerate() {
        let auth = match route.auth {
            RouteAuth::None => "open".to_string(),
            RouteAuth::Jwt if settings.scopes.is_empty() => "JWT".to_string(),
            RouteAuth::Jwt => format!("JWT, scopes: {}", settings.scopes.join(" ")),
        };
        let label = if i == 0 { "routes" } else { "" };
        out.push_str(&format!(
            "  {label:<9}  {:<5}{}  ({auth})\n",
            route.method, route.path
        ));
    }
    let issuer_note = if server.is_self_issued() {
        format!(" (this server; key in {})", args.dev_dir.display())
    } else {
        String::new()
    };
    out.push_str(&format!("  issuer     {}{issuer_note}\n", settings.issuer));
    out.push_str(&format!("  audience   {}\n", settings.audiences.join(" ")));
    out.push_str(&format!("  store      {store}\n"));
    out.push_str("\nTry it:\n");
    out.push_str(&format!("  curl -i {url}\n"));
    if server.is_self_issued() {
        out.push_str(&format!("  TOKEN=$({})\n", token_command(server, args)));
    } else {
        out.push_str(&format!(
            "  TOKEN=...   # an access token from {} for audience {} (Auth0: your API's Test tab)\n",
            settings.issuer,
            settings.audiences.first().map(String::as_str).unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "  curl -i -X POST {url} \\\n    -H \"Authorization: Bearer $TOKEN\" -H \"Content-Type: application/json\" \\\n    -d '{{\"name\": \"Test Item\", \"description\": \"Test Description\", \"url\": \"https://www.amazon.com\"}}'\n"
    ));
    out.push_str("\nStop with Ctrl-C.");
    out
}

/// The `wishctl token` command line that mints a token this server accepts.
fn token_command(server: &DevServer, args: &DevArgs) -> String {
    let settings = server.settings();
    let mut command = String::from("wishctl token");
    let port = server.local_addr().port();
    if port != devserver::DEFAULT_PORT {
        command.push_str(&format!(" --port {port}"));
    }
    if args.dev_dir != std::path::Path::new(devserver::DEFAULT_DEV_DIR) {
        command.push_str(&format!(
            " --dev-dir {}",
            shell_word(&args.dev_dir.display().to_string())
        ));
    }
    if let Some(audience) = settings.audiences.first() {
        if audience != devserver::DEFAULT_AUDIENCE {
            command.push_str(&format!(" --audience {}", shell_word(audience)));
        }
    }
    if let Some(scope) = settings.scopes.first() {
        command.push_str(&format!(" --scope {}", shell_word(scope)));
    }
    command
}

fn shell_word(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                Ok(()) = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        // No signal handling: serve until killed.
        std::future::pending::<()>().await;
    }
}

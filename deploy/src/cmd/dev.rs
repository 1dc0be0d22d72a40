//! `wishctl dev`: the wish-list API on 127.0.0.1, behind API Gateway's JWT authorizer rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use devserver::{
    DevClient, DevKey, DevServer, DevServerOptions, KeyOrigin, RequestLog, ServerLimits,
    TokenIssuer,
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
    pub dynamodb_endpoint: Option<String>,

    /// Table to use on --dynamodb-endpoint; created if missing.
    #[arg(
        long,
        value_name = "NAME",
        default_value = "wishctl-dev-items",
        requires = "dynamodb_endpoint"
    )]
    pub table: String,

    /// Folder holding the local signing key and the dev client's secret (created on first use,
    /// mode 0600). Default: `$XDG_STATE_HOME/wishctl/dev` or `~/.local/state/wishctl/dev`; a
    /// folder inside a git checkout must be git-ignored.
    #[arg(long, value_name = "DIR")]
    pub dev_dir: Option<PathBuf>,

    /// Request log on stderr: one line per request, never the token. Lines that stderr cannot
    /// take in time (these and every other log line) are dropped and counted, never waited for.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log: LogFormat,

    /// Connections served at once; one more is answered 503.
    #[arg(long, value_name = "N", default_value_t = ServerLimits::default().max_connections)]
    pub max_connections: usize,

    /// Time for a request's headers to arrive (idle connections are closed after it too).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// Time for a request's body to arrive (else 408).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub body_read_timeout: Duration,
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

impl LogFormat {
    /// The format of the log's report of dropped lines.
    pub fn report_format(self) -> devserver::LogFormat {
        match self {
            LogFormat::Json => devserver::LogFormat::Json,
            LogFormat::Text | LogFormat::Off => devserver::LogFormat::Text,
        }
    }
}

/// Serves until Ctrl-C or SIGTERM. `diagnostics` is where its own lines go (a queue on stderr
/// that never blocks, see [`super::Diagnostics`]), the request log included.
pub async fn run(args: DevArgs, diagnostics: super::Diagnostics) -> anyhow::Result<ExitCode> {
    if args.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    if args.header_read_timeout.is_zero() || args.body_read_timeout.is_zero() {
        anyhow::bail!("--header-read-timeout and --body-read-timeout must be longer than 0s");
    }
    // Checked before the dev folder or anything else is touched.
    let dynamodb_endpoint = dynamodb_endpoint(args.dynamodb_endpoint.as_deref())?;
    // The dev folder matters only when this server is its own issuer.
    let dev_dir = match &args.issuer {
        Some(_) => PathBuf::new(),
        None => resolve_dev_dir(args.dev_dir.as_deref())?,
    };
    let mut dev_client = None;
    let issuer = match &args.issuer {
        Some(url) => {
            refuse_issuer_credentials(url)?;
            TokenIssuer::External(Issuer::parse_local(url).context("--issuer is not usable")?)
        }
        None => {
            let (key, origin) = DevKey::load_or_create(&dev_dir)
                .context("preparing the local signing key (use --dev-dir to put it elsewhere)")?;
            if origin == KeyOrigin::Created {
                diagnostics.line(format!(
                    "created a new signing key in {}",
                    key.path().display()
                ));
            }
            dev_client = Some(key.client().clone());
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
    let (store, store_label) = open_store(dynamodb_endpoint, &args.table).await?;

    let mut options = DevServerOptions::new(issuer, store);
    options.listen = std::net::SocketAddr::from(([127, 0, 0, 1], args.port));
    options.audiences = audiences;
    options.scopes = args.scopes.clone();
    options.log = request_log(args.log, &diagnostics);
    options.limits = ServerLimits {
        max_connections: args.max_connections,
        header_read_timeout: args.header_read_timeout,
        body_read_timeout: args.body_read_timeout,
    };
    let server = DevServer::start(options)
        .await
        .with_context(|| format!("starting the dev server on 127.0.0.1:{}", args.port))?;
    if let Err(err) = server.key_status() {
        diagnostics.line(format!(
            "warning: cannot fetch the signing keys of {}: {err}\n         POST requests are refused until the issuer answers",
            server.settings().issuer
        ));
    }
    println!(
        "{}",
        banner(&server, &args, &dev_dir, dev_client.as_ref(), &store_label)
    );

    wait_for_shutdown().await;
    diagnostics.line("stopping");
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// `--dynamodb-endpoint`, parsed here rather than by clap, whose error would echo a password in
/// the URL; one with user info is refused (the AWS credential chain signs the requests).
fn dynamodb_endpoint(given: Option<&str>) -> anyhow::Result<Option<url::Url>> {
    let Some(given) = given else {
        return Ok(None);
    };
    let shown = stack::url_for_message(given);
    if stack::url_has_user_info(given) {
        anyhow::bail!(
            "--dynamodb-endpoint {shown:?} must not contain a user name or password: requests are signed with the AWS credentials of the environment or profile; remove the credentials"
        );
    }
    let endpoint = url::Url::parse(given).map_err(|e| {
        anyhow::anyhow!(
            "invalid --dynamodb-endpoint {shown:?}: {e}; expected a URL such as http://127.0.0.1:8000"
        )
    })?;
    Ok(Some(endpoint))
}

async fn open_store(
    endpoint: Option<url::Url>,
    table: &str,
) -> anyhow::Result<(Arc<dyn Store>, String)> {
    let Some(endpoint) = endpoint else {
        return Ok((
            Arc::new(wishlist::MemoryStore::new()),
            "in memory (items are lost when wishctl dev stops)".into(),
        ));
    };
    let (store, created) = wishlist::DynamoStore::open_local(endpoint.as_str(), table)
        .await
        .with_context(|| format!("preparing table {table} on {endpoint}"))?;
    let label = format!(
        "DynamoDB table {table} on {endpoint}{}",
        if created { " (created)" } else { "" }
    );
    Ok((Arc::new(store), label))
}

/// The request log: lines of the diagnostics' queue, written to stderr by a thread of their own,
/// so a stalled stderr reader never holds up a request (lines it cannot take are dropped and
/// counted).
fn request_log(format: LogFormat, diagnostics: &super::Diagnostics) -> RequestLog {
    let format = match format {
        LogFormat::Off => return RequestLog::Off,
        LogFormat::Text => devserver::LogFormat::Text,
        LogFormat::Json => devserver::LogFormat::Json,
    };
    match diagnostics.queue() {
        Some(queue) => RequestLog::lines(queue.clone(), format),
        None => {
            diagnostics.line("warning: no request log: its log thread did not start");
            RequestLog::Off
        }
    }
}

/// `--dev-dir`, or the per-user default.
pub(crate) fn resolve_dev_dir(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    match given {
        Some(dir) => Ok(dir.to_path_buf()),
        None => devserver::default_dev_dir().context("choosing the folder for the dev key"),
    }
}

/// An issuer URL with `user:password@` is refused before it is used or printed anywhere (valid
/// URL or not); the message shows it with the credentials masked.
pub(crate) fn refuse_issuer_credentials(issuer: &str) -> anyhow::Result<()> {
    if stack::url_has_user_info(issuer) {
        anyhow::bail!(
            "--issuer must not contain a user name or password (got {:?}, credentials masked): an issuer URL is public and is sent in every token's iss; remove the credentials",
            stack::url_for_message(issuer)
        );
    }
    Ok(())
}

/// How the banner names this program: `wishctl` when that is what `wishctl` on the PATH runs,
/// else the path of the running executable, so that every printed command works as printed.
pub(crate) fn wishctl_command() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "wishctl".into();
    };
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(format!("wishctl{}", std::env::consts::EXE_SUFFIX)))
            .find(|candidate| candidate.is_file())
    });
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    match on_path {
        Some(found) if same(&found, &exe) => "wishctl".into(),
        _ => shell_word(&exe.display().to_string()),
    }
}

/// What `wishctl dev` prints on start: where it listens, what it enforces, and how to try it.
fn banner(
    server: &DevServer,
    args: &DevArgs,
    dev_dir: &Path,
    dev_client: Option<&DevClient>,
    store: &str,
) -> String {
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
        format!(" (this server; key in {})", dev_dir.display())
    } else {
        String::new()
    };
    let wishctl = wishctl_command();
    out.push_str(&format!("  issuer     {}{issuer_note}\n", settings.issuer));
    out.push_str(&format!("  audience   {}\n", settings.audiences.join(" ")));
    let client = dev_client.zip(server.token_endpoint());
    if let Some((client, endpoint)) = &client {
        out.push_str(&format!(
            "  client     {} (client credentials at {endpoint}; secret in {})\n",
            client.id,
            client.path.display()
        ));
    }
    out.push_str(&format!("  store      {store}\n"));
    out.push_str("\nTry it:\n");
    out.push_str(&format!("  curl -i {url}\n"));
    if server.is_self_issued() {
        out.push_str(&format!(
            "  TOKEN=$({})\n",
            token_command(server, args, dev_dir, &wishctl)
        ));
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
    if let Some((client, _)) = &client {
        out.push_str(
            "\nAs a pipeline would (OAuth client credentials, like an Auth0 machine-to-machine app):\n",
        );
        out.push_str(&format!(
            "  export WISHCTL_CLIENT_SECRET={}\n",
            shell_word(client.secret.expose())
        ));
        let mut command = format!(
            "{wishctl} token --issuer {} --client-id {} --client-secret-env WISHCTL_CLIENT_SECRET",
            shell_word(settings.issuer.as_str()),
            shell_word(&client.id)
        );
        if let Some(audience) = settings.audiences.first() {
            command.push_str(&format!(" --audience {}", shell_word(audience)));
        }
        out.push_str(&format!("  TOKEN=$({command})\n"));
    }
    out.push_str("\nStop with Ctrl-C.");
    out
}

/// The `wishctl token` command line that mints a token this server accepts.
fn token_command(server: &DevServer, args: &DevArgs, dev_dir: &Path, wishctl: &str) -> String {
    let settings = server.settings();
    let mut command = format!("{wishctl} token");
    let port = server.local_addr().port();
    if port != devserver::DEFAULT_PORT {
        command.push_str(&format!(" --port {port}"));
    }
    if args.dev_dir.is_some() {
        command.push_str(&format!(
            " --dev-dir {}",
            shell_word(&dev_dir.display().to_string())
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

pub(crate) fn shell_word(word: &str) -> String {
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

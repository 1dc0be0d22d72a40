//! `wishctl`: the wish-list API of the Auth0 + API Gateway walkthrough, as code.
//!
//! A thin CLI: each command parses its flags into a stack description (`stack`) and hands it to
//! the reconciler (`provision`), the local server (`devserver`) or the artifact builder.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Deploy the wish-list HTTP API (DynamoDB, IAM, Lambda, API Gateway with a JWT authorizer),
/// tear it down without a trace, or run it locally with the same authorizer rules.
#[derive(Debug, Parser)]
#[command(name = "wishctl", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or update a stack so that it matches the flags.
    Up(cmd::up::UpArgs),
    /// Show what `up` would change, without changing anything.
    Plan(cmd::plan::PlanArgs),
    /// Remove everything a stack owns.
    Down(cmd::down::DownArgs),
    /// Print the outputs (URL, ids, names) of a deployed stack.
    Outputs(cmd::outputs::OutputsArgs),
    /// List the stacks of the account and region: age, expiry, URL, complete or partial.
    List(cmd::list::ListArgs),
    /// Tear down expired or old stacks (crashed CI runs); never what is not tagged as a stack.
    Gc(cmd::gc::GcArgs),
    /// Print the function's log lines; --follow keeps printing new ones.
    Logs(cmd::logs::LogsArgs),
    /// Print the IAM policy a CI deploy role needs for stacks with a name prefix.
    Policy(cmd::policy::PolicyArgs),
    /// Serve the API on 127.0.0.1 with API Gateway's JWT authorizer rules enforced.
    Dev(cmd::dev::DevArgs),
    /// Print an access token: signed by the local dev key for `wishctl dev`, or with --client-id
    /// from an issuer's token endpoint (OAuth client credentials).
    Token(cmd::token::TokenArgs),
    /// Build the Lambda zip (bootstrap for arm64 or x86_64).
    Build(cmd::build::BuildArgs),
    /// Smoke-test a deployed stack or any URL of the API: the walkthrough's "Test it out".
    Verify(cmd::verify::VerifyArgs),
}

/// The exit code of a process that stopped because the reader of its output went away: what a
/// shell reports for a process ended by SIGPIPE (128 + 13).
const OUTPUT_CLOSED: i32 = 141;

/// `wishctl list | head -1`: once `head` has its line and exits, the next write to stdout fails
/// with a broken pipe, and `println!` panics on that (Rust ignores SIGPIPE, and forbidding
/// unsafe code rules out restoring it). The reader chose to stop reading: end quietly with
/// [`OUTPUT_CLOSED`], as a Unix tool ended by SIGPIPE would, instead of a panic and a backtrace.
/// Every other panic goes to the default hook.
fn end_quietly_when_the_output_is_closed() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        let printing = message.starts_with("failed printing to stdout")
            || message.starts_with("failed printing to stderr");
        if printing && message.contains("Broken pipe") {
            std::process::exit(OUTPUT_CLOSED);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    end_quietly_when_the_output_is_closed();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version exit 0. Usage errors exit 1, not clap's 2: with
            // `plan --detailed-exitcode`, 2 means "changes pending", and a typo must not say that.
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // `wishctl dev` writes every log line through a bounded queue (a stalled stderr reader must
    // not stall the server); the other commands write to stderr directly.
    let diagnostics = match &cli.command {
        Command::Dev(args) => cmd::Diagnostics::queued(args.log.report_format()),
        _ => cmd::Diagnostics::default(),
    };
    diagnostics.init_tracing();
    let code = run(cli, &diagnostics);
    diagnostics.flush();
    code
}

fn run(cli: Cli, diagnostics: &cmd::Diagnostics) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            diagnostics.line(format!("error: cannot start the async runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Up(args) => cmd::up::run(args).await,
            Command::Plan(args) => cmd::plan::run(args).await,
            Command::Down(args) => cmd::down::run(args).await,
            Command::Outputs(args) => cmd::outputs::run(args).await,
            Command::List(args) => cmd::list::run(args).await,
            Command::Gc(args) => cmd::gc::run(args).await,
            Command::Logs(args) => cmd::logs::run(args).await,
            Command::Policy(args) => cmd::policy::run(args),
            Command::Dev(args) => cmd::dev::run(args, diagnostics.clone()).await,
            Command::Token(args) => cmd::token::run(args).await,
            Command::Build(args) => cmd::build::run(args).await,
            Command::Verify(args) => cmd::verify::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            diagnostics.line(format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

//! `wishctl logs`: the function's log lines (the handler's JSON request lines and errors), what
//! a person reads when a pipeline's `verify` failed; `--follow` keeps printing new ones.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use provision::{LogEvent, Provisioner};
use serde::Serialize;
use serde_json::Value;
use stack::StackName;

use super::aws::AwsArgs;
use super::output::{print_calls, print_json, OutputFormat, ReportArgs};

/// How often `--follow` asks CloudWatch for new lines: polite (FilterLogEvents allows a few
/// calls per second per account, shared with everyone else) and still prompt for a person.
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// Flags of `wishctl logs`.
#[derive(Debug, clap::Args)]
pub struct LogsArgs {
    /// The stack whose function's log lines to print.
    #[arg(long, value_name = "NAME", default_value = stack::DEFAULT_STACK)]
    pub stack: String,
    /// Start this long ago (e.g. 90s, 10m, 2h, 1d).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub since: String,
    /// Keep printing new lines until Ctrl-C (or until --for has passed).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: stop after this long (e.g. 5m).
    #[arg(long = "for", value_name = "DURATION", requires = "follow")]
    pub duration: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// One line as `--output json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EventJson<'a> {
    time: String,
    #[serde(flatten)]
    event: &'a LogEvent,
    /// The message parsed, when it is a JSON object (the handler's request lines are).
    #[serde(skip_serializing_if = "Option::is_none")]
    json: Option<Value>,
}

impl<'a> EventJson<'a> {
    fn new(event: &'a LogEvent) -> Self {
        EventJson {
            time: event.time(),
            json: serde_json::from_str::<Value>(&event.message)
                .ok()
                .filter(Value::is_object),
            event,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LogsJson<'a> {
    stack: &'a str,
    log_group: &'a str,
    since: String,
    events: Vec<EventJson<'a>>,
}

fn print_text(event: &LogEvent) {
    println!("{}  {}", event.time(), event.message);
}

pub async fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let stack: StackName = args.stack.parse()?;
    let since = stack::parse_duration(&args.since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let duration = match &args.duration {
        Some(text) => Some(stack::parse_duration(text).map_err(|e| anyhow::anyhow!("--for: {e}"))?),
        None => None,
    };
    let start = SystemTime::now()
        .checked_sub(since)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let sdk = args.aws.sdk_config().await?;
    let provisioner = Provisioner::new(&sdk);
    let json = args.report.output == OutputFormat::Json;

    if !args.follow {
        let report = provisioner.log_events(&stack, start).await?;
        print_calls(&report.calls, args.report.verbose);
        if json {
            print_json(&LogsJson {
                stack: stack.as_str(),
                log_group: &report.log_group,
                since: stack::UtcTime::from_system_time(start).to_string(),
                events: report.events.iter().map(EventJson::new).collect(),
            })?;
        } else {
            for event in &report.events {
                print_text(event);
            }
            if report.events.is_empty() {
                eprintln!(
                    "no log lines in {} since {} ago (--since widens the window)",
                    report.log_group, args.since
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    // --follow: one JSON object per line with --output json, as the lines arrive.
    let until = duration.map(|d| tokio::time::Instant::now() + d);
    let on_event = move |event: &LogEvent| {
        if json {
            match serde_json::to_string(&EventJson::new(event)) {
                Ok(line) => println!("{line}"),
                Err(err) => eprintln!("error: cannot print a log event as JSON: {err}"),
            }
        } else {
            print_text(event);
        }
    };
    eprintln!(
        "following the log group of stack {} (every {}s; Ctrl-C stops)",
        stack,
        POLL_INTERVAL.as_secs()
    );
    let follow = provisioner.follow_logs(&stack, start, until, POLL_INTERVAL, on_event);
    tokio::select! {
        report = follow => {
            let report = report?;
            print_calls(&report.calls, args.report.verbose);
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("stopped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

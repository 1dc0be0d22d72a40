//! `wishctl logs`: the function's log lines (the handler's JSON request lines and errors), what
//! a person reads when a pipeline's `verify` failed; `--follow` keeps printing new ones.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use provision::{LogEvent, LogQuery, Provisioner};
use serde::Serialize;
use serde_json::Value;
use stack::StackName;

use super::aws::AwsArgs;
use super::output::{print_calls, OutputFormat, ReportArgs};

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

/// Set by tests only: events per `FilterLogEvents` page, so that a few hundred lines in moto
/// make as many pages as a busy log group does on AWS.
pub const PAGE_SIZE_ENV: &str = "WISHCTL_TEST_LOG_PAGE_SIZE";

/// `--output json` without `--follow`: one document `{stack, logGroup, since, events: [...]}`,
/// written as the events arrive (one event a line) rather than once every page is read. It
/// opens at the first event (or at the end when there is none), so an error before any line
/// leaves stdout empty; an error after it closes the document with `"incomplete": REASON`, so
/// stdout is always one valid JSON document or nothing.
#[derive(Debug)]
struct JsonDocument {
    /// `{"stack": ..., "logGroup": ..., "since": ..., "events": [` as it is printed.
    opening: String,
    events: usize,
}

impl JsonDocument {
    fn new(stack: &str, log_group: &str, since: &str) -> anyhow::Result<Self> {
        let field =
            |value: &str| serde_json::to_string(value).context("serializing the result as JSON");
        Ok(JsonDocument {
            opening: format!(
                "{{\n  \"stack\": {},\n  \"logGroup\": {},\n  \"since\": {},\n  \"events\": [",
                field(stack)?,
                field(log_group)?,
                field(since)?
            ),
            events: 0,
        })
    }

    fn event(&mut self, out: &mut impl Write, event: &LogEvent) -> anyhow::Result<()> {
        let line = serde_json::to_string(&EventJson::new(event))
            .context("serializing a log event as JSON")?;
        if self.events == 0 {
            write!(out, "{}\n    {line}", self.opening)
        } else {
            write!(out, ",\n    {line}")
        }
        .and_then(|()| out.flush())
        .context("writing the log lines to stdout")?;
        self.events += 1;
        Ok(())
    }

    /// Closes the document: complete, or cut short by `error`.
    fn finish(&self, out: &mut impl Write, error: Option<&anyhow::Error>) -> anyhow::Result<()> {
        let closing = if self.events == 0 {
            format!("{}]", self.opening)
        } else {
            "\n  ]".to_string()
        };
        match error {
            None => writeln!(out, "{closing}\n}}"),
            Some(error) => writeln!(
                out,
                "{closing},\n  \"incomplete\": {}\n}}",
                serde_json::to_string(&format!("{error:#}")).unwrap_or_default()
            ),
        }
        .context("writing the log lines to stdout")
    }
}

fn print_text(out: &mut impl Write, event: &LogEvent) -> anyhow::Result<()> {
    writeln!(out, "{}  {}", event.time(), event.message).context("writing the log lines to stdout")
}

/// [`PAGE_SIZE_ENV`], when set.
fn page_size() -> anyhow::Result<Option<i32>> {
    match std::env::var(PAGE_SIZE_ENV) {
        Err(_) => Ok(None),
        Ok(text) => match text.parse::<i32>() {
            Ok(n) if (1..=10_000).contains(&n) => Ok(Some(n)),
            _ => anyhow::bail!("{PAGE_SIZE_ENV}={text:?}: expected a whole number from 1 to 10000"),
        },
    }
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
    let query = LogQuery {
        since: start,
        page_size: page_size()?,
    };
    let sdk = args.aws.sdk_config().await?;
    let provisioner = Provisioner::new(&sdk);
    let json = args.report.output == OutputFormat::Json;

    if !args.follow {
        // Each page's lines are printed as soon as it is read: a long window of a busy log
        // group takes many pages, and a person reads the first lines meanwhile.
        let log_group = provisioner.log_group(&stack)?;
        let mut document = JsonDocument::new(
            stack.as_str(),
            &log_group,
            &stack::UtcTime::from_system_time(start).to_string(),
        )?;
        let mut out = std::io::stdout();
        let read = provisioner
            .log_events(&stack, query, |event| {
                if json {
                    document.event(&mut out, event)
                } else {
                    print_text(&mut out, event)
                }
            })
            .await;
        let report = match read {
            Ok(report) => report,
            Err(err) => {
                if json && document.events > 0 {
                    document.finish(&mut out, Some(&err))?;
                }
                return Err(err);
            }
        };
        print_calls(&report.calls, args.report.verbose);
        if json {
            document.finish(&mut out, None)?;
        } else if report.events == 0 {
            eprintln!(
                "no log lines in {} since {} ago (--since widens the window)",
                report.log_group, args.since
            );
        }
        return Ok(ExitCode::SUCCESS);
    }

    // --follow: one JSON object per line with --output json, as the lines arrive.
    let until = duration.map(|d| tokio::time::Instant::now() + d);
    let mut out = std::io::stdout();
    let on_event = move |event: &LogEvent| {
        if json {
            let line = serde_json::to_string(&EventJson::new(event))
                .context("serializing a log event as JSON")?;
            writeln!(out, "{line}").context("writing the log lines to stdout")
        } else {
            print_text(&mut out, event)
        }
    };
    eprintln!(
        "following the log group of stack {} (every {}s; Ctrl-C stops)",
        stack,
        POLL_INTERVAL.as_secs()
    );
    let follow = provisioner.follow_logs(&stack, query, until, POLL_INTERVAL, on_event);
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

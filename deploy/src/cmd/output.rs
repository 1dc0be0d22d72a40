//! How `up`, `plan`, `down`, `outputs` and `build` report: results on stdout as text or exactly
//! one JSON object (`--output`), progress and the AWS call log on stderr.

use anyhow::Context as _;
use provision::{CallReport, Progress};
use serde::Serialize;

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Lines for people.
    #[default]
    Text,
    /// Exactly one JSON object.
    Json,
}

/// How `up`, `plan`, `down` and `outputs` report: the result format and the call log.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// Result format on stdout; progress always goes to stderr.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: OutputFormat,
    /// Also print every AWS API call and the call counts on stderr.
    #[arg(long, short)]
    pub verbose: bool,
}

/// Progress lines on stderr, one per resource action.
pub fn stderr_progress() -> Progress {
    Progress::new(|event| eprintln!("{event}"))
}

/// The call counts every JSON result carries.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCounts {
    pub total: usize,
    pub mutating: usize,
    pub critical_path: usize,
}

impl From<&CallReport> for CallCounts {
    fn from(report: &CallReport) -> Self {
        CallCounts {
            total: report.total,
            mutating: report.mutating,
            critical_path: report.critical_path,
        }
    }
}

/// With `--verbose`: every call, then the counts.
pub fn print_calls(report: &CallReport, verbose: bool) {
    if verbose {
        for call in &report.calls {
            let marker = if call.mutating { "*" } else { " " };
            eprintln!("  {marker} {} {}", call.service, call.operation);
        }
        eprintln!("{report}");
    }
}

/// Prints `value` as one pretty-printed JSON document on stdout.
pub fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("serializing the result as JSON")?;
    println!("{text}");
    Ok(())
}

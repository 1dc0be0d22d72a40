//! The Lambda function: `provided.al2023`, handler `bootstrap`, one architecture, memory,
//! timeout, `TABLE_NAME`, and its code. Handles the two ways a fresh function is not ready yet:
//! IAM not having propagated a new role (`CreateFunction` retried at a steady interval) and the
//! `Pending` / `InProgress` states (polled, bounded: see `wait`). Layers, description and tracing
//! mode are declared too (no layers, wishctl's description, `PassThrough`), so a layer or X-Ray
//! tracing added by hand is drift that `plan` shows and `up` removes.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::create_function::CreateFunctionError;
use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, Environment, FunctionCode as LambdaCode, LastUpdateStatus, Runtime, State,
    TracingConfig, TracingMode,
};
use stack::{FunctionSettings, Tags};

use crate::context::{found, Ctx, SdkResultExt};
use crate::field::FunctionField;
use crate::plan::{tag_change, updated_message, Action, FieldChange};
use crate::{wait, ResourceKind, Settings};

/// The fields one `UpdateFunctionConfiguration` call sets.
const CONFIG_FIELDS: [FunctionField; 9] = [
    FunctionField::Runtime,
    FunctionField::Handler,
    FunctionField::Memory,
    FunctionField::Timeout,
    FunctionField::Environment,
    FunctionField::Role,
    FunctionField::Layers,
    FunctionField::Description,
    FunctionField::Tracing,
];

/// The function's description, as `up` sets it.
pub(crate) const DESCRIPTION: &str = "wish-list API (managed by wishctl)";

/// The tracing mode of a function without X-Ray tracing (what Lambda reports when none is set).
const TRACING: TracingMode = TracingMode::PassThrough;

/// The zip to deploy and its SHA-256 in Lambda's `CodeSha256` format (base64 of the digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCode {
    pub path: PathBuf,
    pub sha256_base64: String,
}

/// What the function should look like.
#[derive(Debug, Clone)]
pub(crate) struct DesiredFunction<'a> {
    pub name: &'a str,
    pub role_arn: String,
    pub settings: &'a FunctionSettings,
    pub table: &'a str,
    pub code: &'a FunctionCode,
    pub tags: &'a Tags,
}

impl DesiredFunction<'_> {
    fn environment(&self) -> BTreeMap<String, String> {
        BTreeMap::from([(
            FunctionSettings::TABLE_ENV.to_string(),
            self.table.to_string(),
        )])
    }

    fn architecture(&self) -> Architecture {
        Architecture::from(self.settings.architecture.lambda_name())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ObservedFunction {
    pub arn: String,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub architectures: Vec<String>,
    pub memory_mb: Option<i32>,
    pub timeout_seconds: Option<i32>,
    pub environment: BTreeMap<String, String>,
    pub role: Option<String>,
    pub code_sha256: Option<String>,
    /// ARNs of the layer versions attached (drift: wishctl attaches none).
    pub layers: Vec<String>,
    /// The description (empty when none).
    pub description: String,
    /// The X-Ray tracing mode (`PassThrough` when Lambda reports none).
    pub tracing: String,
    pub state: Option<State>,
    pub last_update_status: Option<LastUpdateStatus>,
    pub tags: BTreeMap<String, String>,
    /// The function URL, when one was added (drift: it bypasses the API and its authorizer).
    pub url: Option<String>,
    /// Ids of resource policy statements other than the stack's (drift); filled in by
    /// `observe` from the permission module's reading of the policy.
    pub other_statements: Vec<String>,
}

/// The function's URL, if it has one (the unqualified function; `None` when there is none).
pub(crate) async fn function_url(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<Option<String>> {
    let config = found(
        lambda
            .get_function_url_config()
            .function_name(name)
            .send()
            .await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("reading the function URL configuration of function {name}"))?;
    Ok(config.map(|c| c.function_url().to_string()))
}

/// Reads the function; its `url` and `other_statements` are left empty, for the caller to read
/// beside each other ([`function_url`], the resource policy).
pub(crate) async fn observe(
    lambda: &aws_sdk_lambda::Client,
    name: &str,
) -> anyhow::Result<Option<ObservedFunction>> {
    let Some(output) = found(
        lambda.get_function().function_name(name).send().await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("reading function {name}"))?
    else {
        return Ok(None);
    };
    let config = output
        .configuration()
        .with_context(|| format!("GetFunction {name} returned no configuration"))?;
    Ok(Some(ObservedFunction {
        url: None,
        other_statements: Vec::new(),
        arn: config
            .function_arn()
            .with_context(|| format!("GetFunction {name} returned no ARN"))?
            .to_string(),
        runtime: config.runtime().map(|r| r.as_str().to_string()),
        handler: config.handler().map(str::to_string),
        architectures: config
            .architectures()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        memory_mb: config.memory_size(),
        timeout_seconds: config.timeout(),
        environment: config
            .environment()
            .and_then(|e| e.variables())
            .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        role: config.role().map(str::to_string),
        code_sha256: config.code_sha256().map(str::to_string),
        layers: config
            .layers()
            .iter()
            .map(|l| l.arn().unwrap_or("(a layer without ARN)").to_string())
            .collect(),
        description: config.description().unwrap_or_default().to_string(),
        tracing: config
            .tracing_config()
            .and_then(|t| t.mode())
            .unwrap_or(&TRACING)
            .as_str()
            .to_string(),
        state: config.state().cloned(),
        last_update_status: config.last_update_status().cloned(),
        tags: output
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

fn show_opt<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "(none)".to_string(), |v| v.to_string())
}

fn show_env(env: &BTreeMap<String, String>) -> String {
    if env.is_empty() {
        return "(none)".to_string();
    }
    env.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn diff(desired: &DesiredFunction<'_>, observed: Option<&ObservedFunction>) -> Action {
    let Some(found) = observed else {
        return Action::Create;
    };
    let settings = desired.settings;
    let mut fields = Vec::new();
    if found.runtime.as_deref() != Some(FunctionSettings::RUNTIME) {
        fields.push(FieldChange::new(
            FunctionField::Runtime,
            show_opt(found.runtime.as_deref()),
            FunctionSettings::RUNTIME,
        ));
    }
    if found.handler.as_deref() != Some(FunctionSettings::HANDLER) {
        fields.push(FieldChange::new(
            FunctionField::Handler,
            show_opt(found.handler.as_deref()),
            FunctionSettings::HANDLER,
        ));
    }
    let arch = settings.architecture.lambda_name();
    if found.architectures != [arch] {
        fields.push(FieldChange::new(
            FunctionField::Architecture,
            found.architectures.join(","),
            arch,
        ));
    }
    let memory = i32::try_from(settings.memory_mb).unwrap_or(i32::MAX);
    if found.memory_mb != Some(memory) {
        fields.push(FieldChange::new(
            FunctionField::Memory,
            show_opt(found.memory_mb),
            memory,
        ));
    }
    let timeout = i32::try_from(settings.timeout_seconds).unwrap_or(i32::MAX);
    if found.timeout_seconds != Some(timeout) {
        fields.push(FieldChange::new(
            FunctionField::Timeout,
            show_opt(found.timeout_seconds),
            timeout,
        ));
    }
    let environment = desired.environment();
    if found.environment != environment {
        fields.push(FieldChange::new(
            FunctionField::Environment,
            show_env(&found.environment),
            show_env(&environment),
        ));
    }
    if found.role.as_deref() != Some(desired.role_arn.as_str()) {
        fields.push(FieldChange::new(
            FunctionField::Role,
            show_opt(found.role.as_deref()),
            &desired.role_arn,
        ));
    }
    if found.code_sha256.as_deref() != Some(desired.code.sha256_base64.as_str()) {
        fields.push(FieldChange::new(
            FunctionField::Code,
            show_opt(found.code_sha256.as_deref()),
            &desired.code.sha256_base64,
        ));
    }
    if !found.layers.is_empty() {
        fields.push(FieldChange::new(
            FunctionField::Layers,
            format!("[{}]", found.layers.join(" ")),
            "(none)",
        ));
    }
    if found.description != DESCRIPTION {
        fields.push(FieldChange::new(
            FunctionField::Description,
            format!("{:?}", found.description),
            format!("{DESCRIPTION:?}"),
        ));
    }
    if found.tracing != TRACING.as_str() {
        fields.push(FieldChange::new(
            FunctionField::Tracing,
            &found.tracing,
            TRACING.as_str(),
        ));
    }
    fields.extend(tag_change(FunctionField::Tags, desired.tags, &found.tags));
    if let Some(url) = &found.url {
        fields.push(FieldChange::new(FunctionField::Url, url, "(none)"));
    }
    if !found.other_statements.is_empty() {
        fields.push(FieldChange::new(
            FunctionField::ResourcePolicy,
            format!("[{}]", found.other_statements.join(" ")),
            "(none)",
        ));
    }
    Action::from_fields(fields)
}

async fn read_zip(code: &FunctionCode) -> anyhow::Result<Blob> {
    let bytes = tokio::fs::read(&code.path)
        .await
        .with_context(|| format!("reading the function zip {}", code.path.display()))?;
    Ok(Blob::new(bytes))
}

/// The timeouts of `lambda`'s calls that carry `zip`: longer, by its size.
fn upload_timeouts(lambda: &aws_sdk_lambda::Client, zip: &Blob) -> aws_sdk_lambda::config::Builder {
    let ordinary = lambda
        .config()
        .timeout_config()
        .cloned()
        .unwrap_or_else(crate::timeouts::timeout_config);
    aws_sdk_lambda::config::Builder::default().timeout_config(
        crate::timeouts::upload_timeout_config(&ordinary, zip.as_ref().len()),
    )
}

/// The message Lambda gives while IAM has not propagated a new role (or a role's new trust
/// policy) yet.
const ROLE_NOT_ASSUMABLE: &str = "cannot be assumed by Lambda";

fn create_hit_propagation(err: &CreateFunctionError) -> bool {
    matches!(err, CreateFunctionError::InvalidParameterValueException(e)
        if e.message().is_some_and(|m| m.contains(ROLE_NOT_ASSUMABLE)))
}

fn update_hit_propagation(err: &UpdateFunctionConfigurationError) -> bool {
    matches!(err, UpdateFunctionConfigurationError::InvalidParameterValueException(e)
        if e.message().is_some_and(|m| m.contains(ROLE_NOT_ASSUMABLE)))
}

/// Retries `call` while IAM has not propagated the role yet: every
/// `propagation_retry_interval`, for at most `propagation_timeout`.
async fn retry_role_propagation<T, E, F, Fut>(
    ctx: &Ctx,
    name: &str,
    is_propagation: fn(&E) -> bool,
    mut call: F,
) -> Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SdkError<E, aws_smithy_runtime_api::http::Response>>>,
{
    let Settings {
        propagation_timeout,
        propagation_retry_interval: interval,
        ..
    } = ctx.settings.clone();
    let started = Instant::now();
    let mut retries = 0_u32;
    loop {
        match call().await {
            Err(err)
                if err.as_service_error().is_some_and(is_propagation)
                    && started.elapsed() + interval <= propagation_timeout =>
            {
                // One line when the wait starts, then one every few seconds: the wait is normal.
                if retries.is_multiple_of(10) {
                    ctx.progress.report(
                        ResourceKind::Function,
                        name,
                        format!(
                            "role not assumable by Lambda yet (IAM propagation, {:.1}s so far), \
                             retrying every {}ms",
                            started.elapsed().as_secs_f64(),
                            interval.as_millis()
                        ),
                    );
                }
                retries += 1;
                tokio::time::sleep(interval).await;
            }
            other => return other,
        }
    }
}

/// Creates or updates the function; returns its ARN once it is `Active` with its last update
/// `Successful`.
pub(crate) async fn apply(
    ctx: &Ctx,
    desired: &DesiredFunction<'_>,
    observed: Option<&ObservedFunction>,
    action: &Action,
) -> anyhow::Result<String> {
    let lambda = &ctx.clients.lambda;
    let name = desired.name;
    let settings = desired.settings;
    let memory = i32::try_from(settings.memory_mb).context("memory size out of range")?;
    let timeout = i32::try_from(settings.timeout_seconds).context("timeout out of range")?;
    let environment = Environment::builder()
        .set_variables(Some(desired.environment().into_iter().collect()))
        .build();
    match (action, observed) {
        (Action::Create, _) => {
            let zip = read_zip(desired.code).await?;
            let output = retry_role_propagation(ctx, name, create_hit_propagation, || {
                lambda
                    .create_function()
                    .function_name(name)
                    .runtime(Runtime::from(FunctionSettings::RUNTIME))
                    .handler(FunctionSettings::HANDLER)
                    .role(&desired.role_arn)
                    .architectures(desired.architecture())
                    .memory_size(memory)
                    .timeout(timeout)
                    .environment(environment.clone())
                    .code(LambdaCode::builder().zip_file(zip.clone()).build())
                    .description(DESCRIPTION)
                    .set_tags(Some(desired.tags.to_hash_map()))
                    .customize()
                    .config_override(upload_timeouts(lambda, &zip))
                    .send()
            })
            .await
            .doing(|| format!("creating function {name}"))?;
            let arn = output
                .function_arn()
                .with_context(|| format!("CreateFunction {name} returned no ARN"))?
                .to_string();
            if output.state() != Some(&State::Active) {
                wait_active(ctx, name).await?;
            }
            ctx.progress.report(ResourceKind::Function, name, "created");
            Ok(arn)
        }
        (Action::NoChange, Some(found)) => {
            // Nothing to change, but success means ready: an earlier run may have been cut off
            // while the function was still settling.
            wait_settled(ctx, name, found).await?;
            Ok(found.arn.clone())
        }
        (Action::Update { fields }, Some(found)) => {
            wait_settled(ctx, name, found).await?;
            if CONFIG_FIELDS.iter().any(|f| action.updates(*f)) {
                let output = retry_role_propagation(ctx, name, update_hit_propagation, || {
                    lambda
                        .update_function_configuration()
                        .function_name(name)
                        .runtime(Runtime::from(FunctionSettings::RUNTIME))
                        .handler(FunctionSettings::HANDLER)
                        .role(&desired.role_arn)
                        .memory_size(memory)
                        .timeout(timeout)
                        .environment(environment.clone())
                        // No layers: an empty list detaches every layer.
                        .set_layers(Some(Vec::new()))
                        .description(DESCRIPTION)
                        .tracing_config(TracingConfig::builder().mode(TRACING).build())
                        .send()
                })
                .await
                .doing(|| format!("updating the configuration of function {name}"))?;
                if action.updates(FunctionField::Layers) {
                    ctx.progress.report(
                        ResourceKind::Function,
                        name,
                        format!(
                            "detached layers {} (not part of the stack)",
                            found.layers.join(" ")
                        ),
                    );
                }
                if output.last_update_status() != Some(&LastUpdateStatus::Successful)
                    || output.state() == Some(&State::Pending)
                {
                    wait_updated(ctx, name).await?;
                }
            }
            if action.updates(FunctionField::Code) || action.updates(FunctionField::Architecture) {
                let zip = read_zip(desired.code).await?;
                let output = lambda
                    .update_function_code()
                    .function_name(name)
                    .zip_file(zip.clone())
                    .architectures(desired.architecture())
                    .customize()
                    .config_override(upload_timeouts(lambda, &zip))
                    .send()
                    .await
                    .doing(|| format!("updating the code of function {name}"))?;
                if output.last_update_status() != Some(&LastUpdateStatus::Successful)
                    || output.state() == Some(&State::Pending)
                {
                    wait_updated(ctx, name).await?;
                }
            }
            if action.updates(FunctionField::Tags) {
                lambda
                    .tag_resource()
                    .resource(&found.arn)
                    .set_tags(Some(desired.tags.to_hash_map()))
                    .send()
                    .await
                    .doing(|| format!("tagging function {name}"))?;
            }
            if action.updates(FunctionField::Url) {
                crate::context::found(
                    lambda
                        .delete_function_url_config()
                        .function_name(name)
                        .send()
                        .await,
                    |e| e.is_resource_not_found_exception(),
                )
                .doing(|| format!("deleting the function URL of function {name}"))?;
                ctx.progress.report(
                    ResourceKind::Function,
                    name,
                    format!(
                        "deleted function URL {} (it bypassed the API's authorizer)",
                        found.url.as_deref().unwrap_or_default()
                    ),
                );
            }
            if action.updates(FunctionField::ResourcePolicy) {
                for sid in &found.other_statements {
                    crate::permission::remove(lambda, name, sid).await?;
                    ctx.progress.report(
                        ResourceKind::Function,
                        name,
                        format!("removed resource policy statement {sid} (not part of the stack)"),
                    );
                }
            }
            ctx.progress
                .report(ResourceKind::Function, name, updated_message(fields));
            Ok(found.arn.clone())
        }
        (_, None) => {
            anyhow::bail!("internal error: function {name} planned as existing but not found")
        }
    }
}

/// Waits until an existing function can take an update: `Pending` -> `Active`, and a running
/// update finished.
async fn wait_settled(ctx: &Ctx, name: &str, found: &ObservedFunction) -> anyhow::Result<()> {
    if found.state == Some(State::Pending) {
        wait_active(ctx, name).await?;
    }
    if found.last_update_status == Some(LastUpdateStatus::InProgress) {
        wait_updated(ctx, name).await?;
    }
    Ok(())
}

async fn wait_active(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    ctx.progress
        .report(ResourceKind::Function, name, "waiting until Active");
    wait_for(ctx, name, Ready::Active).await
}

async fn wait_updated(ctx: &Ctx, name: &str) -> anyhow::Result<()> {
    ctx.progress.report(
        ResourceKind::Function,
        name,
        "waiting for the update to finish",
    );
    wait_for(ctx, name, Ready::Updated).await
}

/// What a function wait waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    /// `State` `Active` (a new function).
    Active,
    /// `State` `Active` and `LastUpdateStatus` `Successful` (after an update).
    Updated,
}

/// Polls `GetFunction` until the function is ready; a `Failed` state or update stops the wait
/// with Lambda's reason.
async fn wait_for(ctx: &Ctx, name: &str, ready: Ready) -> anyhow::Result<()> {
    let what = || match ready {
        Ready::Active => format!("function {name} to become Active"),
        Ready::Updated => {
            format!("function {name} to finish its update (LastUpdateStatus Successful)")
        }
    };
    let lambda = &ctx.clients.lambda;
    wait::poll_until(
        what,
        ctx.settings.wait_timeout,
        ctx.settings.poll_interval,
        || async {
            let output = lambda
                .get_function()
                .function_name(name)
                .send()
                .await
                .doing(|| format!("reading the state of function {name}"))?;
            let config = output
                .configuration()
                .with_context(|| format!("GetFunction {name} returned no configuration"))?;
            let state = config.state();
            let update = config.last_update_status();
            if state == Some(&State::Failed) {
                anyhow::bail!(
                    "function {name} failed to become Active: {} {}; fix the cause and run `wishctl up` again",
                    show_opt(config.state_reason_code().map(|c| c.as_str())),
                    show_opt(config.state_reason())
                );
            }
            if update == Some(&LastUpdateStatus::Failed) {
                anyhow::bail!(
                    "the last update of function {name} failed: {} {}; fix the cause and run `wishctl up` again",
                    show_opt(config.last_update_status_reason_code().map(|c| c.as_str())),
                    show_opt(config.last_update_status_reason())
                );
            }
            let active = state.is_none_or(|s| *s == State::Active);
            let updated = update.is_none_or(|u| *u == LastUpdateStatus::Successful);
            Ok(match ready {
                Ready::Active if active => wait::Poll::Ready(()),
                Ready::Updated if active && updated => wait::Poll::Ready(()),
                _ => wait::Poll::NotYet(format!(
                    "State {}, LastUpdateStatus {}",
                    show_opt(state.map(State::as_str)),
                    show_opt(update.map(LastUpdateStatus::as_str))
                )),
            })
        },
    )
    .await
}

/// Deletes the function; `false` when it was already gone.
pub(crate) async fn delete(lambda: &aws_sdk_lambda::Client, name: &str) -> anyhow::Result<bool> {
    let deleted = found(
        lambda.delete_function().function_name(name).send().await,
        |e| e.is_resource_not_found_exception(),
    )
    .doing(|| format!("deleting function {name}"))?;
    Ok(deleted.is_some())
}

#[cfg(test)]
mod tests {
    use stack::StackName;

    use super::*;

    /// What a function deployed by `up` with `settings`, `code` and `tags` looks like.
    fn as_deployed(desired: &DesiredFunction<'_>) -> ObservedFunction {
        ObservedFunction {
            arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            runtime: Some(FunctionSettings::RUNTIME.into()),
            handler: Some(FunctionSettings::HANDLER.into()),
            architectures: vec![desired.settings.architecture.lambda_name().into()],
            memory_mb: Some(128),
            timeout_seconds: Some(10),
            environment: desired.environment(),
            role: Some(desired.role_arn.clone()),
            code_sha256: Some(desired.code.sha256_base64.clone()),
            layers: Vec::new(),
            description: DESCRIPTION.into(),
            tracing: "PassThrough".into(),
            state: Some(State::Active),
            last_update_status: Some(LastUpdateStatus::Successful),
            tags: desired.tags.as_map().clone(),
            url: None,
            other_statements: Vec::new(),
        }
    }

    #[test]
    fn layers_description_and_tracing_set_by_hand_are_drift() {
        let settings = FunctionSettings::default();
        let code = FunctionCode {
            path: PathBuf::from("bootstrap.zip"),
            sha256_base64: "abc=".into(),
        };
        let tags = Tags::for_stack(&StackName::default(), []).unwrap();
        let desired = DesiredFunction {
            name: "f",
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            settings: &settings,
            table: "t",
            code: &code,
            tags: &tags,
        };
        let deployed = as_deployed(&desired);
        assert_eq!(diff(&desired, Some(&deployed)), Action::NoChange);

        let mut changed = deployed.clone();
        changed.layers = vec!["arn:aws:lambda:us-east-1:123456789012:layer:spy:1".into()];
        changed.description = String::new();
        changed.tracing = "Active".into();
        let Action::Update { fields } = diff(&desired, Some(&changed)) else {
            panic!("no update planned");
        };
        let labels: Vec<&str> = fields.iter().map(|f| f.field.label()).collect();
        assert_eq!(labels, ["layers", "description", "tracing mode"]);
        assert_eq!(fields[2].old, "Active");
        assert_eq!(fields[2].new, "PassThrough");
        for field in [
            FunctionField::Layers,
            FunctionField::Description,
            FunctionField::Tracing,
        ] {
            assert!(CONFIG_FIELDS.contains(&field), "{field} is never reset");
        }
    }
}

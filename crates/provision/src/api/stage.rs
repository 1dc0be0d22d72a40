//! The `$default` stage with auto-deploy: every change to routes or integrations goes live
//! without a deployment, and the invoke URL has no stage prefix.

use std::collections::BTreeMap;

use stack::Tags;

use crate::context::{describe_sdk_error, found, Ctx, Env, SdkResultExt};
use crate::field::StageField;
use crate::pages::Pages;
use crate::plan::{tag_change, updated_message, Action, FieldChange};
use crate::ResourceKind;

pub(crate) const STAGE: &str = "$default";

#[derive(Debug, Clone)]
pub(crate) struct ObservedStage {
    pub auto_deploy: bool,
    pub tags: BTreeMap<String, String>,
}

pub(crate) async fn observe(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Option<ObservedStage>> {
    let stage = found(
        apigw
            .get_stage()
            .api_id(api_id)
            .stage_name(STAGE)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("reading stage {STAGE} of HTTP API {api_id}"))?;
    Ok(stage.map(|s| ObservedStage {
        auto_deploy: s.auto_deploy().unwrap_or(false),
        tags: s
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    }))
}

/// The names of every stage of the API.
pub(crate) async fn list(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| format!("listing the stages of HTTP API {api_id}"));
    loop {
        let page = apigw
            .get_stages()
            .api_id(api_id)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing the stages of HTTP API {api_id}"))?;
        names.extend(
            page.items()
                .iter()
                .filter_map(|s| s.stage_name().map(str::to_string)),
        );
        next = pages.next(page.next_token())?;
        if next.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Deletes a stage that is not the stack's (drift); `false` when it was already gone.
pub(crate) async fn delete(
    apigw: &aws_sdk_apigatewayv2::Client,
    api_id: &str,
    name: &str,
) -> anyhow::Result<bool> {
    let deleted = found(
        apigw
            .delete_stage()
            .api_id(api_id)
            .stage_name(name)
            .send()
            .await,
        |e| e.is_not_found_exception(),
    )
    .doing(|| format!("deleting stage {name} of HTTP API {api_id}"))?;
    Ok(deleted.is_some())
}

pub(crate) fn diff(tags: &Tags, found: Option<&ObservedStage>) -> Action {
    let Some(stage) = found else {
        return Action::Create;
    };
    let mut fields = Vec::new();
    if !stage.auto_deploy {
        fields.push(FieldChange::new(StageField::AutoDeploy, false, true));
    }
    fields.extend(tag_change(StageField::Tags, tags, &stage.tags));
    Action::from_fields(fields)
}

pub(crate) async fn apply(
    ctx: &Ctx,
    env: &Env,
    tags: &Tags,
    api_id: &str,
    action: &Action,
) -> anyhow::Result<()> {
    let apigw = &ctx.clients.apigateway;
    match action {
        Action::NoChange => {}
        Action::Create => {
            apigw
                .create_stage()
                .api_id(api_id)
                .stage_name(STAGE)
                .auto_deploy(true)
                .set_tags(Some(tags.to_hash_map()))
                .send()
                .await
                .doing(|| format!("creating stage {STAGE} of HTTP API {api_id}"))?;
            ctx.progress
                .report(ResourceKind::Stage, STAGE, "created (auto-deploy)");
        }
        Action::Update { fields } => {
            if action.updates(StageField::AutoDeploy) {
                apigw
                    .update_stage()
                    .api_id(api_id)
                    .stage_name(STAGE)
                    .auto_deploy(true)
                    .send()
                    .await
                    .doing(|| {
                        format!("turning on auto-deploy of stage {STAGE} of HTTP API {api_id}")
                    })?;
            }
            let mut updated: Vec<FieldChange> = fields
                .iter()
                .filter(|f| f.field != StageField::Tags.into())
                .cloned()
                .collect();
            if action.updates(StageField::Tags) {
                let arn = format!("{}/stages/{STAGE}", env.api_arn(api_id));
                let tagged = apigw
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(tags.to_hash_map()))
                    .send()
                    .await;
                match tagged {
                    // Ownership and expiry are read from the API's own tags, never the stage's;
                    // moto, our offline AWS, answers 404 to tagging a stage, which must not fail
                    // `up --ttl` or `--tag`. It must not be reported as done either.
                    Err(err)
                        if err
                            .raw_response()
                            .is_some_and(|r| r.status().as_u16() == 404) =>
                    {
                        let cause = describe_sdk_error(err);
                        ctx.progress.report(
                            ResourceKind::Stage,
                            STAGE,
                            "tags NOT updated (TagResource answered 404)",
                        );
                        ctx.warnings.once("stage tags", || {
                            format!(
                                "the tags of stage {STAGE} of HTTP API {api_id} were not updated: \
                                 TagResource on {arn} answered 404 ({cause:#}). The stack works \
                                 as declared (ownership and expiry are read from the API's own \
                                 tags), but the stage keeps its old tags and `plan` will show \
                                 them until they match: run `wishctl up` again, or tag the stage \
                                 by hand (aws apigatewayv2 tag-resource --resource-arn {arn})"
                            )
                        });
                    }
                    other => {
                        other.doing(|| format!("tagging stage {STAGE} of HTTP API {api_id}"))?;
                        updated.extend(
                            fields
                                .iter()
                                .filter(|f| f.field == StageField::Tags.into())
                                .cloned(),
                        );
                    }
                }
            }
            if !updated.is_empty() {
                ctx.progress
                    .report(ResourceKind::Stage, STAGE, updated_message(&updated));
            }
        }
    }
    Ok(())
}

//! Discovering the stacks of an account and region (`wishctl list`, `wishctl gc`).
//!
//! There is no state file, so the stacks are found the way AWS holds them: each service's own
//! list call (`ListTables`, `ListFunctions`, `DescribeLogGroups` with the prefix
//! `/aws/lambda/wishctl-`, `ListRoles` under the path `/wishctl/`, `GetApis`), narrowed on the
//! names alone to those a stack with the requested prefix derives in this region (the patterns
//! `wishctl policy` grants on), then each candidate's tags. Nothing is read about any other
//! resource: a CI role scoped to a prefix may hold no permission on it. The tagging API
//! (`GetResources`) would be one call, but it does not find IAM roles or HTTP APIs on every
//! backend (moto, our offline AWS, returns only tables, functions and log groups), and a run
//! killed right after `CreateRole` leaves nothing else behind.
//!
//! A resource belongs to stack `NAME` only when it carries the tag `wishctl:stack=NAME` *and*
//! has the name `stack` derives for `NAME`: anything else named like ours (a table someone made
//! by hand, a copy with the tag removed) is reported as a look-alike and never acted on. Roles
//! are global: one tagged `wishctl:region` for another region belongs to that region's stack; one
//! without the region tag counts here only under the name `stack` derives for this region.
//!
//! Every listing is paginated under the shared guard of [`crate::pages`] (a page limit, no token
//! twice).

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use futures::StreamExt as _;
use serde::Serialize;
use stack::{
    Expiry, ResourceNames, StackName, UtcTime, ROLE_PATH, ROUTES, TAG_EXPIRES_AT, TAG_STACK,
};

use crate::calls::{fork, CallReport};
use crate::context::{found, Ctx, SdkResultExt};
use crate::pages::Pages;
use crate::{Provisioner, ResourceKind};

/// How many tag reads run at once: polite to API rate limits, still fast for dozens of stacks.
const CONCURRENT_READS: usize = 6;

/// The tag other regions' roles carry (roles are global, the stack is regional).
pub const TAG_REGION: &str = "wishctl:region";

/// Which listed names are read further (tags, details): the names `stack` derives, in this
/// region, for the stacks whose name starts with the prefix. Everything else is skipped on its
/// name alone, before any call about it, so that a CI role whose policy (`wishctl policy
/// --stack-prefix P`) covers only `wishctl-P*` resources can list and sweep its own stacks in an
/// account that holds others.
#[derive(Debug, Clone)]
struct Wanted {
    /// The derived names with the stack name replaced by `PREFIX*`.
    patterns: ResourceNames,
}

impl Wanted {
    fn new(prefix: &str, region: &str) -> anyhow::Result<Self> {
        Ok(Wanted {
            patterns: stack::name_patterns(prefix, region)?,
        })
    }

    fn pattern(&self, kind: ResourceKind) -> &str {
        match kind {
            ResourceKind::Table => &self.patterns.table,
            ResourceKind::Role => &self.patterns.role,
            ResourceKind::Function => &self.patterns.function,
            ResourceKind::LogGroup => &self.patterns.log_group,
            _ => &self.patterns.api,
        }
    }

    /// Whether `name` may be the `kind` of a wanted stack (its tags decide whether it is).
    fn accepts(&self, kind: ResourceKind, name: &str) -> bool {
        stack::matches_name_pattern(self.pattern(kind), name)
    }

    /// What every wanted name of `kind` starts with (a listing prefix).
    fn head(&self, kind: ResourceKind) -> &str {
        let pattern = self.pattern(kind);
        pattern.split_once('*').map_or(pattern, |(head, _)| head)
    }
}

/// The names of `stack`'s resources in `region` (role names carry the region); this is the one
/// place that asks `stack` for them.
fn derived_names(stack: &StackName, region: &str) -> ResourceNames {
    match region.parse::<stack::Region>() {
        Ok(region) => stack.resources(&region),
        // `discover` validated the region first; were it invalid, no resource has these names.
        Err(_) => ResourceNames {
            table: String::new(),
            role: String::new(),
            role_policy: String::new(),
            function: String::new(),
            log_group: String::new(),
            api: String::new(),
            authorizer: String::new(),
            permission_statement: String::new(),
        },
    }
}

/// One resource found in the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FoundResource {
    pub kind: ResourceKind,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<UtcTime>,
}

impl fmt::Display for FoundResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// A resource named like a stack's that is not one (untagged, or tagged for a stack whose name
/// does not derive it). `list` reports it; `gc` never touches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LookAlike {
    #[serde(flatten)]
    pub resource: FoundResource,
    pub reason: String,
}

/// One stack as found in the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StackSummary {
    pub stack: StackName,
    /// The earliest creation time of its resources (a function alone only tells when it was
    /// last modified, which is used then: the stack is at least that old).
    pub created_at: Option<UtcTime>,
    /// From the `wishctl:expires-at` tags; when resources disagree, the one that keeps the stack
    /// alive longest.
    pub expires_at: Option<Expiry>,
    /// Whether the expiry had passed when the stack was listed.
    pub expired: bool,
    /// The invoke URL, when the stack has its HTTP API.
    pub url: Option<String>,
    pub api_id: Option<String>,
    /// Every resource a complete stack has is there.
    pub complete: bool,
    /// What a complete stack would have and this one lacks (`role policy wishctl-x-access`, ...).
    pub missing: Vec<String>,
    pub resources: Vec<FoundResource>,
}

impl StackSummary {
    /// How old the stack was at `now` (zero when its creation time is unknown or later).
    pub fn age_at(&self, now: UtcTime) -> Option<std::time::Duration> {
        self.created_at.map(|created| created.until(now))
    }
}

/// Every stack of the account and region, and what only looks like one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub region: String,
    /// When the inventory was taken (`expired` is relative to it).
    pub listed_at: UtcTime,
    /// Sorted by stack name.
    pub stacks: Vec<StackSummary>,
    pub look_alikes: Vec<LookAlike>,
}

/// The result of [`Provisioner::list_stacks`].
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub inventory: Inventory,
    pub calls: CallReport,
}

impl Provisioner {
    /// Finds every stack of the account in the clients' region whose name starts with
    /// `stack_prefix` (empty: every stack), complete or partial, with its creation time, expiry
    /// and URL. Read-only; reads nothing about a resource whose name no such stack derives.
    pub async fn list_stacks(
        &self,
        now: SystemTime,
        stack_prefix: &str,
    ) -> anyhow::Result<ListReport> {
        let (inventory, calls) = self
            .counted(discover(
                &self.ctx,
                UtcTime::from_system_time(now),
                stack_prefix,
            ))
            .await?;
        Ok(ListReport { inventory, calls })
    }
}

/// A listed resource with its tags.
#[derive(Debug, Clone)]
struct Tagged {
    resource: FoundResource,
    tags: BTreeMap<String, String>,
    /// Only for APIs: the id.
    api_id: Option<String>,
}

fn to_map<'a>(
    tags: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    tags.into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn smithy_time(t: &aws_smithy_types::DateTime) -> UtcTime {
    UtcTime::from_unix_seconds(t.secs())
}

async fn tables(ctx: &Ctx, wanted: &Wanted) -> anyhow::Result<Vec<Tagged>> {
    let ddb = &ctx.clients.dynamodb;
    let mut names = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| "listing DynamoDB tables (ListTables)".to_string());
    loop {
        let page = ddb
            .list_tables()
            .set_exclusive_start_table_name(next)
            .send()
            .await
            .doing(|| "listing DynamoDB tables".to_string())?;
        names.extend(
            page.table_names()
                .iter()
                .filter(|n| wanted.accepts(ResourceKind::Table, n))
                .cloned(),
        );
        next = pages.next(page.last_evaluated_table_name())?;
        if next.is_none() {
            break;
        }
    }
    let reads = names.into_iter().map(|name| async move {
        let Some(described) = found(ddb.describe_table().table_name(&name).send().await, |e| {
            e.is_resource_not_found_exception()
        })
        .doing(|| format!("describing table {name}"))?
        else {
            return anyhow::Ok(None);
        };
        let Some(table) = described.table() else {
            return Ok(None);
        };
        let Some(arn) = table.table_arn() else {
            return Ok(None);
        };
        let mut tags = BTreeMap::new();
        let mut next = None;
        let mut pages =
            Pages::new(|| "listing the tags of a table (ListTagsOfResource)".to_string());
        loop {
            let Some(page) = found(
                ddb.list_tags_of_resource()
                    .resource_arn(arn)
                    .set_next_token(next)
                    .send()
                    .await,
                |e| e.is_resource_not_found_exception(),
            )
            .doing(|| format!("listing tags of table {name}"))?
            else {
                return Ok(None);
            };
            for tag in page.tags() {
                tags.insert(tag.key().to_string(), tag.value().to_string());
            }
            next = pages.next(page.next_token())?;
            if next.is_none() {
                break;
            }
        }
        Ok(Some(Tagged {
            resource: FoundResource {
                kind: ResourceKind::Table,
                created_at: table.creation_date_time().map(smithy_time),
                name,
            },
            tags,
            api_id: None,
        }))
    });
    collect(reads).await
}

async fn functions(ctx: &Ctx, wanted: &Wanted) -> anyhow::Result<Vec<Tagged>> {
    let lambda = &ctx.clients.lambda;
    let mut listed = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| "listing Lambda functions (ListFunctions)".to_string());
    loop {
        let page = lambda
            .list_functions()
            .set_marker(next)
            .send()
            .await
            .doing(|| "listing Lambda functions".to_string())?;
        for function in page.functions() {
            if let (Some(name), Some(arn)) = (function.function_name(), function.function_arn()) {
                if wanted.accepts(ResourceKind::Function, name) {
                    let modified = function.last_modified().and_then(UtcTime::parse_rfc3339);
                    listed.push((name.to_string(), arn.to_string(), modified));
                }
            }
        }
        next = pages.next(page.next_marker())?;
        if next.is_none() {
            break;
        }
    }
    let reads = listed.into_iter().map(|(name, arn, modified)| async move {
        let Some(output) = found(lambda.list_tags().resource(&arn).send().await, |e| {
            e.is_resource_not_found_exception()
        })
        .doing(|| format!("listing tags of function {name}"))?
        else {
            return anyhow::Ok(None);
        };
        Ok(Some(Tagged {
            resource: FoundResource {
                kind: ResourceKind::Function,
                name,
                created_at: modified,
            },
            tags: output.tags().map(to_map).unwrap_or_default(),
            api_id: None,
        }))
    });
    collect(reads).await
}

async fn log_groups(ctx: &Ctx, wanted: &Wanted) -> anyhow::Result<Vec<Tagged>> {
    let logs = &ctx.clients.logs;
    let prefix = wanted.head(ResourceKind::LogGroup);
    let mut listed = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| "listing log groups (DescribeLogGroups)".to_string());
    loop {
        let page = logs
            .describe_log_groups()
            .log_group_name_prefix(prefix)
            .set_next_token(next)
            .send()
            .await
            .doing(|| format!("listing log groups {prefix}*"))?;
        for group in page.log_groups() {
            let Some(name) = group.log_group_name() else {
                continue;
            };
            if !wanted.accepts(ResourceKind::LogGroup, name) {
                continue;
            }
            let arn = group
                .log_group_arn()
                .map(str::to_string)
                .or_else(|| group.arn().map(|a| a.trim_end_matches(":*").to_string()));
            if let Some(arn) = arn {
                let created = group.creation_time().map(UtcTime::from_unix_millis);
                listed.push((name.to_string(), arn, created));
            }
        }
        next = pages.next(page.next_token())?;
        if next.is_none() {
            break;
        }
    }
    let reads = listed.into_iter().map(|(name, arn, created)| async move {
        let Some(output) = found(
            logs.list_tags_for_resource()
                .resource_arn(&arn)
                .send()
                .await,
            |e| e.is_resource_not_found_exception(),
        )
        .doing(|| format!("listing tags of log group {name}"))?
        else {
            return anyhow::Ok(None);
        };
        Ok(Some(Tagged {
            resource: FoundResource {
                kind: ResourceKind::LogGroup,
                name,
                created_at: created,
            },
            tags: output.tags().map(to_map).unwrap_or_default(),
            api_id: None,
        }))
    });
    collect(reads).await
}

async fn roles(ctx: &Ctx, wanted: &Wanted) -> anyhow::Result<Vec<Tagged>> {
    let iam = &ctx.clients.iam;
    let mut listed = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| "listing IAM roles (ListRoles)".to_string());
    loop {
        let page = iam
            .list_roles()
            .path_prefix(ROLE_PATH)
            .set_marker(next)
            .send()
            .await
            .doing(|| format!("listing IAM roles under {ROLE_PATH}"))?;
        for role in page.roles() {
            // Another region's roles too are skipped here: no stack of this region has their
            // names, so their tags could only make them another region's (or a look-alike there).
            if wanted.accepts(ResourceKind::Role, role.role_name()) {
                listed.push((
                    role.role_name().to_string(),
                    smithy_time(role.create_date()),
                ));
            }
        }
        next = pages.next(page.is_truncated().then(|| page.marker()).flatten())?;
        if next.is_none() {
            break;
        }
    }
    let reads = listed.into_iter().map(|(name, created)| async move {
        let mut tags = BTreeMap::new();
        let mut next = None;
        let mut pages = Pages::new(|| "listing the tags of a role (ListRoleTags)".to_string());
        loop {
            let Some(page) = found(
                iam.list_role_tags()
                    .role_name(&name)
                    .set_marker(next)
                    .send()
                    .await,
                |e| e.is_no_such_entity_exception(),
            )
            .doing(|| format!("listing tags of role {name}"))?
            else {
                return anyhow::Ok(None);
            };
            for tag in page.tags() {
                tags.insert(tag.key().to_string(), tag.value().to_string());
            }
            next = pages.next(page.is_truncated().then(|| page.marker()).flatten())?;
            if next.is_none() {
                break;
            }
        }
        Ok(Some(Tagged {
            resource: FoundResource {
                kind: ResourceKind::Role,
                name,
                created_at: Some(created),
            },
            tags,
            api_id: None,
        }))
    });
    collect(reads).await
}

async fn apis(ctx: &Ctx, wanted: &Wanted) -> anyhow::Result<Vec<Tagged>> {
    let apigw = &ctx.clients.apigateway;
    let mut found_apis = Vec::new();
    let mut next = None;
    let mut pages = Pages::new(|| "listing HTTP APIs (GetApis)".to_string());
    loop {
        let page = apigw
            .get_apis()
            .set_next_token(next)
            .send()
            .await
            .doing(|| "listing HTTP APIs".to_string())?;
        for api in page.items() {
            let (Some(name), Some(id)) = (api.name(), api.api_id()) else {
                continue;
            };
            if !wanted.accepts(ResourceKind::Api, name) {
                continue;
            }
            found_apis.push(Tagged {
                resource: FoundResource {
                    kind: ResourceKind::Api,
                    name: name.to_string(),
                    created_at: api.created_date().map(smithy_time),
                },
                tags: api.tags().map(to_map).unwrap_or_default(),
                api_id: Some(id.to_string()),
            });
        }
        next = pages.next(page.next_token())?;
        if next.is_none() {
            break;
        }
    }
    Ok(found_apis)
}

/// Runs the reads a few at a time and keeps what still exists.
async fn collect<F>(reads: impl Iterator<Item = F>) -> anyhow::Result<Vec<Tagged>>
where
    F: std::future::Future<Output = anyhow::Result<Option<Tagged>>>,
{
    let results: Vec<_> = futures::stream::iter(reads.map(fork))
        .buffer_unordered(CONCURRENT_READS)
        .collect()
        .await;
    let mut found = Vec::new();
    for result in results {
        if let Some(tagged) = result? {
            found.push(tagged);
        }
    }
    Ok(found)
}

/// Which stack a tagged resource belongs to in `region`, or why it belongs to none. `Ok(None)`:
/// another region's role, which is neither ours nor a look-alike.
fn owner(tagged: &Tagged, region: &str) -> Result<Option<StackName>, String> {
    let Some(value) = tagged.tags.get(TAG_STACK) else {
        return Err(format!("no {TAG_STACK} tag"));
    };
    let Ok(stack) = value.parse::<StackName>() else {
        return Err(format!(
            "tagged {TAG_STACK}={value}, which is not a stack name"
        ));
    };
    let kind = tagged.resource.kind;
    if kind == ResourceKind::Role && tagged.tags.get(TAG_REGION).is_some_and(|r| r != region) {
        return Ok(None);
    }
    let names = derived_names(&stack, region);
    let expected = match kind {
        ResourceKind::Table => &names.table,
        ResourceKind::Role => &names.role,
        ResourceKind::Function => &names.function,
        ResourceKind::LogGroup => &names.log_group,
        ResourceKind::Api => &names.api,
        _ => return Err("not a kind wishctl lists".to_string()),
    };
    if &tagged.resource.name != expected {
        return Err(format!(
            "tagged {TAG_STACK}={stack}, but that stack's {kind} is named {expected}"
        ));
    }
    Ok(Some(stack))
}

/// What was found for one stack, before its details are read.
#[derive(Debug, Default)]
struct Members {
    resources: Vec<Tagged>,
}

impl Members {
    fn of(&self, kind: ResourceKind) -> impl Iterator<Item = &Tagged> {
        self.resources
            .iter()
            .filter(move |t| t.resource.kind == kind)
    }

    fn has(&self, kind: ResourceKind) -> bool {
        self.of(kind).next().is_some()
    }

    /// The stack's API: the oldest of those tagged for it. (`up`, when several are tagged, first
    /// prefers the one with routes, and then deletes the others: this listing reads no routes,
    /// so for a stack with duplicates its URL may name an empty one until the next `up`.)
    /// The HTTP APIs tagged for the stack, oldest first.
    fn apis(&self) -> impl Iterator<Item = &Tagged> {
        let mut apis: Vec<&Tagged> = self.of(ResourceKind::Api).collect();
        apis.sort_by(|a, b| {
            (a.resource.created_at, &a.api_id).cmp(&(b.resource.created_at, &b.api_id))
        });
        apis.into_iter()
    }
}

/// Reads every listing, sorts the resources into stacks, and checks what each stack lacks.
async fn discover(ctx: &Ctx, now: UtcTime, stack_prefix: &str) -> anyhow::Result<Inventory> {
    let region = crate::observe::region(ctx)?.to_string();
    let wanted = Wanted::new(stack_prefix, &region)?;
    let (tables, functions, log_groups, roles, apis) = tokio::try_join!(
        fork(tables(ctx, &wanted)),
        fork(functions(ctx, &wanted)),
        fork(log_groups(ctx, &wanted)),
        fork(roles(ctx, &wanted)),
        fork(apis(ctx, &wanted)),
    )?;
    let mut stacks: BTreeMap<StackName, Members> = BTreeMap::new();
    let mut look_alikes = Vec::new();
    for tagged in tables
        .into_iter()
        .chain(functions)
        .chain(log_groups)
        .chain(roles)
        .chain(apis)
    {
        match owner(&tagged, &region) {
            Ok(Some(stack)) => stacks.entry(stack).or_default().resources.push(tagged),
            Ok(None) => {}
            Err(reason) => look_alikes.push(LookAlike {
                resource: tagged.resource,
                reason,
            }),
        }
    }
    let details = stacks.into_iter().map(|(stack, members)| {
        let region = region.clone();
        fork(async move { summarize(ctx, stack, members, &region, now).await })
    });
    let summaries: Vec<anyhow::Result<StackSummary>> = futures::stream::iter(details)
        .buffer_unordered(CONCURRENT_READS)
        .collect()
        .await;
    let mut stacks = summaries.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    stacks.sort_by(|a, b| a.stack.cmp(&b.stack));
    look_alikes.sort_by(|a, b| {
        (a.resource.kind, &a.resource.name).cmp(&(b.resource.kind, &b.resource.name))
    });
    Ok(Inventory {
        region,
        listed_at: now,
        stacks,
        look_alikes,
    })
}

/// The parts of a stack that live inside its resources: the role's inline policy, the
/// function's invoke permission, the API's routes and authorizer.
#[derive(Debug, Default)]
struct Insides {
    role_policy: bool,
    permission: bool,
    /// The stack's API: of several tagged for it (a cut-off run's duplicate, which the next
    /// `up` deletes), the one with the most routes, then the oldest, as `up` decides.
    api_id: Option<String>,
    /// Route keys present on that API, and whether a JWT route points at an authorizer.
    routes: Vec<String>,
    authorizer: bool,
}

/// The route keys of HTTP API `api_id`, and whether any route points at an authorizer; none when
/// the API is gone.
async fn routes_of(ctx: &Ctx, api_id: &str) -> anyhow::Result<(Vec<String>, bool)> {
    let routes = crate::api::routes::observe_if_present(&ctx.clients.apigateway, api_id)
        .await?
        .unwrap_or_default();
    let authorizer = routes.iter().any(|r| r.authorizer_id.is_some());
    Ok((routes.into_iter().map(|r| r.key).collect(), authorizer))
}

async fn insides(ctx: &Ctx, names: &ResourceNames, members: &Members) -> anyhow::Result<Insides> {
    let clients = &ctx.clients;
    let role_policy = async {
        if !members.has(ResourceKind::Role) {
            return anyhow::Ok(false);
        }
        let policy = found(
            clients
                .iam
                .get_role_policy()
                .role_name(&names.role)
                .policy_name(&names.role_policy)
                .send()
                .await,
            |e| e.is_no_such_entity_exception(),
        )
        .doing(|| {
            format!(
                "reading policy {} of role {}",
                names.role_policy, names.role
            )
        })?;
        Ok(policy.is_some())
    };
    let permission = async {
        if !members.has(ResourceKind::Function) {
            return anyhow::Ok(false);
        }
        let policy = crate::permission::observe(
            &clients.lambda,
            &names.function,
            &names.permission_statement,
        )
        .await?;
        Ok(policy.ours.is_some())
    };
    let routes = async {
        // Usually one API: one listing. Of several, the first with the most routes (they come
        // oldest first).
        let mut best: Option<(String, Vec<String>, bool)> = None;
        for api_id in members.apis().filter_map(|a| a.api_id.clone()) {
            let (keys, authorizer) = routes_of(ctx, &api_id).await?;
            if best
                .as_ref()
                .is_none_or(|(_, most, _)| keys.len() > most.len())
            {
                best = Some((api_id, keys, authorizer));
            }
        }
        anyhow::Ok(best)
    };
    let (role_policy, permission, api) =
        tokio::try_join!(fork(role_policy), fork(permission), fork(routes))?;
    let (api_id, routes, authorizer) = match api {
        Some((id, routes, authorizer)) => (Some(id), routes, authorizer),
        None => (None, Vec::new(), false),
    };
    Ok(Insides {
        role_policy,
        permission,
        api_id,
        routes,
        authorizer,
    })
}

async fn summarize(
    ctx: &Ctx,
    stack: StackName,
    members: Members,
    region: &str,
    now: UtcTime,
) -> anyhow::Result<StackSummary> {
    let names = derived_names(&stack, region);
    let inside = insides(ctx, &names, &members).await?;
    let mut missing = Vec::new();
    let mut need = |present: bool, kind: ResourceKind, name: &str| {
        if !present {
            missing.push(format!("{kind} {name}"));
        }
    };
    need(
        members.has(ResourceKind::Table),
        ResourceKind::Table,
        &names.table,
    );
    need(
        members.has(ResourceKind::LogGroup),
        ResourceKind::LogGroup,
        &names.log_group,
    );
    need(
        members.has(ResourceKind::Role),
        ResourceKind::Role,
        &names.role,
    );
    need(
        inside.role_policy,
        ResourceKind::RolePolicy,
        &names.role_policy,
    );
    need(
        members.has(ResourceKind::Function),
        ResourceKind::Function,
        &names.function,
    );
    need(
        inside.permission,
        ResourceKind::Permission,
        &names.permission_statement,
    );
    let has_api = members.has(ResourceKind::Api);
    need(has_api, ResourceKind::Api, &names.api);
    if has_api {
        for route in ROUTES {
            let key = route.key();
            need(inside.routes.contains(&key), ResourceKind::Route, &key);
        }
        need(
            inside.authorizer,
            ResourceKind::Authorizer,
            &names.authorizer,
        );
    }
    let expires_at = members
        .resources
        .iter()
        .filter_map(|t| t.tags.get(TAG_EXPIRES_AT))
        .map(|value| Expiry::from_tag(value))
        .reduce(Expiry::longest);
    let created_at = members
        .resources
        .iter()
        .filter_map(|t| t.resource.created_at)
        .min();
    let api_id = inside.api_id.clone();
    let mut resources: Vec<FoundResource> = members
        .resources
        .iter()
        .map(|t| {
            let mut resource = t.resource.clone();
            if let Some(id) = &t.api_id {
                resource.name = format!("{} ({id})", resource.name);
            }
            resource
        })
        .collect();
    resources.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    Ok(StackSummary {
        expired: expires_at.as_ref().is_some_and(|e| e.is_expired(now)),
        url: api_id.as_deref().map(|id| stack::invoke_url(id, region)),
        api_id,
        complete: missing.is_empty(),
        missing,
        created_at,
        expires_at,
        resources,
        stack,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tagged(kind: ResourceKind, name: &str, tags: &[(&str, &str)]) -> Tagged {
        Tagged {
            resource: FoundResource {
                kind,
                name: name.to_string(),
                created_at: None,
            },
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            api_id: None,
        }
    }

    #[test]
    fn a_resource_belongs_to_a_stack_by_tag_and_derived_name_together() {
        let ok = tagged(ResourceKind::Table, "wishctl-a-items", &[(TAG_STACK, "a")]);
        assert_eq!(owner(&ok, "us-east-1"), Ok(Some("a".parse().unwrap())));
        let untagged = tagged(ResourceKind::Table, "wishctl-a-items", &[]);
        assert!(owner(&untagged, "us-east-1").is_err());
        let wrong_stack = tagged(ResourceKind::Table, "wishctl-a-items", &[(TAG_STACK, "b")]);
        assert!(owner(&wrong_stack, "us-east-1").is_err());
        let bad_value = tagged(
            ResourceKind::Table,
            "wishctl-a-items",
            &[(TAG_STACK, "A B")],
        );
        assert!(owner(&bad_value, "us-east-1").is_err());
    }

    #[test]
    fn roles_of_other_regions_are_neither_ours_nor_look_alikes() {
        let other = tagged(
            ResourceKind::Role,
            "wishctl-a-eu-west-1-fn",
            &[(TAG_STACK, "a"), (TAG_REGION, "eu-west-1")],
        );
        assert_eq!(owner(&other, "us-east-1"), Ok(None));
        let here = tagged(
            ResourceKind::Role,
            "wishctl-a-us-east-1-fn",
            &[(TAG_STACK, "a"), (TAG_REGION, "us-east-1")],
        );
        assert!(matches!(owner(&here, "us-east-1"), Ok(Some(_))));
        let legacy = tagged(
            ResourceKind::Role,
            "wishctl-a-us-east-1-fn",
            &[(TAG_STACK, "a")],
        );
        assert!(matches!(owner(&legacy, "us-east-1"), Ok(Some(_))));
    }

    #[test]
    fn names_filter_before_any_tag_read() {
        let every = Wanted::new("", "us-east-1").unwrap();
        assert!(every.accepts(ResourceKind::Table, "wishctl-a-items"));
        assert!(!every.accepts(ResourceKind::Table, "wishctl--items"));
        assert!(!every.accepts(ResourceKind::Table, "orders"));
        assert!(every.accepts(ResourceKind::LogGroup, "/aws/lambda/wishctl-a-api"));
        assert!(!every.accepts(ResourceKind::LogGroup, "/aws/lambda/other"));
        assert!(every.accepts(ResourceKind::Role, "wishctl-a-us-east-1-fn"));
        assert!(!every.accepts(ResourceKind::Role, "wishctl-a-eu-west-1-fn"));
        assert_eq!(every.head(ResourceKind::LogGroup), "/aws/lambda/wishctl-");

        let pr = Wanted::new("pr-", "us-east-1").unwrap();
        assert!(pr.accepts(ResourceKind::Table, "wishctl-pr-5-items"));
        assert!(!pr.accepts(ResourceKind::Table, "wishctl-main-items"));
        assert!(!pr.accepts(ResourceKind::Role, "wishctl-main-us-east-1-fn"));
        assert!(!pr.accepts(ResourceKind::Function, "wishctl-prod-api"));
        assert!(!pr.accepts(ResourceKind::Api, "wishctl-main"));
        assert_eq!(pr.head(ResourceKind::LogGroup), "/aws/lambda/wishctl-pr-");
        assert!(Wanted::new("Bad Prefix", "us-east-1").is_err());
    }
}

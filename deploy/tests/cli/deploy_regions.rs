//! One stack name in two regions is two independent stacks: the IAM role (global) carries the
//! region in its name and tags, `down` in one region leaves the other complete, and a role
//! tagged for another region is never adopted.

#![allow(clippy::unwrap_used)]

use crate::support as cli;

use cli::{artifact, json, moto, plan, sdk_in, stderr, up, wishctl};

const STACK: &str = "twin";

async fn role_policy(iam: &aws_sdk_iam::Client, role: &str) -> String {
    iam.get_role_policy()
        .role_name(role)
        .policy_name(format!("wishctl-{STACK}-access"))
        .send()
        .await
        .unwrap()
        .policy_document()
        .to_string()
}

#[tokio::test]
async fn up_in_two_regions_then_down_in_one_leaves_the_other_complete_and_untouched() {
    // GIVEN the same stack deployed in us-east-1 and eu-west-1
    let session = moto().await;
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();
    let us = json(&up(session.endpoint(), STACK, zip, &["--output", "json"]));
    let eu = json(&up(
        session.endpoint(),
        STACK,
        zip,
        &["--region", "eu-west-1", "--output", "json"],
    ));

    // THEN each region has its own role, tagged with its region, whose policy names its own table
    assert_eq!(us["role"], "wishctl-twin-us-east-1-fn");
    assert_eq!(eu["role"], "wishctl-twin-eu-west-1-fn");
    assert_eq!(eu["region"], "eu-west-1");
    let iam = aws_sdk_iam::Client::new(&session.sdk_config().await);
    let eu_role = iam
        .get_role()
        .role_name("wishctl-twin-eu-west-1-fn")
        .send()
        .await
        .unwrap();
    let tags: Vec<(String, String)> = eu_role
        .role()
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect();
    assert!(
        tags.contains(&("wishctl:region".into(), "eu-west-1".into())),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("wishctl:stack".into(), STACK.into())),
        "{tags:?}"
    );
    let eu_policy = role_policy(&iam, "wishctl-twin-eu-west-1-fn").await;
    assert!(eu_policy.contains("eu-west-1"), "{eu_policy}");
    assert!(!eu_policy.contains("us-east-1"), "{eu_policy}");
    let eu_function = aws_sdk_lambda::Client::new(&sdk_in(&session, "eu-west-1").await)
        .get_function()
        .function_name("wishctl-twin-api")
        .send()
        .await
        .unwrap();
    assert!(eu_function
        .configuration()
        .unwrap()
        .role()
        .unwrap()
        .ends_with("/wishctl-twin-eu-west-1-fn"));

    // AND a plan in either region is clean (neither up rewrote the other's role)
    assert_eq!(plan(session.endpoint(), STACK, zip, &[]).0, Some(0));
    assert_eq!(
        plan(session.endpoint(), STACK, zip, &["--region", "eu-west-1"]).0,
        Some(0)
    );

    // WHEN the us-east-1 stack is torn down
    let down = wishctl(
        session.endpoint(),
        &[
            "down",
            "--stack",
            STACK,
            "--delete-data",
            "--output",
            "json",
        ],
    );
    assert!(down.status.success(), "{}", stderr(&down));

    // THEN its role is gone, the eu-west-1 role and its policy are exactly as before, and the
    // eu-west-1 stack is complete (outputs) with a clean plan
    assert!(iam
        .get_role()
        .role_name("wishctl-twin-us-east-1-fn")
        .send()
        .await
        .is_err());
    assert_eq!(
        role_policy(&iam, "wishctl-twin-eu-west-1-fn").await,
        eu_policy
    );
    let outputs = wishctl(
        session.endpoint(),
        &[
            "outputs",
            "--stack",
            STACK,
            "--region",
            "eu-west-1",
            "--output",
            "json",
        ],
    );
    assert!(outputs.status.success(), "{}", stderr(&outputs));
    assert_eq!(json(&outputs)["apiId"], eu["apiId"]);
    let (code, eu_plan) = plan(session.endpoint(), STACK, zip, &["--region", "eu-west-1"]);
    assert_eq!(code, Some(0), "{eu_plan}");
}

#[tokio::test]
async fn a_role_tagged_for_another_region_is_never_adopted() {
    // GIVEN a role with the eu-west-1 name of stack odd, but tagged for us-east-1
    let session = moto().await;
    let iam = aws_sdk_iam::Client::new(&session.sdk_config().await);
    let trust = stack::trust_policy().to_string();
    iam.create_role()
        .role_name("wishctl-odd-eu-west-1-fn")
        .path(stack::ROLE_PATH)
        .assume_role_policy_document(&trust)
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("wishctl:stack")
                .value("odd")
                .build()
                .unwrap(),
        )
        .tags(
            aws_sdk_iam::types::Tag::builder()
                .key("wishctl:region")
                .value("us-east-1")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let zip = artifact(dir.path());
    let zip = zip.to_str().unwrap();

    // WHEN up runs for stack odd in eu-west-1
    let mut args = cli::stack_args("up", "odd", zip);
    args.extend(["--region", "eu-west-1"]);
    let refused = wishctl(session.endpoint(), &args);

    // THEN it refuses, naming the role, and changes nothing
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("role wishctl-odd-eu-west-1-fn"),
        "{}",
        stderr(&refused)
    );
    assert!(iam
        .list_role_policies()
        .role_name("wishctl-odd-eu-west-1-fn")
        .send()
        .await
        .unwrap()
        .policy_names()
        .is_empty());
    let lambda = aws_sdk_lambda::Client::new(&sdk_in(&session, "eu-west-1").await);
    assert!(lambda
        .get_function()
        .function_name("wishctl-odd-api")
        .send()
        .await
        .is_err());
}

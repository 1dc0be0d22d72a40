//! The IAM documents of a stack: the role's trust policy and its least-privilege access policy,
//! and the ARNs they name.

use serde_json::{json, Value};

/// The service principal that assumes the function's role.
pub const LAMBDA_SERVICE_PRINCIPAL: &str = "lambda.amazonaws.com";

/// `arn:{partition}:dynamodb:{region}:{account}:table/{table}`
pub fn table_arn(partition: &str, region: &str, account: &str, table: &str) -> String {
    format!("arn:{partition}:dynamodb:{region}:{account}:table/{table}")
}

/// `arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*` - the form IAM needs to
/// grant `CreateLogStream` and `PutLogEvents` on the streams of one log group.
pub fn log_group_arn(partition: &str, region: &str, account: &str, log_group: &str) -> String {
    format!("arn:{partition}:logs:{region}:{account}:log-group:{log_group}:*")
}

/// The role's trust policy: only Lambda may assume it.
pub fn trust_policy() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Service": LAMBDA_SERVICE_PRINCIPAL },
            "Action": "sts:AssumeRole"
        }]
    })
}

/// The role's inline policy: exactly what the handler does, on exactly this stack's resources.
/// `Scan` for GET, `PutItem` for POST, and writing its own log streams. Nothing else (the
/// walkthrough's "Simple microservice permissions" template also grants Delete/Get/Update).
pub fn access_policy(table_arn: &str, log_group_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "WishListTable",
                "Effect": "Allow",
                "Action": ["dynamodb:PutItem", "dynamodb:Scan"],
                "Resource": table_arn
            },
            {
                "Sid": "OwnLogGroup",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": log_group_arn
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_policy_names_exactly_one_table_and_one_log_group() {
        let table = table_arn("aws", "eu-west-1", "123456789012", "wishctl-a-items");
        let logs = log_group_arn(
            "aws",
            "eu-west-1",
            "123456789012",
            "/aws/lambda/wishctl-a-api",
        );
        assert_eq!(
            logs,
            "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/wishctl-a-api:*"
        );
        let policy = access_policy(&table, &logs);
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Resource"], table);
        assert_eq!(statements[1]["Resource"], logs);
        let text = policy.to_string();
        assert!(
            !text.contains("\"*\""),
            "no wildcard resource or action: {text}"
        );
    }
}

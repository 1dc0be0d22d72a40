//! Which AWS API call an HTTP request is: the service (from the SigV4 credential scope) and the
//! operation (from `X-Amz-Target` for the JSON protocols, `Action=` for the query protocols, the
//! method and path for Lambda's and API Gateway's REST protocols), plus the resource it names
//! when the timing model needs it (role, function, table).
//!
//! Works for any client that signs with SigV4: the Rust SDK, the aws CLI.

use std::fmt;

/// One identified call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCall {
    /// The signing name: `lambda`, `apigateway`, `dynamodb`, `iam`, `logs`, `sts`, ...
    pub service: String,
    /// The operation, e.g. `CreateFunction`, `GetApis`, `DescribeTable`.
    pub operation: String,
    /// The resource named in the path or the body, when there is one the model cares about:
    /// a function name (Lambda), a table name (DynamoDB), a role name (IAM).
    pub resource: Option<String>,
}

impl fmt::Display for AwsCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.service, self.operation)
    }
}

impl AwsCall {
    /// Identifies a request from its method, path, headers and body.
    pub fn identify(
        method: &str,
        path: &str,
        authorization: Option<&str>,
        target: Option<&str>,
        body: &[u8],
    ) -> AwsCall {
        let service = authorization
            .and_then(signing_service)
            .unwrap_or_else(|| "unknown".to_string());
        if let Some(target) = target {
            let operation = target.rsplit('.').next().unwrap_or(target).to_string();
            let resource = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("TableName")
                        .and_then(|t| t.as_str().map(String::from))
                });
            return AwsCall {
                service,
                operation,
                resource,
            };
        }
        let form = form_fields(body);
        if let Some(action) = field(&form, "Action") {
            return AwsCall {
                service,
                operation: action.to_string(),
                resource: field(&form, "RoleName").map(String::from),
            };
        }
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(percent_decode)
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let (operation, resource) = match service.as_str() {
            "lambda" => lambda_operation(method, &segments),
            "apigateway" => (apigateway_operation(method, &segments), None),
            _ => (format!("{method} {path}"), None),
        };
        AwsCall {
            service,
            operation,
            resource,
        }
    }

    /// Whether the call changes anything (anything but Get/List/Describe/Scan/Query).
    pub fn is_mutating(&self) -> bool {
        !["Get", "List", "Describe", "Scan", "Query", "BatchGet"]
            .iter()
            .any(|p| self.operation.starts_with(p))
    }
}

/// `AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/lambda/aws4_request, ...` -> `lambda`.
fn signing_service(authorization: &str) -> Option<String> {
    let scope = authorization.split("Credential=").nth(1)?;
    let scope = scope.split([',', ' ']).next()?;
    scope.split('/').nth(3).map(str::to_string)
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Vec::new();
    };
    if text.starts_with('{') || text.starts_with('<') {
        return Vec::new();
    }
    text.split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((percent_decode(k), percent_decode(&v.replace('+', " "))))
        })
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A function named by name or ARN (`arn:aws:lambda:R:A:function:NAME[:QUALIFIER]`).
fn function_name(segment: &str) -> String {
    match segment.split_once(":function:") {
        Some((_, rest)) => rest.split(':').next().unwrap_or(rest).to_string(),
        None => segment.to_string(),
    }
}

fn lambda_operation(method: &str, s: &[&str]) -> (String, Option<String>) {
    let name = s.get(2).map(|n| function_name(n));
    let op = match (method, s) {
        ("POST", [_, "functions"]) => "CreateFunction",
        ("GET", [_, "functions"]) => "ListFunctions",
        ("GET", [_, "functions", _]) => "GetFunction",
        ("DELETE", [_, "functions", _]) => "DeleteFunction",
        ("GET", [_, "functions", _, "configuration"]) => "GetFunctionConfiguration",
        ("PUT", [_, "functions", _, "configuration"]) => "UpdateFunctionConfiguration",
        ("PUT", [_, "functions", _, "code"]) => "UpdateFunctionCode",
        ("GET", [_, "functions", _, "policy"]) => "GetPolicy",
        ("POST", [_, "functions", _, "policy"]) => "AddPermission",
        ("DELETE", [_, "functions", _, "policy", _]) => "RemovePermission",
        ("POST", [_, "functions", _, "invocations"]) => "Invoke",
        ("GET", [_, "functions", _, "url"]) => "GetFunctionUrlConfig",
        ("DELETE", [_, "functions", _, "url"]) => "DeleteFunctionUrlConfig",
        ("POST", [_, "tags", _]) => "TagResource",
        ("GET", [_, "tags", _]) => "ListTags",
        ("DELETE", [_, "tags", _]) => "UntagResource",
        _ => return (format!("{method} /{}", s.join("/")), None),
    };
    let name = if s.get(1) == Some(&"functions") {
        name
    } else {
        None
    };
    (op.to_string(), name)
}

fn singular(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "routes" => "Route",
        "integrations" => "Integration",
        "authorizers" => "Authorizer",
        "stages" => "Stage",
        "deployments" => "Deployment",
        "models" => "Model",
        _ => return None,
    })
}

fn apigateway_operation(method: &str, s: &[&str]) -> String {
    let verb = |get: &str, list: bool| -> String {
        match method {
            "GET" if list => format!("Get{get}s"),
            "GET" => format!("Get{get}"),
            "POST" => format!("Create{get}"),
            "PATCH" => format!("Update{get}"),
            "DELETE" => format!("Delete{get}"),
            other => format!("{other} {get}"),
        }
    };
    match s {
        ["v2", "apis"] => verb("Api", true),
        ["v2", "apis", _] => verb("Api", false),
        ["v2", "apis", _, kind] => match singular(kind) {
            Some(k) => verb(k, true),
            None => format!("{method} /{}", s.join("/")),
        },
        ["v2", "apis", _, kind, _, ..] => match singular(kind) {
            Some(k) => verb(k, false),
            None => format!("{method} /{}", s.join("/")),
        },
        ["v2", "tags", _] => match method {
            "GET" => "GetTags".to_string(),
            "POST" => "TagResource".to_string(),
            "DELETE" => "UntagResource".to_string(),
            other => format!("{other} tags"),
        },
        _ => format!("{method} /{}", s.join("/")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(service: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=testing/20261129/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=ab")
    }

    #[test]
    fn json_protocols_are_named_by_their_target() {
        let call = AwsCall::identify(
            "POST",
            "/",
            Some(&auth("dynamodb")),
            Some("DynamoDB_20120810.DescribeTable"),
            br#"{"TableName":"t1"}"#,
        );
        assert_eq!(call.service, "dynamodb");
        assert_eq!(call.operation, "DescribeTable");
        assert_eq!(call.resource.as_deref(), Some("t1"));
        assert!(!call.is_mutating());
    }

    #[test]
    fn query_protocols_are_named_by_their_action() {
        let call = AwsCall::identify(
            "POST",
            "/",
            Some(&auth("iam")),
            None,
            b"Action=CreateRole&Version=2010-05-08&RoleName=wishctl-x-fn&Path=%2Fwishctl%2F",
        );
        assert_eq!(call.service, "iam");
        assert_eq!(call.operation, "CreateRole");
        assert_eq!(call.resource.as_deref(), Some("wishctl-x-fn"));
        assert!(call.is_mutating());
    }

    #[test]
    fn rest_protocols_are_named_by_method_and_path() {
        let lambda =
            |method, path| AwsCall::identify(method, path, Some(&auth("lambda")), None, b"");
        assert_eq!(
            lambda("POST", "/2015-03-31/functions").operation,
            "CreateFunction"
        );
        let get = lambda("GET", "/2015-03-31/functions/wishctl-x-api");
        assert_eq!(get.operation, "GetFunction");
        assert_eq!(get.resource.as_deref(), Some("wishctl-x-api"));
        let code = lambda(
            "PUT",
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A1%3Afunction%3Af1/code",
        );
        assert_eq!(code.operation, "UpdateFunctionCode");
        assert_eq!(code.resource.as_deref(), Some("f1"));
        // A read, not a change (`up` checks for a function URL every time).
        let url = lambda("GET", "/2021-10-31/functions/wishctl-x-api/url");
        assert_eq!(url.operation, "GetFunctionUrlConfig");
        assert!(!url.is_mutating());
        let apigw = |method, path| {
            AwsCall::identify(method, path, Some(&auth("apigateway")), None, b"").operation
        };
        assert_eq!(apigw("GET", "/v2/apis"), "GetApis");
        assert_eq!(apigw("POST", "/v2/apis/a1/routes"), "CreateRoute");
        assert_eq!(
            apigw("PATCH", "/v2/apis/a1/authorizers/z9"),
            "UpdateAuthorizer"
        );
        assert_eq!(apigw("GET", "/v2/apis/a1/stages/%24default"), "GetStage");
        assert_eq!(apigw("DELETE", "/v2/apis/a1"), "DeleteApi");
    }
}

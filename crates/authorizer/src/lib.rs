//! API Gateway's HTTP API JWT authorizer rules: OIDC discovery, JWKS cache, claim and scope checks.

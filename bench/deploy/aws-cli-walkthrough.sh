#!/usr/bin/env bash
# The walkthrough's console steps as a user would script them with the aws CLI, one call after
# the other: what `wishctl up` / `wishctl down` replace. Used by the deploy benchmark for
# comparison (same endpoint, same resources, same configuration).
#
#   bench/deploy/aws-cli-walkthrough.sh up            STACK ZIP ISSUER AUDIENCE
#   bench/deploy/aws-cli-walkthrough.sh update-code   STACK ZIP
#   bench/deploy/aws-cli-walkthrough.sh update-memory STACK MB
#   bench/deploy/aws-cli-walkthrough.sh set-audiences STACK ISSUER AUDIENCE[,AUDIENCE...]
#   bench/deploy/aws-cli-walkthrough.sh down          STACK
#
# The endpoint comes from AWS_ENDPOINT_URL (moto, or the latency proxy in front of it). Prints
# `calls N` (aws CLI invocations, one API call each, plus waiter polls) and `mutating N` on
# stderr at the end.
# Not idempotent, like most such scripts: running `up` twice fails at the first create.
# Against real AWS (or the timing model), `create-function` right after `create-role` fails
# while IAM propagates the role; the walkthrough's steps have no answer to that, so this script
# retries it every 2 s (at most 30 times), as a user would end up doing. The waits are the aws
# CLI's own waiters (`wait table-exists` polls every 20 s, `wait function-active-v2` and
# `function-updated-v2` every 5 s).
set -euo pipefail

AWS="${AWS_CLI:-aws}"
export AWS_DEFAULT_REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
# One line per aws invocation; a file, since $(call ...) runs in a subshell.
COUNT_FILE="$(mktemp)"
call() {
    echo "$2" >>"$COUNT_FILE"
    "$AWS" "$@"
}
finish() {
    echo "calls $(wc -l <"$COUNT_FILE")" >&2
    echo "mutating $(grep -cvE '^(get-|list-|describe-|wait$)' "$COUNT_FILE" || true)" >&2
    rm -f "$COUNT_FILE"
}
trap finish EXIT

command="$1"
stack="$2"
prefix="wishctl-$stack"
table="$prefix-items"
role="$prefix-fn"
policy="$prefix-access"
function="$prefix-api"
log_group="/aws/lambda/$function"
api="$prefix"
region="$AWS_DEFAULT_REGION"

case "$command" in
up)
    zip="$3"
    issuer="$4"
    audience="$5"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"; finish' EXIT
    account="$(call sts get-caller-identity --query Account --output text)"

    call dynamodb create-table --table-name "$table" --billing-mode PAY_PER_REQUEST \
        --attribute-definitions AttributeName=id,AttributeType=S \
        --key-schema AttributeName=id,KeyType=HASH \
        --tags "Key=wishctl:stack,Value=$stack" >/dev/null
    call dynamodb wait table-exists --table-name "$table"

    call logs create-log-group --log-group-name "$log_group" --tags "wishctl:stack=$stack"
    call logs put-retention-policy --log-group-name "$log_group" --retention-in-days 14

    cat >"$work/trust.json" <<JSON
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}
JSON
    cat >"$work/policy.json" <<JSON
{"Version":"2012-10-17","Statement":[
 {"Sid":"WishListTable","Effect":"Allow","Action":["dynamodb:PutItem","dynamodb:Scan"],"Resource":"arn:aws:dynamodb:$region:$account:table/$table"},
 {"Sid":"OwnLogGroup","Effect":"Allow","Action":["logs:CreateLogStream","logs:PutLogEvents"],"Resource":"arn:aws:logs:$region:$account:log-group:$log_group:*"}]}
JSON
    role_arn="$(call iam create-role --role-name "$role" --path /wishctl/ \
        --assume-role-policy-document "file://$work/trust.json" \
        --tags "Key=wishctl:stack,Value=$stack" --query Role.Arn --output text)"
    call iam put-role-policy --role-name "$role" --policy-name "$policy" \
        --policy-document "file://$work/policy.json"

    function_arn=""
    for _ in $(seq 1 30); do
        if function_arn="$(call lambda create-function --function-name "$function" \
            --runtime provided.al2023 --handler bootstrap --architectures arm64 \
            --memory-size 128 --timeout 10 --role "$role_arn" --zip-file "fileb://$zip" \
            --environment "Variables={TABLE_NAME=$table}" --tags "wishctl:stack=$stack" \
            --query FunctionArn --output text 2>"$work/create-function.err")"; then
            break
        fi
        grep -q "cannot be assumed by Lambda" "$work/create-function.err" || {
            cat "$work/create-function.err" >&2
            exit 1
        }
        sleep 2
    done
    [ -n "$function_arn" ] || { echo "the role never became assumable" >&2; exit 1; }
    call lambda wait function-active-v2 --function-name "$function"

    api_id="$(call apigatewayv2 create-api --name "$api" --protocol-type HTTP \
        --tags "wishctl:stack=$stack" --query ApiId --output text)"
    authorizer_id="$(call apigatewayv2 create-authorizer --api-id "$api_id" --name "$prefix-jwt" \
        --authorizer-type JWT --identity-source '$request.header.Authorization' \
        --jwt-configuration "Audience=$audience,Issuer=$issuer" \
        --query AuthorizerId --output text)"
    integration_id="$(call apigatewayv2 create-integration --api-id "$api_id" \
        --integration-type AWS_PROXY --integration-method POST \
        --integration-uri "$function_arn" --payload-format-version 2.0 \
        --query IntegrationId --output text)"
    call apigatewayv2 create-route --api-id "$api_id" --route-key 'GET /wish-list-service' \
        --target "integrations/$integration_id" >/dev/null
    call apigatewayv2 create-route --api-id "$api_id" --route-key 'POST /wish-list-service' \
        --authorization-type JWT --authorizer-id "$authorizer_id" \
        --target "integrations/$integration_id" >/dev/null
    call apigatewayv2 create-stage --api-id "$api_id" --stage-name '$default' --auto-deploy >/dev/null
    call lambda add-permission --function-name "$function" --statement-id "$prefix-apigw" \
        --action lambda:InvokeFunction --principal apigateway.amazonaws.com \
        --source-arn "arn:aws:execute-api:$region:$account:$api_id/*/*/wish-list-service" >/dev/null
    echo "https://$api_id.execute-api.$region.amazonaws.com/wish-list-service"
    ;;
update-code)
    zip="$3"
    call lambda update-function-code --function-name "$function" --zip-file "fileb://$zip" >/dev/null
    call lambda wait function-updated-v2 --function-name "$function"
    ;;
update-memory)
    call lambda update-function-configuration --function-name "$function" --memory-size "$3" >/dev/null
    call lambda wait function-updated-v2 --function-name "$function"
    ;;
set-audiences)
    issuer="$3"
    audiences="$4"
    api_id="$(call apigatewayv2 get-apis --query "Items[?Name=='$api'].ApiId | [0]" --output text)"
    authorizer_id="$(call apigatewayv2 get-routes --api-id "$api_id" \
        --query "Items[?RouteKey=='POST /wish-list-service'].AuthorizerId | [0]" --output text)"
    call apigatewayv2 update-authorizer --api-id "$api_id" --authorizer-id "$authorizer_id" \
        --jwt-configuration "Audience=$audiences,Issuer=$issuer" >/dev/null
    ;;
down)
    for api_id in $(call apigatewayv2 get-apis --query "Items[?Name=='$api'].ApiId" --output text); do
        call apigatewayv2 delete-api --api-id "$api_id"
    done
    call lambda delete-function --function-name "$function" >/dev/null
    call logs delete-log-group --log-group-name "$log_group"
    call iam delete-role-policy --role-name "$role" --policy-name "$policy"
    call iam delete-role --role-name "$role"
    call dynamodb delete-table --table-name "$table" >/dev/null
    ;;
*)
    echo "usage: $0 up STACK ZIP ISSUER AUDIENCE | update-code STACK ZIP | update-memory STACK MB | set-audiences STACK ISSUER AUDIENCES | down STACK" >&2
    exit 2
    ;;
esac

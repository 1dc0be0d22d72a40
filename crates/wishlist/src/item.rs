//! [`Item`] as stored and listed, and [`NewItem`]: the validated body of a `POST`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
pub const MAX_URL_CHARS: usize = 2_048;

/// A wish-list item as stored and as returned by `GET`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// RFC 3339. Absent only on items written by something other than this API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// The `sub` claim of the token that created the item; never taken from the request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// The body of a `POST`, validated: `{name, description?, url?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    pub name: String,
    pub description: Option<String>,
    pub url: Option<String>,
}

/// Why a `POST` body was refused. The message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    #[error("request body is required: send a JSON object with at least \"name\"")]
    MissingBody,
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("request body is not valid UTF-8")]
    NotUtf8,
    #[error("{0} is required")]
    Missing(&'static str),
    #[error("{field} must be a string, not {found}")]
    NotAString {
        field: &'static str,
        found: &'static str,
    },
    #[error("{0} must not be empty")]
    Empty(&'static str),
    #[error("{field} must be at most {max} characters, got {len}")]
    TooLong {
        field: &'static str,
        max: usize,
        len: usize,
    },
    #[error("url must be an absolute http or https URL")]
    InvalidUrl,
    #[error("unknown field {0:?}: expected name, description, url")]
    UnknownField(String),
}

impl NewItem {
    /// Parses and validates a `POST` body.
    pub fn from_json(body: &[u8]) -> Result<Self, ValidationError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ValidationError::MissingBody);
        }
        let text = std::str::from_utf8(body).map_err(|_| ValidationError::NotUtf8)?;
        let value: Value =
            serde_json::from_str(text).map_err(|e| ValidationError::InvalidJson(e.to_string()))?;
        let object = match value {
            Value::Object(object) => object,
            other => return Err(ValidationError::NotAnObject(json_type(&other))),
        };
        Self::from_object(object)
    }

    fn from_object(mut object: Map<String, Value>) -> Result<Self, ValidationError> {
        if let Some(unknown) = object
            .keys()
            .find(|k| !matches!(k.as_str(), "name" | "description" | "url"))
        {
            return Err(ValidationError::UnknownField(unknown.clone()));
        }
        let name = optional_string(&mut object, "name", MAX_NAME_CHARS)?
            .ok_or(ValidationError::Missing("name"))?;
        if name.trim().is_empty() {
            return Err(ValidationError::Empty("name"));
        }
        let description = optional_string(&mut object, "description", MAX_DESCRIPTION_CHARS)?;
        let url = optional_string(&mut object, "url", MAX_URL_CHARS)?;
        if let Some(url) = &url {
            validate_url(url)?;
        }
        Ok(NewItem {
            name,
            description,
            url,
        })
    }

    /// The stored item: this item with its id, creation time and creator.
    pub fn into_item(self, id: String, created_at: String, created_by: Option<String>) -> Item {
        Item {
            id,
            name: self.name,
            description: self.description,
            url: self.url,
            created_at: Some(created_at),
            created_by,
        }
    }
}

/// A string field that may be absent or `null`; present values must be strings within `max`
/// characters (Unicode scalar values, as a user counts them).
fn optional_string(
    object: &mut Map<String, Value>,
    field: &'static str,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    match object.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let len = s.chars().count();
            if len > max {
                Err(ValidationError::TooLong { field, max, len })
            } else {
                Ok(Some(s))
            }
        }
        Some(other) => Err(ValidationError::NotAString {
            field,
            found: json_type(&other),
        }),
    }
}

fn validate_url(raw: &str) -> Result<(), ValidationError> {
    let url = url::Url::parse(raw).map_err(|_| ValidationError::InvalidUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::InvalidUrl);
    }
    Ok(())
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<NewItem, ValidationError> {
        NewItem::from_json(body.as_bytes())
    }

    #[test]
    fn accepts_the_walkthrough_body() {
        let item = parse(
            r#"{"name": "Test Item", "description": "Test Description", "url": "https://www.amazon.com"}"#,
        )
        .unwrap();
        assert_eq!(item.name, "Test Item");
        assert_eq!(item.description.as_deref(), Some("Test Description"));
        assert_eq!(item.url.as_deref(), Some("https://www.amazon.com"));
    }

    #[test]
    fn description_and_url_are_optional_and_null_means_absent() {
        let item = parse(r#"{"name":"x","description":null}"#).unwrap();
        assert_eq!(item.description, None);
        assert_eq!(item.url, None);
    }

    #[test]
    fn empty_or_blank_body_is_missing() {
        assert_eq!(parse(""), Err(ValidationError::MissingBody));
        assert_eq!(parse("  \n"), Err(ValidationError::MissingBody));
    }

    #[test]
    fn invalid_json_is_refused() {
        assert!(matches!(
            parse("{name:"),
            Err(ValidationError::InvalidJson(_))
        ));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        assert_eq!(
            NewItem::from_json(&[b'"', 0xff, b'"']),
            Err(ValidationError::NotUtf8)
        );
    }

    #[test]
    fn body_must_be_an_object() {
        assert_eq!(parse("[]"), Err(ValidationError::NotAnObject("an array")));
        assert_eq!(
            parse("\"x\""),
            Err(ValidationError::NotAnObject("a string"))
        );
        assert_eq!(parse("null"), Err(ValidationError::NotAnObject("null")));
    }

    #[test]
    fn name_is_required_non_empty_string_within_200_chars() {
        assert_eq!(parse("{}"), Err(ValidationError::Missing("name")));
        assert_eq!(
            parse(r#"{"name":null}"#),
            Err(ValidationError::Missing("name"))
        );
        assert_eq!(parse(r#"{"name":""}"#), Err(ValidationError::Empty("name")));
        assert_eq!(
            parse(r#"{"name":"   "}"#),
            Err(ValidationError::Empty("name"))
        );
        assert_eq!(
            parse(r#"{"name":42}"#),
            Err(ValidationError::NotAString {
                field: "name",
                found: "a number"
            })
        );
        let ok = format!(r#"{{"name":"{}"}}"#, "é".repeat(200));
        assert!(parse(&ok).is_ok(), "200 characters (400 bytes) is allowed");
        let long = format!(r#"{{"name":"{}"}}"#, "a".repeat(201));
        assert_eq!(
            parse(&long),
            Err(ValidationError::TooLong {
                field: "name",
                max: 200,
                len: 201
            })
        );
    }

    #[test]
    fn description_is_a_string_within_2000_chars() {
        let long = format!(r#"{{"name":"x","description":"{}"}}"#, "d".repeat(2001));
        assert!(matches!(
            parse(&long),
            Err(ValidationError::TooLong {
                field: "description",
                ..
            })
        ));
        assert!(matches!(
            parse(r#"{"name":"x","description":["a"]}"#),
            Err(ValidationError::NotAString {
                field: "description",
                found: "an array"
            })
        ));
    }

    #[test]
    fn url_must_be_absolute_http_or_https_within_2048_chars() {
        for bad in [
            "www.amazon.com",
            "/relative",
            "ftp://example.com/x",
            "javascript:alert(1)",
            "mailto:a@b.c",
            "http://",
        ] {
            let body = format!(r#"{{"name":"x","url":"{bad}"}}"#);
            assert_eq!(parse(&body), Err(ValidationError::InvalidUrl), "{bad}");
        }
        let long = format!(
            r#"{{"name":"x","url":"https://e.com/{}"}}"#,
            "p".repeat(2048)
        );
        assert!(matches!(
            parse(&long),
            Err(ValidationError::TooLong { field: "url", .. })
        ));
        assert!(matches!(
            parse(r#"{"name":"x","url":true}"#),
            Err(ValidationError::NotAString { field: "url", .. })
        ));
        assert!(parse(r#"{"name":"x","url":"http://localhost:8080/a?b=c"}"#).is_ok());
    }

    #[test]
    fn unknown_fields_such_as_created_by_are_refused() {
        assert_eq!(
            parse(r#"{"name":"x","createdBy":"mallory"}"#),
            Err(ValidationError::UnknownField("createdBy".into()))
        );
        assert_eq!(
            parse(r#"{"name":"x","id":"fixed"}"#),
            Err(ValidationError::UnknownField("id".into()))
        );
    }

    #[test]
    fn messages_name_the_field_and_the_rule() {
        let err = parse(r#"{"name":"x","url":"nope"}"#).unwrap_err();
        assert_eq!(err.to_string(), "url must be an absolute http or https URL");
        let err = parse(&format!(r#"{{"name":"{}"}}"#, "a".repeat(201))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "name must be at most 200 characters, got 201"
        );
    }
}

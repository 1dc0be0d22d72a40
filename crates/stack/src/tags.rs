//! The tags every resource of a stack carries, and how ownership is read back from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{SpecError, StackName};

/// The tag key that marks a resource as owned by a stack; its value is the stack name.
/// Resources with the expected name but without this tag are never modified or deleted.
pub const TAG_STACK: &str = "wishctl:stack";

/// The tags every resource of a stack carries: `wishctl:stack=NAME` plus the user's `--tag`s.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags(BTreeMap<String, String>);

impl Tags {
    /// Builds the tag set of a stack from the user's `KEY=VALUE` tags.
    pub fn for_stack<'a>(
        stack: &StackName,
        user_tags: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, SpecError> {
        let mut tags = BTreeMap::new();
        for tag in user_tags {
            let (key, value) = parse_tag(tag)?;
            tags.insert(key, value);
        }
        tags.insert(TAG_STACK.to_string(), stack.to_string());
        if tags.len() > 50 {
            return Err(SpecError::Tag {
                tag: format!("{} tags", tags.len()),
                rule: "AWS accepts at most 50 tags per resource (one is wishctl:stack)",
            });
        }
        Ok(Tags(tags))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn to_hash_map(&self) -> std::collections::HashMap<String, String> {
        self.0.clone().into_iter().collect()
    }

    /// Whether `found` (a resource's tags as read back from AWS) marks it as owned by `stack`.
    pub fn owned_by<'a>(
        found: impl IntoIterator<Item = (&'a str, &'a str)>,
        stack: &StackName,
    ) -> bool {
        found
            .into_iter()
            .any(|(k, v)| k == TAG_STACK && v == stack.as_str())
    }

    /// The tags in `self` that are missing from `found` or have a different value there.
    pub fn missing_from<'a>(
        &self,
        found: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> BTreeMap<String, String> {
        let found: BTreeMap<&str, &str> = found.into_iter().collect();
        self.0
            .iter()
            .filter(|(k, v)| found.get(k.as_str()) != Some(&v.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

fn parse_tag(tag: &str) -> Result<(String, String), SpecError> {
    let err = |rule| SpecError::Tag {
        tag: tag.to_string(),
        rule,
    };
    let (key, value) = tag
        .split_once('=')
        .ok_or_else(|| err("expected KEY=VALUE"))?;
    if key.is_empty() || key.chars().count() > 128 {
        return Err(err("the key must be 1 to 128 characters"));
    }
    if value.chars().count() > 256 {
        return Err(err("the value must be at most 256 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(err("keys starting with 'aws:' are reserved by AWS"));
    }
    if key == TAG_STACK {
        return Err(err("wishctl:stack is set by wishctl from --stack"));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    if !key.chars().all(allowed) || !value.chars().all(allowed) {
        return Err(err(
            "keys and values may hold letters, digits, spaces and _ . : / = + - @",
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> StackName {
        "ci-1".parse().unwrap()
    }

    #[test]
    fn every_stack_carries_its_ownership_tag() {
        let tags = Tags::for_stack(&stack(), ["team=web", "cost-center=42"]).unwrap();
        assert_eq!(tags.get(TAG_STACK), Some("ci-1"));
        assert_eq!(tags.get("team"), Some("web"));
        assert_eq!(tags.as_map().len(), 3);
    }

    #[test]
    fn rejects_malformed_and_reserved_tags() {
        for bad in [
            "novalue",
            "=v",
            "aws:foo=1",
            "wishctl:stack=other",
            "a=b\u{7}",
        ] {
            assert!(Tags::for_stack(&stack(), [bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ownership_needs_the_exact_stack_value() {
        let s = stack();
        assert!(Tags::owned_by([(TAG_STACK, "ci-1")], &s));
        assert!(!Tags::owned_by([(TAG_STACK, "ci-10")], &s));
        assert!(!Tags::owned_by([("team", "ci-1")], &s));
    }

    #[test]
    fn missing_from_lists_absent_and_changed_tags() {
        let tags = Tags::for_stack(&stack(), ["team=web"]).unwrap();
        let missing = tags.missing_from([(TAG_STACK, "ci-1"), ("team", "ops")]);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing.get("team").map(String::as_str), Some("web"));
    }
}

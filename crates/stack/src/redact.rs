//! URLs a user typed (an issuer, an endpoint), as a message may show them: the user-info part
//! (`user:password@`) masked, whether or not the text is a valid URL, so that a password pasted
//! into a flag never reaches a terminal or a CI log through an error about that flag.
//!
//! Every message that echoes such input goes through [`url_for_message`]; nothing here decides
//! whether the input is acceptable.

/// `input` with its user info masked: `user:***@` when it holds a password, `***@` when it holds
/// only a user name (often a token by itself). A URL that parses cleanly is masked exactly and
/// otherwise left byte for byte; text that does not (spaces, control characters, a bad port, no
/// scheme) is masked up to its last `@`, which may hide more than the user info but never less.
pub fn url_for_message(input: &str) -> String {
    let start = authority_start(input);
    let rest = &input[start..];
    let clean = !input.chars().any(|c| c.is_whitespace() || c.is_control());
    let parsed = url::Url::parse(input)
        .ok()
        .filter(|url| clean && url.host().is_some());
    let at = match parsed {
        Some(url) if url.username().is_empty() && url.password().is_none() => None,
        // The parser ends the authority at the first of these; the last `@` before it ends the
        // user info.
        Some(_) => {
            let end = rest.find(['/', '?', '#', '\\']).unwrap_or(rest.len());
            rest[..end].rfind('@')
        }
        None => rest.rfind('@'),
    };
    let Some(at) = at else {
        return input.to_string();
    };
    let user_info = &rest[..at];
    let masked = match user_info.split_once(':') {
        Some((user, _password)) => format!("{user}:***@"),
        None => "***@".to_string(),
    };
    format!("{}{masked}{}", &input[..start], &rest[at + 1..])
}

/// Whether `input` holds something [`url_for_message`] masks: a user name or password.
pub fn url_has_user_info(input: &str) -> bool {
    url_for_message(input) != input
}

/// Where the authority begins: after `scheme://`, after a leading `//`, else at the start (the
/// whole text is suspect then).
fn authority_start(input: &str) -> usize {
    match input.find("://") {
        Some(i)
            if i > 0
                && input[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            i + 3
        }
        _ if input.starts_with("//") => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_user_info_are_shown_byte_for_byte() {
        for url in [
            "https://tenant.auth0.com/",
            "https://tenant.auth0.com",
            "http://127.0.0.1:3000/@not-user-info",
            "https://x.example.com/?q=a@b",
            "not a url",
            "",
        ] {
            assert_eq!(url_for_message(url), url);
            assert!(!url_has_user_info(url), "{url}");
        }
    }

    #[test]
    fn user_info_is_masked_in_urls_that_parse() {
        assert_eq!(
            url_for_message("https://user:hunter2@x.example.com/"),
            "https://user:***@x.example.com/"
        );
        assert_eq!(
            url_for_message("https://ghp_token@x.example.com/a@b"),
            "https://***@x.example.com/a@b"
        );
        assert_eq!(
            url_for_message("https://user:pa@ss:word@x.example.com/"),
            "https://user:***@x.example.com/"
        );
        assert!(url_has_user_info("https://user:hunter2@x.example.com/"));
    }

    #[test]
    fn user_info_is_masked_in_text_that_is_not_a_clean_url() {
        for (input, shown) in [
            (
                "https://user:hunter2@x.example.com/\t",
                "https://user:***@x.example.com/\t",
            ),
            (
                "https://user:hunter2@x.example.com/ ",
                "https://user:***@x.example.com/ ",
            ),
            (
                "https://user:hunter2@x.exa mple.com/",
                "https://user:***@x.exa mple.com/",
            ),
            (
                "https://user:hunter2@x.example.com:99999/",
                "https://user:***@x.example.com:99999/",
            ),
            (
                "https://user:hun/ter2@x.example.com/",
                "https://user:***@x.example.com/",
            ),
            ("user:hunter2@x.example.com", "user:***@x.example.com"),
            ("//user:hunter2@x.example.com/", "//user:***@x.example.com/"),
            (
                "https:user:hunter2@x.example.com/",
                "https:***@x.example.com/",
            ),
        ] {
            let masked = url_for_message(input);
            assert_eq!(masked, shown, "{input:?}");
            assert!(!masked.contains("hunter2") && !masked.contains("ter2"));
        }
    }
}

//! How an error reads in a message: the error and each of its causes by their `Display`, as
//! `anyhow`'s `{:#}` writes them, for the library crates' errors that wrap foreign ones (the AWS
//! SDK's, reqwest's) whose `Debug` form is an internal dump no user should read.

/// `err` and each of its causes, by their `Display`, joined by `: `; a cause that is empty or
/// whose text the message already ends with is left out.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !line.is_empty() && !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_joined_and_repeats_and_empty_ones_left_out() {
        let err = Layer(
            "dispatch failure: io",
            Some(Box::new(Layer(
                "io",
                Some(Box::new(Layer(
                    "",
                    Some(Box::new(Layer("connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_chain(&err),
            "dispatch failure: io: connection refused"
        );
    }
}

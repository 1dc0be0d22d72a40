//! Builds `bootstrap` and packages it as a reproducible Lambda zip.

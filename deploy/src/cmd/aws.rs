//! AWS connection flags shared by every command that talks to AWS.

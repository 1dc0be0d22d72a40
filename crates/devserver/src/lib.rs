//! The wish-list HTTP API on one machine: route table, JWT authorizer, payload 2.0 events, the handler logic.

//! The wish-list table's key schema, defined once: `up` creates the table with it, the dev
//! store's set-up creates local tables with it, and the handler's items are keyed by it.

/// The table's one key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableKey {
    /// The attribute name of the partition (hash) key.
    pub name: &'static str,
    /// Its DynamoDB scalar type (`S`: string).
    pub attribute_type: &'static str,
}

/// Partition key `id` (S), no sort key: every item has a unique id.
pub const TABLE_KEY: TableKey = TableKey {
    name: "id",
    attribute_type: "S",
};

impl TableKey {
    /// How `plan` shows a key schema: `id (S) HASH`.
    pub fn describe(&self) -> String {
        format!("{} ({}) HASH", self.name, self.attribute_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_a_string_id() {
        assert_eq!(TABLE_KEY.describe(), "id (S) HASH");
    }
}

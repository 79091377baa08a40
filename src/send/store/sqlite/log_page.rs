//! A [`LogQuery`] as one SQLite `SELECT`: keyset paging on `hookrelay_deliveries.seq` (never
//! `OFFSET`), every filter on the delivery row's own columns so that each common shape (no
//! filter; an endpoint; an owner; a status; an event type) reads one index in `seq` order and
//! stops after the page.

use super::super::rows::ms;
use super::super::{LogOrder, LogQuery, ResponseClass, StoreError, TypePattern};
use crate::send::{EndpointId, MessageId, Owner};

/// The delivery columns `rows::delivery` decodes, and `seq` for the cursor.
pub(super) const DELIVERY_COLUMNS: &str = "d.seq, d.id, d.status, d.dead_reason, d.attempts, \
     d.last_status, d.due_at, d.lease_until, d.endpoint_id, d.owner, d.kind, d.finished_at, \
     d.batch_id, d.event_type, d.created_at, m.id AS message_id, m.event_id";

/// One value bound to a numbered parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
}

/// The statement for one page: `sql` with `?1`… bound to `args` in order. It fetches one row
/// more than the page holds, to tell whether another page follows.
#[derive(Debug, Clone)]
pub(super) struct LogSelect {
    pub(super) sql: String,
    pub(super) args: Vec<Arg>,
}

/// The `WHERE` clause being built: conditions joined by `AND`, their values numbered.
#[derive(Default)]
struct Conditions {
    parts: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// The next parameter, holding `arg`.
    fn param(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("?{}", self.args.len())
    }

    fn text(&mut self, text: &str) -> String {
        self.param(Arg::Text(text.to_owned()))
    }

    /// `column = ?` for one value, `column IN (?, …)` for several, nothing for none.
    fn one_of<'a>(&mut self, column: &str, values: impl IntoIterator<Item = &'a str>) {
        let mut values: Vec<&str> = values.into_iter().collect();
        values.sort_unstable();
        values.dedup();
        match values.as_slice() {
            [] => {}
            [one] => {
                let p = self.text(one);
                self.parts.push(format!("{column} = {p}"));
            }
            many => {
                let ps: Vec<String> = many.iter().map(|v| self.text(v)).collect();
                self.parts.push(format!("{column} IN ({})", ps.join(", ")));
            }
        }
    }
}

/// The statement for `query`'s page. A cursor that is not a log cursor is
/// [invalid input](StoreError::is_invalid_input).
pub(super) fn log_select(query: &LogQuery) -> Result<LogSelect, StoreError> {
    let mut c = Conditions::default();
    let descending = query.order == LogOrder::NewestFirst;
    if let Some(cursor) = &query.after {
        let position = cursor.log_position().map_err(StoreError::from)?;
        let p = c.param(Arg::Int(i64::try_from(position).unwrap_or(i64::MAX)));
        let op = if descending { "<" } else { ">" };
        c.parts.push(format!("d.seq {op} {p}"));
    }
    if let Some(endpoint) = &query.endpoint {
        c.one_of("d.endpoint_id", [EndpointId::as_str(endpoint)]);
    }
    if let Some(owner) = &query.owner {
        c.one_of("d.owner", [Owner::as_str(owner)]);
    }
    if let Some(message) = &query.message {
        let p = c.text(MessageId::as_str(message));
        c.parts.push(format!(
            "d.message_seq = (SELECT seq FROM hookrelay_messages WHERE id = {p})"
        ));
    }
    match &query.event_type {
        None => {}
        Some(TypePattern::Exact(t)) => c.one_of("d.event_type", [t.as_str()]),
        Some(TypePattern::Prefix(prefix)) if prefix.is_empty() => {}
        Some(TypePattern::Prefix(prefix)) => {
            // A range, not LIKE: `%` and `_` in the prefix match literally, and the index on
            // (event_type, seq) answers it.
            let from = c.text(prefix);
            c.parts.push(format!("d.event_type >= {from}"));
            if let Some(end) = successor(prefix) {
                let end = c.text(&end);
                c.parts.push(format!("d.event_type < {end}"));
            }
        }
    }
    c.one_of("d.status", query.statuses.iter().map(|s| s.as_str()));
    c.one_of("d.kind", query.kinds.iter().map(|k| k.as_str()));
    if let Some(from) = query.created.from {
        let p = c.param(Arg::Int(ms(from)));
        c.parts.push(format!("d.created_at >= {p}"));
    }
    if let Some(until) = query.created.until {
        let p = c.param(Arg::Int(ms(until)));
        c.parts.push(format!("d.created_at < {p}"));
    }
    if !query.responses.is_empty() {
        let classes = &query.responses;
        // Every class together is no filter at all.
        if !ResponseClass::ALL
            .iter()
            .all(|class| classes.contains(class))
        {
            let any: Vec<String> = classes
                .iter()
                .map(|class| class.sql_condition("d.last_status"))
                .collect();
            c.parts.push(format!("({})", any.join(" OR ")));
        }
    }
    let limit = c.param(Arg::Int(
        i64::try_from(query.limit.get()).unwrap_or(i64::MAX) + 1,
    ));
    let filter = if c.parts.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", c.parts.join(" AND "))
    };
    let order = if descending { "DESC" } else { "ASC" };
    Ok(LogSelect {
        sql: format!(
            "SELECT {DELIVERY_COLUMNS} FROM hookrelay_deliveries d
             JOIN hookrelay_messages m ON m.seq = d.message_seq
             {filter} ORDER BY d.seq {order} LIMIT {limit}"
        ),
        args: c.args,
    })
}

/// The least text greater than every text starting with `prefix`, if there is one: the
/// prefix with its last character raised by one (code point order is SQLite's `BINARY`
/// order of UTF-8 bytes), dropping trailing characters that cannot be raised.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32);
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors_bound_every_text_with_the_prefix() {
        assert_eq!(successor("job."), Some("job/".to_owned()));
        assert_eq!(successor("a%_"), Some("a%`".to_owned()));
        assert_eq!(successor("\u{d7ff}"), Some("\u{e000}".to_owned()));
        assert_eq!(successor("x\u{10ffff}"), Some("y".to_owned()));
        assert_eq!(successor("\u{10ffff}"), None);
        assert_eq!(successor(""), None);
        for text in ["job.", "job.a", "job.\u{10ffff}\u{10ffff}", "job.~"] {
            let end = successor("job.").unwrap_or_default();
            assert!(text >= "job." && text < end.as_str(), "{text}");
        }
        for text in ["job", "job/", "jobs", "jp"] {
            let end = successor("job.").unwrap_or_default();
            assert!(!(text >= "job." && text < end.as_str()), "{text}");
        }
    }

    /// SQLite's plan for `query`'s page, one line per step.
    async fn plan(store: &super::super::SqliteStore, query: &LogQuery) -> String {
        let select = log_select(query).unwrap();
        let mut explain = sqlx::query(sqlx::AssertSqlSafe(format!(
            "EXPLAIN QUERY PLAN {}",
            select.sql
        )));
        for arg in select.args {
            explain = match arg {
                Arg::Text(text) => explain.bind(text),
                Arg::Int(n) => explain.bind(n),
            };
        }
        let steps: Vec<String> = explain
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
            .collect();
        steps.join("\n")
    }

    /// The common shapes read one index (or the table itself, unfiltered) in `seq` order:
    /// no full scan, no sort, at any depth of history, both ways, after a cursor or not.
    #[tokio::test]
    async fn common_shapes_read_an_index_in_seq_order() {
        use crate::send::store::{Cursor, StatusKind};
        let store = super::super::SqliteStore::connect("sqlite::memory:")
            .await
            .unwrap();
        let shapes: [(&str, LogQuery, &str); 6] = [
            ("no filter", LogQuery::default(), " d"),
            (
                "endpoint",
                LogQuery {
                    endpoint: Some(EndpointId::new("ep_1").unwrap()),
                    ..LogQuery::default()
                },
                "hookrelay_deliveries_endpoint",
            ),
            (
                "owner",
                LogQuery {
                    owner: Some(Owner::new("cust_1").unwrap()),
                    ..LogQuery::default()
                },
                "hookrelay_deliveries_owner",
            ),
            (
                "status",
                LogQuery {
                    statuses: vec![StatusKind::Dead],
                    ..LogQuery::default()
                },
                "hookrelay_deliveries_status",
            ),
            (
                "event type",
                LogQuery {
                    event_type: Some(TypePattern::parse("invoice.paid")),
                    ..LogQuery::default()
                },
                "hookrelay_deliveries_type",
            ),
            (
                "message",
                LogQuery {
                    message: Some(MessageId::new("msg_1").unwrap()),
                    ..LogQuery::default()
                },
                "hookrelay_deliveries_message",
            ),
        ];
        for (name, query, reads) in shapes {
            for order in [LogOrder::NewestFirst, LogOrder::OldestFirst] {
                for after in [None, Some(Cursor::log(1000))] {
                    let query = LogQuery {
                        order,
                        after: after.clone(),
                        ..query.clone()
                    };
                    let plan = plan(&store, &query).await;
                    assert!(plan.contains(reads), "{name} {order:?}: {plan}");
                    // The message's deliveries are few: sorting them is fine.
                    if name != "message" {
                        assert!(!plan.contains("TEMP B-TREE"), "{name} {order:?}: {plan}");
                    }
                    // Every step reads by key, but the unfiltered walk of the table itself
                    // (by its key, `seq`, from the cursor on).
                    for step in plan.lines().filter(|step| step.starts_with("SCAN")) {
                        assert!(
                            name == "no filter" && step == "SCAN d",
                            "{name} {order:?}: {plan}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_foreign_cursor_is_invalid_input() {
        let query = LogQuery {
            after: Some(crate::send::store::Cursor::endpoint(
                &EndpointId::new("ep_1").unwrap(),
            )),
            ..LogQuery::default()
        };
        assert!(log_select(&query).unwrap_err().is_invalid_input());
    }
}

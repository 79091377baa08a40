//! The SQL of a [`LogQuery`] for [`PostgresStore`](super::PostgresStore): keyset on `seq`
//! from the cursor, each filter on the delivery row's own columns, so a single filter reads
//! its index (`(endpoint_id, seq)`, `(owner, seq)`, `(status, seq)`, `(event_type, seq)`…)
//! from the cursor and stops after a page, however deep the history.
//!
//! Filters no `(column, seq)` index answers in `seq` order — a publish-time range, a type
//! prefix, several statuses, kinds, response classes — are *loose*. Read along `seq`, a
//! loose filter that matches few rows near the cursor (a time range far back in history)
//! would have the scan walk the whole history in between; sorted from its own index, a wide
//! one would sort most of the table. So a query with loose filters reads, in one statement:
//!
//! 1. the [`WINDOW`] rows after the cursor that pass the ordered filters, in `seq` order,
//!    checked against the loose ones (a page is usually found here);
//! 2. only if that window was full but held less than a page: every row past the window's
//!    far edge that passes all filters, by whichever index the planner costs cheapest for
//!    all of them (the range's own index for a time range), sorted by `seq`.
//!
//! So a loose filter costs at most the window plus its own matches past it, never a walk
//! through unrelated history.

use super::super::query::{LogOrder, LogQuery, TypePattern};
use super::super::{Cursor, StoreError};

/// One bound value of the statement.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Texts(Vec<String>),
    Int(i64),
}

/// Rows of the first part's window when the query has loose filters.
pub(super) const WINDOW: usize = 1000;

/// A log query as SQL: one statement (`{s}.` standing for the schema) and its parameters,
/// `$1`, `$2`… in order. It selects `seq` and the delivery columns, `limit + 1` rows at most
/// (twice that with loose filters: the caller keeps the first `limit + 1`).
#[derive(Debug, Clone)]
pub(super) struct LogSql {
    pub(super) sql: String,
    pub(super) params: Vec<Param>,
}

impl LogSql {
    /// The statement for `query`, selecting `columns` (of `d`, the delivery, and `m`, its
    /// message). A cursor that is not a log cursor is invalid input.
    pub(super) fn new(query: &LogQuery, columns: &str) -> Result<Self, StoreError> {
        let mut b = Builder::default();
        let newest_first = query.order == LogOrder::NewestFirst;
        let edge = if newest_first { "<" } else { ">" };
        if let Some(cursor) = &query.after {
            let seq = log_position(cursor)?;
            b.cond(edge, "d.seq", Param::Int(seq));
        }
        if let Some(endpoint) = &query.endpoint {
            b.cond(
                "=",
                "d.endpoint_id",
                Param::Text(endpoint.as_str().to_owned()),
            );
        }
        if let Some(owner) = &query.owner {
            b.cond("=", "d.owner", Param::Text(owner.as_str().to_owned()));
        }
        if let Some(message) = &query.message {
            let n = b.bind(Param::Text(message.as_str().to_owned()));
            b.push(format!(
                "d.message_seq = (SELECT seq FROM {{s}}.hookrelay_messages WHERE id = ${n})"
            ));
        }
        match &query.event_type {
            // PostgreSQL text cannot hold NUL: no stored type matches, and binding one fails.
            Some(TypePattern::Exact(t) | TypePattern::Prefix(t)) if t.contains('\0') => {
                b.push("false".to_owned());
            }
            Some(TypePattern::Exact(t)) => b.cond("=", "d.event_type", Param::Text(t.clone())),
            Some(TypePattern::Prefix(p)) if !p.is_empty() => {
                // A range, bytewise (the column is `COLLATE "C"`): `%` and `_` are plain text.
                b.loose = true;
                b.cond(">=", "d.event_type", Param::Text(p.clone()));
                if let Some(end) = prefix_end(p) {
                    b.cond("<", "d.event_type", Param::Text(end));
                }
                b.loose = false;
            }
            _ => {}
        }
        b.any_of("d.status", query.statuses.iter().map(|s| s.as_str()));
        // Kinds have no index: loose even with one value; so are the rest.
        b.loose = true;
        b.any_of("d.kind", query.kinds.iter().map(|k| k.as_str()));
        if let Some(from) = query.created.from {
            b.cond(
                ">=",
                "d.created_at",
                Param::Int(super::super::rows::ms(from)),
            );
        }
        if let Some(until) = query.created.until {
            b.cond(
                "<",
                "d.created_at",
                Param::Int(super::super::rows::ms(until)),
            );
        }
        if !query.responses.is_empty() {
            let classes: Vec<String> = query
                .responses
                .iter()
                .map(|c| c.sql_condition("d.last_status"))
                .collect();
            b.push(format!("({})", classes.join(" OR ")));
        }
        b.loose = false;
        // A number in the text, not a parameter: with `LIMIT $n` PostgreSQL cannot cost a
        // generic plan and plans every call afresh (longer than running it).
        let limit = query.limit.get() + 1;
        let dir = if newest_first { "DESC" } else { "ASC" };
        let ordered = where_all(&b.ordered);
        // The page is chosen on the deliveries alone, then joined to its messages.
        let page = |deliveries: &str| {
            format!(
                "SELECT d.seq, {columns}
                 FROM ({deliveries}) d
                 JOIN {{s}}.hookrelay_messages m ON m.seq = d.message_seq
                 ORDER BY d.seq {dir}"
            )
        };
        // The keys first, then their rows: the keys alone come from the filter's own
        // `(column, seq)` index without touching the table (an index-only scan), which
        // keeps the planner from walking the primary key and fetching every row to test the
        // filter, hoping to meet matches early (a `LIMIT`'s gamble, lost when the matches
        // lie far back).
        let rows = |n: &str| {
            format!(
                "SELECT d.* FROM (SELECT d.seq FROM {{s}}.hookrelay_deliveries d {ordered}
                                  ORDER BY d.seq {dir} LIMIT {n}) k
                 JOIN {{s}}.hookrelay_deliveries d ON d.seq = k.seq"
            )
        };
        if b.loose_conds.is_empty() {
            return Ok(LogSql {
                sql: page(&rows(&limit.to_string())),
                params: b.params,
            });
        }
        let loose = b.loose_conds.join(" AND ");
        let all = where_all(&[b.ordered.as_slice(), b.loose_conds.as_slice()].concat());
        let far = if newest_first { "min" } else { "max" };
        // One statement, so one snapshot: the window and the rows past it never overlap.
        // `r` is `MATERIALIZED` so that the planner picks the cheapest way to *all* matches
        // past the window, not the walk along `seq` a `LIMIT` would tempt it into; it runs
        // only when the window was full and held less than a page.
        let sql = format!(
            "WITH first AS (
                 SELECT * FROM ({window_rows}) d
                 WHERE {loose} ORDER BY d.seq {dir} LIMIT {limit}
             ),
             w AS (SELECT d.seq FROM {{s}}.hookrelay_deliveries d {ordered}
                   ORDER BY d.seq {dir} LIMIT {WINDOW}),
             f AS (SELECT {far}(seq) AS edge, count(*) AS n FROM w),
             r AS MATERIALIZED (
                 SELECT d.seq FROM {{s}}.hookrelay_deliveries d {all}
                     AND (SELECT count(*) FROM first) < {limit}
                     AND (SELECT n FROM f) = {WINDOW}
                     AND d.seq {edge} (SELECT edge FROM f)
             ),
             rest AS (
                 SELECT d.* FROM (SELECT seq FROM r ORDER BY seq {dir} LIMIT {limit}) r
                 JOIN {{s}}.hookrelay_deliveries d ON d.seq = r.seq
             )
             {}",
            page("SELECT * FROM first UNION ALL SELECT * FROM rest"),
            window_rows = rows(&WINDOW.to_string()),
        );
        Ok(LogSql {
            sql,
            params: b.params,
        })
    }
}

/// `WHERE` and the conditions (`WHERE true` if none, so more can follow with `AND`).
fn where_all(conds: &[String]) -> String {
    if conds.is_empty() {
        "WHERE true".to_owned()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    }
}

#[derive(Default)]
struct Builder {
    /// Conditions a `(column, seq)` index answers in `seq` order (and the cursor's).
    ordered: Vec<String>,
    /// The rest.
    loose_conds: Vec<String>,
    /// Whether conditions added now are loose.
    loose: bool,
    params: Vec<Param>,
}

impl Builder {
    /// Adds a parameter; its number.
    fn bind(&mut self, param: Param) -> usize {
        self.params.push(param);
        self.params.len()
    }

    fn push(&mut self, cond: String) {
        if self.loose {
            self.loose_conds.push(cond);
        } else {
            self.ordered.push(cond);
        }
    }

    fn cond(&mut self, op: &str, column: &str, param: Param) {
        let n = self.bind(param);
        self.push(format!("{column} {op} ${n}"));
    }

    /// `column` is one of `values` (none: no condition). One value is an equality, which
    /// reads the column's `(column, seq)` index in `seq` order; several an `= ANY`.
    fn any_of<'a>(&mut self, column: &str, values: impl Iterator<Item = &'a str>) {
        let mut values: Vec<String> = values.map(str::to_owned).collect();
        values.sort();
        values.dedup();
        match values.len() {
            0 => {}
            1 => self.cond("=", column, Param::Text(values.remove(0))),
            _ => {
                let n = self.bind(Param::Texts(values));
                let was = std::mem::replace(&mut self.loose, true);
                self.push(format!("{column} = ANY(${n}::text[])"));
                self.loose = was;
            }
        }
    }
}

/// The sequence number a log cursor names (one past every `int8` reads as the largest: a
/// position after every row).
fn log_position(cursor: &Cursor) -> Result<i64, StoreError> {
    let position = cursor.log_position().map_err(StoreError::from)?;
    Ok(i64::try_from(position).unwrap_or(i64::MAX))
}

/// The least text greater than every text starting with `prefix` (code point order, which
/// is `COLLATE "C"`'s UTF-8 byte order); `None` if there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = u32::from(last) + 1;
        if next == 0xD800 {
            next = 0xE000; // skip the surrogates
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::PostgresStore;
    use crate::send::store::{PageLimit, ResponseClass, StatusKind};
    use crate::send::{EndpointId, Owner};

    #[test]
    fn prefix_ends_bound_exactly_the_prefixed_texts() {
        assert_eq!(prefix_end("job."), Some("job/".to_owned()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end("x\u{D7FF}"), Some("x\u{E000}".to_owned()));
        let end = prefix_end("job_%").unwrap();
        for (text, inside) in [
            ("job_%", true),
            ("job_%x", true),
            ("job_x", false),
            ("job_&", false),
            ("jobs", false),
        ] {
            assert_eq!(text >= "job_%" && text < end.as_str(), inside, "{text}");
        }
    }

    #[test]
    fn one_filter_one_index_condition_and_no_offset() {
        let query = LogQuery {
            endpoint: Some(EndpointId::new("ep_1").unwrap()),
            owner: Some(Owner::new("o").unwrap()),
            statuses: vec![StatusKind::Dead],
            responses: vec![ResponseClass::ServerError, ResponseClass::None],
            after: Some(Cursor::log(7)),
            limit: PageLimit::new(10).unwrap(),
            ..LogQuery::default()
        };
        let sql = LogSql::new(&query, "d.id").unwrap();
        assert!(sql.sql.contains("d.seq < $1"), "{}", sql.sql);
        assert!(sql.sql.contains("d.status = $4"), "{}", sql.sql);
        assert!(!sql.sql.to_uppercase().contains("OFFSET"));
        assert_eq!(sql.params[0], Param::Int(7));
        assert!(sql.sql.contains("LIMIT 11"), "{}", sql.sql);
        let foreign = LogQuery {
            after: Some(Cursor::endpoint(&EndpointId::new("ep_1").unwrap())),
            ..LogQuery::default()
        };
        assert!(
            LogSql::new(&foreign, "d.id")
                .unwrap_err()
                .is_invalid_input()
        );
    }

    /// With `HOOKRELAY_TEST_DATABASE_URL`: on 60 000 analysed deliveries, each single
    /// ordered filter at the start, the middle and the end of the history reads its own
    /// index (index-only, backwards) and nothing sorts or scans the table.
    #[tokio::test]
    async fn each_filter_reads_its_own_index_at_every_depth() {
        let Ok(url) = std::env::var("HOOKRELAY_TEST_DATABASE_URL") else {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr().lock(),
                "SKIPPED each_filter_reads_its_own_index_at_every_depth: set \
                 HOOKRELAY_TEST_DATABASE_URL to run it"
            );
            return;
        };
        let schema = format!("hr_plans_{}", std::process::id());
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let fresh = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(fresh.as_str()))
            .execute(&pool)
            .await
            .unwrap();
        let store = PostgresStore::builder()
            .schema(&schema)
            .pool(pool.clone())
            .await
            .unwrap();
        for sql in [
            "INSERT INTO {s}.hookrelay_messages (seq, id, event_id, event_type, created_at)
             SELECT g, 'msg_' || g, 'evt_' || g, 'type.' || (g % 5), g * 1000
             FROM generate_series(1, 60000) g",
            "INSERT INTO {s}.hookrelay_deliveries
                 (seq, id, message_seq, endpoint_id, owner, event_type, created_at, form, status,
                  dead_reason)
             SELECT g, 'dlv_' || g, g, 'ep_' || (g % 16), 'own_' || (g % 4), 'type.' || (g % 5),
                    g * 1000, 0, CASE WHEN g % 50 = 0 THEN 'dead' ELSE 'delivered' END,
                    CASE WHEN g % 50 = 0 THEN 'exhausted' END
             FROM generate_series(1, 60000) g",
            "VACUUM ANALYZE {s}.hookrelay_deliveries",
            "VACUUM ANALYZE {s}.hookrelay_messages",
        ] {
            let sql = sql.replace("{s}.", &store.inner.prefix);
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&pool)
                .await
                .unwrap();
        }
        let filters: [(&str, LogQuery); 5] = [
            ("hookrelay_deliveries_pkey", LogQuery::default()),
            (
                "hookrelay_deliveries_endpoint",
                LogQuery {
                    endpoint: Some(crate::send::EndpointId::new("ep_3").unwrap()),
                    ..LogQuery::default()
                },
            ),
            (
                "hookrelay_deliveries_owner",
                LogQuery {
                    owner: Some(Owner::new("own_3").unwrap()),
                    ..LogQuery::default()
                },
            ),
            (
                "hookrelay_deliveries_status",
                LogQuery {
                    statuses: vec![StatusKind::Dead],
                    ..LogQuery::default()
                },
            ),
            (
                "hookrelay_deliveries_type",
                LogQuery {
                    event_type: Some(TypePattern::parse("type.3")),
                    ..LogQuery::default()
                },
            ),
        ];
        for (index, filter) in filters {
            for after in [None, Some(Cursor::log(30_000)), Some(Cursor::log(5_000))] {
                let query = LogQuery {
                    after: after.clone(),
                    ..filter.clone()
                };
                let LogSql { sql, params } = LogSql::new(&query, "d.id").unwrap();
                let explain = store.q(&format!("EXPLAIN (COSTS OFF) {sql}"));
                let mut q = sqlx::query_scalar::<_, String>(explain);
                for param in params {
                    q = match param {
                        Param::Text(v) => q.bind(v),
                        Param::Texts(v) => q.bind(v),
                        Param::Int(v) => q.bind(v),
                    };
                }
                let plan = q.fetch_all(&pool).await.unwrap().join("\n");
                let own = format!("Index Only Scan Backward using {index} on hookrelay_deliveries");
                assert!(plan.contains(&own), "{index} {after:?}:\n{plan}");
                assert!(!plan.contains("Seq Scan"), "{index} {after:?}:\n{plan}");
                assert!(!plan.contains("Sort"), "{index} {after:?}:\n{plan}");
            }
        }
        drop(store);
        let drop_again = format!("DROP SCHEMA \"{schema}\" CASCADE");
        sqlx::raw_sql(sqlx::AssertSqlSafe(drop_again))
            .execute(&pool)
            .await
            .unwrap();
    }
}

//! Reads behind the stats, report and freshness answers, on SQLite.

use chrono::NaiveDate;
use libsql::params;

use super::SqliteStore;
use crate::stats::{DayClicks, GroupBy, ReportLine};
use crate::store::{Apart, StoreError};

impl SqliteStore {
    /// Human clicks of `short_code` per day (and group) from `from` to `to`
    /// inclusive.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn link_clicks(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<DayClicks>, StoreError> {
        let mut rows = match group_by {
            Some(GroupBy::Breakdown(dimension)) => {
                self.conn()
                    .query(
                        "SELECT day, value, SUM(clicks) FROM link_dimensions_by_day
                         WHERE short_code = ?1 AND day >= ?2 AND day <= ?3 AND dimension = ?4
                         GROUP BY day, value ORDER BY day",
                        params![short_code, day(from), day(to), dimension.as_str()],
                    )
                    .await?
            }
            agent => {
                let group = agent.map_or("''", GroupBy::name);
                let sql = format!(
                    "SELECT day, {group}, SUM(clicks) FROM clicks_by_day
                     WHERE short_code = ?1 AND day >= ?2 AND day <= ?3
                     GROUP BY day, {group} ORDER BY day"
                );
                self.conn()
                    .query(&sql, params![short_code, day(from), day(to)])
                    .await?
            }
        };
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            found.push(DayClicks {
                day: row.get(0)?,
                group: row.get(1)?,
                clicks: row.get(2)?,
            });
        }
        Ok(found)
    }

    /// Bot and crawler clicks, or link previews, of `short_code` per day.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn apart_clicks(
        &self,
        apart: Apart,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let table = match apart {
            Apart::Bots => "bot_clicks_by_day",
            Apart::Previews => "preview_clicks_by_day",
        };
        let mut rows = self
            .conn()
            .query(
                &format!(
                    "SELECT day, clicks FROM {table}
                     WHERE short_code = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day"
                ),
                params![short_code, day(from), day(to)],
            )
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            found.push((row.get(0)?, row.get(1)?));
        }
        Ok(found)
    }

    /// The stored visitor sketches of `short_code` per day.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn visitor_sketches(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut rows = self
            .conn()
            .query(
                "SELECT day, sketch FROM link_visitors_by_day
                 WHERE short_code = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day",
                params![short_code, day(from), day(to)],
            )
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            found.push((row.get(0)?, row.get(1)?));
        }
        Ok(found)
    }

    /// A client's human clicks per short code in `month` (`YYYY-MM`), most
    /// clicked first.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn client_report(
        &self,
        client_id: i64,
        month: &str,
    ) -> Result<Vec<ReportLine>, StoreError> {
        let mut rows = self
            .conn()
            .query(
                "SELECT short_code, clicks FROM clicks_by_client_month
                 WHERE client_id = ?1 AND month = ?2 ORDER BY clicks DESC, short_code",
                params![client_id, month],
            )
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            found.push(ReportLine::clicks(row.get(0)?, row.get(1)?));
        }
        Ok(found)
    }

    /// The processing time up to which every reported partition of the
    /// logical `topic` was processed and stored (their minimum), if any was.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn as_of(&self, topic: &str) -> Result<Option<i64>, StoreError> {
        let mut rows = self
            .conn()
            .query(
                "SELECT MIN(as_of) FROM partition_progress WHERE topic = ?1",
                params![topic],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(row.get::<Option<i64>>(0)?),
            None => Ok(None),
        }
    }
}

fn day(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

//! The log's own evidence for `D`: every stream befriend of two different users, counted by
//! the two users' distance just before it (1 when they are already friends), up to the
//! grid's largest `D`, farther or not connected as `more`. Written as `--distances FILE`
//! (`distance,friendships`) and as a short table after the grid.

use crate::query::distance::DistanceQuery;
use crate::state::users::UserId;
use crate::state::window::Friendships;

use super::{ratio, thousands};

/// Rows listed at least (up to the grid's largest `D`); a larger `D` lists more rows only up
/// to the farthest distance found (the rows past it would all be 0).
pub const LISTED_ROWS: u32 = 32;

/// Stream befriends by distance.
pub struct Distances {
    query: DistanceQuery,
    /// The grid's largest `D`: the search goes no farther.
    bound: u32,
    /// `counts[d - 1]`: befriends at distance `d`.
    counts: Vec<u64>,
    /// Befriends farther than `bound`, or not connected.
    more: u64,
}

impl Distances {
    /// Counts up to `bound`, the grid's largest `D`.
    pub fn new(bound: u32) -> Distances {
        Distances {
            query: DistanceQuery::new(),
            bound,
            counts: vec![0; bound.min(LISTED_ROWS) as usize],
            more: 0,
        }
    }

    /// Counts a befriend of `a` and `b` in `graph` as it stands just before it (none when
    /// `a == b`: befriending oneself changes nothing).
    pub fn befriend(&mut self, graph: &impl Friendships, a: UserId, b: UserId) {
        if a == b {
            return;
        }
        match self.query.distance(graph, a, b, self.bound) {
            Some(d) => {
                let at = d as usize - 1;
                if at >= self.counts.len() {
                    // Only past `LISTED_ROWS`, at a distance never seen before.
                    self.counts.resize(at + 1, 0);
                }
                self.counts[at] += 1;
            }
            None => self.more += 1,
        }
    }

    /// Befriends counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.more
    }

    /// The rows in order: `1`, `2`, ... then `more`, each with its count.
    pub fn rows(&self) -> impl Iterator<Item = (String, u64)> + '_ {
        // 1 to the grid's largest D, or past `LISTED_ROWS` to the farthest distance found.
        (1..=self.counts.len())
            .map(|d| (d.to_string(), self.counts[d - 1]))
            .chain([("more".to_string(), self.more)])
    }

    /// `distance,friendships`, then one row per distance and `more`.
    pub fn csv(&self) -> String {
        let mut out = String::from("distance,friendships\n");
        for (distance, count) in self.rows() {
            out.push_str(&format!("{distance},{count}\n"));
        }
        out
    }

    /// The short table printed after the grid.
    pub fn table(&self) -> String {
        let total = self.total();
        let farther = if self.bound == u32::MAX {
            "not connected".to_string()
        } else {
            format!("farther than {} or not connected", self.bound)
        };
        let mut out = format!(
            "Stream befriends by how far apart the two users were just before \
             ({} of two different users; more: {farther})\n",
            thousands(total)
        );
        let rows: Vec<(String, String, String)> = self
            .rows()
            .map(|(distance, count)| {
                let tenths = ratio(count, total, 1000);
                (
                    distance,
                    thousands(count),
                    format!("{}.{}%", tenths / 10, tenths % 10),
                )
            })
            .collect();
        let width = |pick: fn(&(String, String, String)) -> &String, head: &str| {
            rows.iter()
                .map(|r| pick(r).len())
                .chain([head.len()])
                .max()
                .unwrap_or(0)
        };
        let w = [
            width(|r| &r.0, "distance"),
            width(|r| &r.1, "friendships"),
            width(|r| &r.2, "share"),
        ];
        out.push_str(&format!(
            "{:>a$}  {:>b$}  {:>c$}\n",
            "distance",
            "friendships",
            "share",
            a = w[0],
            b = w[1],
            c = w[2]
        ));
        for (distance, count, share) in &rows {
            out.push_str(&format!(
                "{distance:>a$}  {count:>b$}  {share:>c$}\n",
                a = w[0],
                b = w[1],
                c = w[2]
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::graph::FriendGraph;

    /// A path 0-1-2-...-n.
    fn path(n: u32) -> FriendGraph {
        let mut g = FriendGraph::new();
        for u in 0..n {
            g.befriend(u, u + 1);
        }
        g
    }

    #[test]
    fn rows_run_from_one_to_the_largest_degree_then_more() {
        let g = path(10);
        let mut d = Distances::new(3);
        for (a, b) in [(0, 1), (0, 2), (0, 2), (0, 4), (3, 3), (0, 50)] {
            d.befriend(&g, a, b);
        }
        assert_eq!(d.csv(), "distance,friendships\n1,1\n2,2\n3,0\nmore,2\n");
        assert_eq!(d.total(), 5);
        let table = d.table();
        assert!(table.contains("5 of two different users; more: farther than 3"));
        assert!(
            table.contains("\n       2            2  40.0%\n"),
            "{table}"
        );
    }

    #[test]
    fn a_degree_past_the_listed_rows_lists_up_to_the_farthest_found() {
        let g = path(60);
        let mut d = Distances::new(u32::MAX);
        d.befriend(&g, 0, 40);
        d.befriend(&g, 0, 61);
        let rows: Vec<_> = d.rows().collect();
        assert_eq!(rows.len(), 41);
        assert_eq!(rows[39], ("40".to_string(), 1));
        assert_eq!(rows[40], ("more".to_string(), 1));
        assert!(rows[..39].iter().all(|(_, n)| *n == 0));
        assert!(d.table().contains("more: not connected"));
        let mut near = Distances::new(1000);
        near.befriend(&g, 0, 2);
        assert_eq!(near.rows().count(), LISTED_ROWS as usize + 1);
    }
}

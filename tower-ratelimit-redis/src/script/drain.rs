//! The call that empties a GCRA bucket as of an instant (`drain.lua`): what a
//! throttle's end asks of Redis. One `EVALSHA` on the bucket's own key.

use super::{Invoke, Params};

/// The drain script's source.
pub(crate) const SOURCE: &str = include_str!("drain.lua");

/// What the client knows of the drain point on the server's own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Point {
    /// Nothing: the offset from the server's now alone dates it.
    Unknown,
    /// The point in µs on the server's clock: a command delayed in flight keeps it.
    Server(i64),
    /// Drain nothing; only answer the server's clock.
    Probe,
}

/// The `EVALSHA` (or `EVAL`) that empties `key`'s bucket as of `offset_us` from the
/// server's now (negative: already past), or at `point` on its clock if that is
/// earlier, under GCRA `params`.
pub(crate) fn command(
    invoke: Invoke<'_>,
    key: &[u8],
    offset_us: i64,
    point: Point,
    params: Params,
) -> redis::Cmd {
    let (verb, script) = match invoke {
        Invoke::Hash(hash) => ("EVALSHA", hash),
        Invoke::Source => ("EVAL", SOURCE),
    };
    let mut cmd = redis::Cmd::with_capacity(5, 72 + key.len() + script.len());
    cmd.arg(verb)
        .arg(script)
        .arg(1)
        .arg(key)
        .arg(&args(offset_us, point, params)[..]);
    cmd
}

/// `struct.pack('<dddd', offset, owed, interval, at)`: the debt left at the drain
/// point is all the burst but one unit, as in the core's `Gcra::drain_until`.
fn args(offset_us: i64, point: Point, params: Params) -> [u8; 32] {
    let owed = params
        .limit
        .saturating_sub(1)
        .saturating_mul(params.unit_us);
    let at = match point {
        Point::Unknown => 0.0,
        // A clock at or before the epoch is no clock: it would read as "unknown".
        Point::Server(us) => (us as f64).max(1.0),
        Point::Probe => -1.0,
    };
    let mut packed = [0u8; 32];
    // Rounds above 2^53 µs, where no quota is meaningful; never panics.
    for (slot, value) in
        packed
            .chunks_exact_mut(8)
            .zip([offset_us as f64, owed as f64, params.unit_us as f64, at])
    {
        slot.copy_from_slice(&value.to_le_bytes());
    }
    packed
}

/// Whether `reply` is the drain script's (0 or 1).
pub(crate) fn is_reply(reply: &redis::Value) -> bool {
    matches!(reply, redis::Value::Int(0 | 1))
}

/// The server's clock in µs from a probe's reply, or `None` when the reply is not
/// the script's.
pub(crate) fn probe_clock(reply: &redis::Value) -> Option<i64> {
    match reply {
        redis::Value::Int(clock) if *clock > 1 => Some(*clock),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpack(packed: [u8; 32]) -> Vec<f64> {
        packed
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn the_debt_at_the_drain_point_is_the_burst_but_one_unit() {
        let params = Params {
            unit_us: 10_000,
            limit: 100,
        };
        assert_eq!(
            unpack(args(-250, Point::Unknown, params)),
            [-250.0, 990_000.0, 10_000.0, 0.0]
        );
        // A burst of one owes nothing at the point: it only never starts before it.
        let one = Params {
            unit_us: 10_000,
            limit: 1,
        };
        assert_eq!(
            unpack(args(5, Point::Server(7), one)),
            [5.0, 0.0, 10_000.0, 7.0]
        );
        assert_eq!(unpack(args(5, Point::Probe, one))[3], -1.0);
        // A server point at or before the epoch is still a point, not "unknown".
        assert_eq!(unpack(args(5, Point::Server(-3), one))[3], 1.0);
        // Extremes neither panic nor wrap.
        let huge = Params {
            unit_us: u64::MAX,
            limit: u64::MAX,
        };
        assert_eq!(
            unpack(args(i64::MIN, Point::Server(i64::MAX), huge))[1],
            u64::MAX as f64
        );
    }

    #[test]
    fn the_command_names_one_key() {
        let params = Params {
            unit_us: 1_000,
            limit: 10,
        };
        let cmd = command(Invoke::Hash("sha"), b"k", 0, Point::Unknown, params);
        let args: Vec<_> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(args[..4], [&b"EVALSHA"[..], b"sha", b"1", b"k"]);
        assert_eq!(args[4].len(), 32);
    }

    #[test]
    fn replies() {
        use redis::Value::{Array, Int, Nil};
        assert!(is_reply(&Int(1)) && is_reply(&Int(0)));
        assert!(!is_reply(&Int(2)) && !is_reply(&Nil));
        assert_eq!(
            probe_clock(&Int(1_700_000_000_000_000)),
            Some(1_700_000_000_000_000)
        );
        assert_eq!(probe_clock(&Int(1)), None);
        assert_eq!(probe_clock(&Array(vec![Int(5)])), None);
    }
}

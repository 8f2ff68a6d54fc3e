//! The call that empties a GCRA bucket as of an instant (`drain.lua`): what a
//! throttle's end asks of Redis. One `EVALSHA` on the bucket's own key.

use super::{Invoke, Params};

/// The drain script's source.
pub(crate) const SOURCE: &str = include_str!("drain.lua");

/// The `EVALSHA` (or `EVAL`) that empties `key`'s bucket as of `offset_us` from the
/// server's now (negative: already past), under GCRA `params`.
pub(crate) fn command(
    invoke: Invoke<'_>,
    key: &[u8],
    offset_us: i64,
    params: Params,
) -> redis::Cmd {
    let (verb, script) = match invoke {
        Invoke::Hash(hash) => ("EVALSHA", hash),
        Invoke::Source => ("EVAL", SOURCE),
    };
    let mut cmd = redis::Cmd::with_capacity(5, 64 + key.len() + script.len());
    cmd.arg(verb)
        .arg(script)
        .arg(1)
        .arg(key)
        .arg(&args(offset_us, params)[..]);
    cmd
}

/// `struct.pack('<ddd', offset, owed, interval)`: the debt left at the drain point is
/// all the burst but one unit, as in the core's `Gcra::drain_until`.
fn args(offset_us: i64, params: Params) -> [u8; 24] {
    let owed = params
        .limit
        .saturating_sub(1)
        .saturating_mul(params.unit_us);
    let mut packed = [0u8; 24];
    // Rounds above 2^53 µs, where no quota is meaningful; never panics.
    for (slot, value) in
        packed
            .chunks_exact_mut(8)
            .zip([offset_us as f64, owed as f64, params.unit_us as f64])
    {
        slot.copy_from_slice(&value.to_le_bytes());
    }
    packed
}

/// Whether `reply` is the drain script's (0 or 1).
pub(crate) fn is_reply(reply: &redis::Value) -> bool {
    matches!(reply, redis::Value::Int(0 | 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debt_at_the_drain_point_is_the_burst_but_one_unit() {
        let unpack = |packed: [u8; 24]| -> Vec<f64> {
            packed
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or_default()))
                .collect()
        };
        let params = Params {
            unit_us: 10_000,
            limit: 100,
        };
        assert_eq!(unpack(args(-250, params)), [-250.0, 990_000.0, 10_000.0]);
        // A burst of one owes nothing at the point: it only never starts before it.
        let one = Params {
            unit_us: 10_000,
            limit: 1,
        };
        assert_eq!(unpack(args(5, one)), [5.0, 0.0, 10_000.0]);
        // Extremes neither panic nor wrap.
        let huge = Params {
            unit_us: u64::MAX,
            limit: u64::MAX,
        };
        assert_eq!(unpack(args(i64::MIN, huge))[1], u64::MAX as f64);
    }

    #[test]
    fn the_command_names_one_key() {
        let params = Params {
            unit_us: 1_000,
            limit: 10,
        };
        let cmd = command(Invoke::Hash("sha"), b"k", 0, params);
        let args: Vec<_> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(args[..4], [&b"EVALSHA"[..], b"sha", b"1", b"k"]);
        assert_eq!(args[4].len(), 24);
        assert!(is_reply(&redis::Value::Int(1)));
        assert!(!is_reply(&redis::Value::Int(2)));
        assert!(!is_reply(&redis::Value::Nil));
    }
}

//! The collective layer: a small trait over a group of ranks.
//!
//! Backends implement the byte-level primitives (all-gather, all-to-all,
//! broadcast, send/receive with one peer, vote); everything numeric is built
//! on them here, so every backend computes the same bits:
//!
//! - **all-reduce** is a reduce-scatter followed by an all-gather (the
//!   bandwidth-optimal schedule, the volume of a ring all-reduce): the buffer
//!   is cut into `size` contiguous chunks (boundaries depend only on the length
//!   and `size`), rank `j` receives chunk `j` from everyone, sums the
//!   contributions **in rank order** (then divides by `size` for the mean) and
//!   all-gathers its reduced chunk. Every rank ends with identical bits,
//!   whatever the scheduling or the backend.
//! - **Byte counts** (payload bytes, per rank; the 8-byte checksum each message
//!   carries is not counted): all-gather sends `len·(n−1)` and receives the
//!   others' lengths; all-to-all sends and receives the chunks addressed to and
//!   from others; broadcast charges `len·(n−1)` to the root (a direct fan-out)
//!   and `len` to each receiver; send/receive charge the payload once. An
//!   all-reduce of `d` f64 values therefore costs each rank `2·8d·(n−1)/n`
//!   bytes each way, exactly a ring all-reduce.
//! - **Link model** (optional): each operation costs `latency + max(sent,
//!   received)·8 / bandwidth` of simulated time on the rank.
//! - **Checksums**: every message carries [`steepest::state::checksum`] of its
//!   payload; a mismatch is [`Error::Corrupt`], reported after the operation
//!   drained all its messages (so channels stay aligned and the operation can
//!   be retried).

use crate::error::{Error, Result};

/// Reduction of an all-reduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReduceOp {
    /// Sum in rank order.
    Sum,
    /// Sum in rank order, then divided by the number of ranks.
    Mean,
}

/// A link model turning bytes into simulated time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// Bandwidth in Gbit/s (> 0).
    pub gbps: f64,
    /// Latency per operation in seconds (>= 0).
    pub latency_s: f64,
}

/// Per-rank traffic counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Payload bytes received.
    pub bytes_recv: u64,
    /// Messages sent.
    pub messages: u64,
    /// Collective or point-to-point operations.
    pub ops: u64,
    /// Simulated communication time under the link model (0 without one).
    pub sim_seconds: f64,
    /// Operations that failed and were retried or rolled back.
    pub retries: u64,
    /// Corrupted flags (acknowledgements, votes) read correctly anyway: they
    /// are coded redundantly and decoded by majority, so a flipped bit needs no retry.
    pub corrected: u64,
    /// The link model, if any.
    pub link: Option<Link>,
}

impl Traffic {
    /// Accounts one operation.
    pub fn record(&mut self, sent: u64, recv: u64, messages: u64) {
        self.bytes_sent += sent;
        self.bytes_recv += recv;
        self.messages += messages;
        self.ops += 1;
        if let Some(l) = self.link {
            self.sim_seconds += l.latency_s + (sent.max(recv) as f64) * 8.0 / (l.gbps * 1e9);
        }
    }
}

/// The outcome of a vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// Every live member voted yes.
    pub all_ok: bool,
    /// World ranks found dead during the vote (already removed from the members).
    pub dead: Vec<usize>,
}

/// A group of ranks that communicate. Ranks are positions in the current
/// member list (`rank()`, `size()`); point-to-point peers are world ranks.
pub trait Collective {
    /// Position of this rank among the current members.
    fn rank(&self) -> usize;
    /// Number of current members.
    fn size(&self) -> usize;
    /// This rank's world rank (stable across membership changes).
    fn world_rank(&self) -> usize;
    /// Number of ranks at start.
    fn world_size(&self) -> usize;
    /// World ranks of the current members, ascending.
    fn members(&self) -> Vec<usize>;
    /// Everyone's bytes, in member order (this rank's own included).
    fn all_gather_bytes(&mut self, mine: &[u8]) -> Result<Vec<Vec<u8>>>;
    /// `chunks[j]` goes to member `j`; returns what member `i` addressed to this rank at `i`.
    fn all_to_all_bytes(&mut self, chunks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>>;
    /// Member `root`'s buffer to everyone.
    fn broadcast_bytes(&mut self, buf: &mut Vec<u8>, root: usize) -> Result<()>;
    /// Sends to one peer (world rank).
    fn send_bytes(&mut self, peer: usize, data: &[u8]) -> Result<()>;
    /// Receives from one peer (world rank).
    fn recv_bytes(&mut self, peer: usize) -> Result<Vec<u8>>;
    /// Receives a flag sent as [`flag_bytes`] (decoded by majority, even from a corrupted message).
    fn recv_flag(&mut self, peer: usize) -> Result<bool> {
        match self.recv_bytes(peer) {
            Ok(d) => Ok(read_flag(&d)),
            Err(Error::Corrupt { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
    /// Every live member says whether its part of an operation succeeded; dead
    /// members are detected and removed (backends that cannot survive a lost
    /// rank fail instead).
    fn vote(&mut self, ok: bool) -> Result<Vote>;
    /// Traffic so far.
    fn traffic(&self) -> &Traffic;
    /// Traffic counters (for retries).
    fn traffic_mut(&mut self) -> &mut Traffic;

    /// Waits for every member.
    fn barrier(&mut self) -> Result<()> {
        self.all_gather_bytes(&[]).map(|_| ())
    }

    /// Deterministic all-reduce of f64 values (see the module documentation).
    fn all_reduce(&mut self, buf: &mut [f64], op: ReduceOp) -> Result<()> {
        let n = self.size();
        let me = self.rank();
        let bounds = chunk_bounds(buf.len(), n);
        let chunks: Vec<Vec<u8>> = bounds.iter().map(|&(a, b)| f64s_to_bytes(&buf[a..b])).collect();
        // A failed phase still takes part in the next one (so every rank's
        // channels stay aligned and the whole operation can be retried).
        let (a, b) = bounds[me];
        let mut acc = vec![0.0f64; b - a];
        let first = self.all_to_all_bytes(&chunks).and_then(|got| {
            for (i, bytes) in got.iter().enumerate() {
                let v = bytes_to_f64s(bytes)?;
                if v.len() != acc.len() {
                    return Err(Error::Transport(format!(
                        "all-reduce: chunk of {} values from member {i}, expected {}",
                        v.len(),
                        acc.len()
                    )));
                }
                if i == 0 {
                    acc.copy_from_slice(&v);
                } else {
                    for (s, x) in acc.iter_mut().zip(&v) {
                        *s += x;
                    }
                }
            }
            Ok(())
        });
        if op == ReduceOp::Mean {
            let nf = n as f64;
            for s in &mut acc {
                *s /= nf;
            }
        }
        let all = self.all_gather_bytes(&f64s_to_bytes(&acc));
        first?;
        let all = all?;
        for (j, bytes) in all.iter().enumerate() {
            let v = bytes_to_f64s(bytes)?;
            let (a, b) = bounds[j];
            if v.len() != b - a {
                return Err(Error::Transport(format!(
                    "all-reduce: reduced chunk of {} values from member {j}, expected {}",
                    v.len(),
                    b - a
                )));
            }
            buf[a..b].copy_from_slice(&v);
        }
        Ok(())
    }

    /// Everyone's f64 vectors, in member order.
    fn all_gather_f64(&mut self, mine: &[f64]) -> Result<Vec<Vec<f64>>> {
        self.all_gather_bytes(&f64s_to_bytes(mine))?
            .iter()
            .map(|b| bytes_to_f64s(b))
            .collect()
    }

    /// Member `root`'s f64 vector to everyone (lengths must agree).
    fn broadcast_f64(&mut self, buf: &mut [f64], root: usize) -> Result<()> {
        let mut bytes = f64s_to_bytes(buf);
        self.broadcast_bytes(&mut bytes, root)?;
        let v = bytes_to_f64s(&bytes)?;
        if v.len() != buf.len() {
            return Err(Error::Transport(format!(
                "broadcast: {} values, expected {}",
                v.len(),
                buf.len()
            )));
        }
        buf.copy_from_slice(&v);
        Ok(())
    }
}

/// Bytes in every part but member `me`'s own: what a collective that hands
/// each member one part per peer sends or receives over the wire.
pub fn others_len(parts: &[Vec<u8>], me: usize) -> u64 {
    parts
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != me)
        .map(|(_, p)| p.len() as u64)
        .sum()
}

/// Contiguous chunk `[a, b)` of each of `n` members over `len` elements: the
/// first `len % n` chunks get one element more.
pub fn chunk_bounds(len: usize, n: usize) -> Vec<(usize, usize)> {
    let n = n.max(1);
    let (q, r) = (len / n, len % n);
    let mut out = Vec::with_capacity(n);
    let mut a = 0;
    for j in 0..n {
        let b = a + q + usize::from(j < r);
        out.push((a, b));
        a = b;
    }
    out
}

/// Little-endian bytes of f64 values.
pub fn f64s_to_bytes(v: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len() * 8);
    for x in v {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// f64 values from little-endian bytes.
pub fn bytes_to_f64s(b: &[u8]) -> Result<Vec<f64>> {
    if !b.len().is_multiple_of(8) {
        return Err(Error::Transport(format!(
            "{} bytes is not a whole number of f64 values",
            b.len()
        )));
    }
    Ok(b.chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect())
}

/// Packs unsigned values of `bits` bits each (1..=8), little-endian within bytes.
pub fn pack_bits(values: &[u8], bits: u32) -> Vec<u8> {
    let total = values.len() * bits as usize;
    let mut out = vec![0u8; total.div_ceil(8)];
    let mut pos = 0usize;
    for &v in values {
        for k in 0..bits {
            if (v >> k) & 1 == 1 {
                out[pos / 8] |= 1 << (pos % 8);
            }
            pos += 1;
        }
    }
    out
}

/// Inverse of [`pack_bits`] for `n` values.
pub fn unpack_bits(bytes: &[u8], bits: u32, n: usize) -> Result<Vec<u8>> {
    let need = (n * bits as usize).div_ceil(8);
    if bytes.len() != need {
        return Err(Error::Transport(format!(
            "packed bits: {} bytes, expected {need}",
            bytes.len()
        )));
    }
    let mut out = vec![0u8; n];
    let mut pos = 0usize;
    for o in &mut out {
        for k in 0..bits {
            if (bytes[pos / 8] >> (pos % 8)) & 1 == 1 {
                *o |= 1 << k;
            }
            pos += 1;
        }
    }
    Ok(out)
}

/// A yes/no flag coded eight-fold (votes and acknowledgements): a flipped bit
/// in transit cannot change the decision, so a corrupted vote cannot split the
/// group (members would otherwise decide differently).
pub fn flag_bytes(ok: bool) -> [u8; 8] {
    [u8::from(ok); 8]
}

/// Decodes [`flag_bytes`] by majority (anything unreadable is "no").
pub fn read_flag(b: &[u8]) -> bool {
    let yes = b.iter().filter(|&&x| x == 1).count();
    let no = b.iter().filter(|&&x| x == 0).count();
    yes > no
}

/// Runs `attempt` (which must not change any state it cannot redo) until every
/// live member reports success, at most `max_attempts` times: work, vote,
/// then commit (return the result) or roll back (discard it and retry).
/// Members found dead are dropped and the operation is retried among the
/// survivors.
pub fn committed<T>(
    comm: &mut dyn Collective,
    max_attempts: u32,
    mut attempt: impl FnMut(&mut dyn Collective) -> Result<T>,
) -> Result<T> {
    let mut last = String::new();
    for _ in 0..max_attempts.max(1) {
        let r = attempt(comm);
        if let Err(e @ (Error::Steepest(_) | Error::Config { .. } | Error::Killed(_))) = &r {
            // Not a communication failure: nothing to retry.
            let _ = e;
            return r;
        }
        let vote = comm.vote(r.is_ok())?;
        if vote.all_ok && vote.dead.is_empty() {
            if let Ok(v) = r {
                return Ok(v);
            }
        }
        last = match &r {
            Err(e) => e.to_string(),
            Ok(_) if !vote.dead.is_empty() => format!("ranks {:?} lost", vote.dead),
            Ok(_) => "a peer failed".to_string(),
        };
        comm.traffic_mut().retries += 1;
    }
    Err(Error::GaveUp {
        attempts: max_attempts.max(1),
        last,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_buffer() {
        for len in 0..20 {
            for n in 1..6 {
                let b = chunk_bounds(len, n);
                assert_eq!(b.len(), n);
                assert_eq!(b[0].0, 0);
                assert_eq!(b[n - 1].1, len);
                for w in b.windows(2) {
                    assert_eq!(w[0].1, w[1].0);
                }
            }
        }
    }

    #[test]
    fn bits_round_trip() {
        let v: Vec<u8> = (0..37).map(|i| (i * 7 % 5) as u8).collect();
        for bits in [3u32, 4, 8] {
            assert_eq!(unpack_bits(&pack_bits(&v, bits), bits, v.len()).unwrap(), v);
        }
        let s: Vec<u8> = (0..19).map(|i| (i % 2) as u8).collect();
        assert_eq!(pack_bits(&s, 1).len(), 3);
        assert_eq!(unpack_bits(&pack_bits(&s, 1), 1, s.len()).unwrap(), s);
        assert!(unpack_bits(&[0u8; 2], 1, 19).is_err());
    }
}

//! The in-process backend: one thread per rank, one FIFO channel per ordered
//! pair of ranks. Collectives post to every peer and then receive from every
//! peer in member order; reductions happen in [`crate::collective`] in rank
//! order, so results are identical whatever the thread scheduling.
//!
//! Faults ([`Faults`]): corrupt the `m`-th message a rank sends (a bit flips
//! after its checksum was computed: the receiver detects it), delay every
//! send of a rank, and (in the driver, [`crate::train`]) kill a rank at a step:
//! its thread returns and its channels close, so peers see
//! [`Error::PeerLost`] and drop it from their member list at the next vote.

use std::collections::BTreeSet;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use steepest::state::checksum;

use crate::collective::{others_len, Collective, Link, Traffic, Vote};
use crate::error::{Error, Result};

/// How long a receive waits before it gives up (a protocol bug must not hang tests).
const RECV_TIMEOUT: Duration = Duration::from_secs(60);

/// Injected faults.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// `(world rank, m)`: the `m`-th message (0-based) that rank sends arrives corrupted.
    pub corrupt: Vec<(usize, u64)>,
    /// `(world rank, delay)`: that rank sleeps before every send.
    pub delay: Option<(usize, Duration)>,
    /// `(world rank, step)`: the driver kills that rank at the start of that step.
    pub kill: Option<(usize, u64)>,
}

struct Frame {
    seq: u64,
    sum: u64,
    data: Vec<u8>,
}

/// One rank's end of the in-process group.
pub struct InProcComm {
    me: usize,
    world: usize,
    members: Vec<usize>,
    tx: Vec<Option<Sender<Frame>>>,
    rx: Vec<Option<Receiver<Frame>>>,
    sent_seq: Vec<u64>,
    recv_seq: Vec<u64>,
    frames_sent: u64,
    faults: Arc<Faults>,
    traffic: Traffic,
}

impl InProcComm {
    /// Builds `n` connected ranks (use them on `n` threads).
    pub fn group(n: usize, link: Option<Link>, faults: Faults) -> Vec<InProcComm> {
        let faults = Arc::new(faults);
        let mut tx: Vec<Vec<Option<Sender<Frame>>>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut rx: Vec<Vec<Option<Receiver<Frame>>>> = (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    let (s, r) = channel();
                    tx[a][b] = Some(s);
                    rx[b][a] = Some(r);
                }
            }
        }
        tx.into_iter()
            .zip(rx)
            .enumerate()
            .map(|(me, (tx, rx))| InProcComm {
                me,
                world: n,
                members: (0..n).collect(),
                tx,
                rx,
                sent_seq: vec![0; n],
                recv_seq: vec![0; n],
                frames_sent: 0,
                faults: faults.clone(),
                traffic: Traffic {
                    link,
                    ..Traffic::default()
                },
            })
            .collect()
    }

    /// The injected faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    fn post(&mut self, peer: usize, data: &[u8]) -> Result<()> {
        if let Some((r, d)) = self.faults.delay {
            if r == self.me {
                std::thread::sleep(d);
            }
        }
        let sum = checksum(data);
        let mut data = data.to_vec();
        let m = self.frames_sent;
        self.frames_sent += 1;
        let mut sum_sent = sum;
        if self.faults.corrupt.iter().any(|&(r, k)| r == self.me && k == m) {
            match data.first_mut() {
                Some(b) => *b ^= 0x10,
                None => sum_sent ^= 1,
            }
        }
        let seq = self.sent_seq[peer];
        self.sent_seq[peer] += 1;
        let tx = self
            .tx
            .get(peer)
            .and_then(|t| t.as_ref())
            .ok_or(Error::PeerLost(peer))?;
        tx.send(Frame {
            seq,
            sum: sum_sent,
            data,
        })
        .map_err(|_| Error::PeerLost(peer))
    }

    fn take(&mut self, peer: usize) -> Result<Vec<u8>> {
        let (data, ok) = self.take_raw(peer)?;
        if ok {
            Ok(data)
        } else {
            Err(Error::Corrupt { from: peer })
        }
    }

    /// The next message from `peer` and whether its checksum holds.
    fn take_raw(&mut self, peer: usize) -> Result<(Vec<u8>, bool)> {
        let rx = self
            .rx
            .get(peer)
            .and_then(|r| r.as_ref())
            .ok_or(Error::PeerLost(peer))?;
        let f = match rx.recv_timeout(RECV_TIMEOUT) {
            Ok(f) => f,
            Err(RecvTimeoutError::Disconnected) => return Err(Error::PeerLost(peer)),
            Err(RecvTimeoutError::Timeout) => {
                return Err(Error::Transport(format!(
                    "rank {}: no message from rank {peer} within {RECV_TIMEOUT:?}",
                    self.me
                )))
            }
        };
        let want = self.recv_seq[peer];
        self.recv_seq[peer] += 1;
        if f.seq != want {
            return Err(Error::Transport(format!(
                "rank {}: message {} from rank {peer}, expected {want}",
                self.me, f.seq
            )));
        }
        let ok = checksum(&f.data) == f.sum;
        Ok((f.data, ok))
    }

    /// Receives a redundantly coded flag (see [`crate::collective::flag_bytes`]).
    fn recv_flag_raw(&mut self, peer: usize) -> Result<bool> {
        let (d, ok) = self.take_raw(peer)?;
        self.traffic.record(0, d.len() as u64, 0);
        if !ok {
            self.traffic.corrected += 1;
        }
        Ok(crate::collective::read_flag(&d))
    }

    /// Drops `dead` world ranks from the members and closes their channels.
    fn remove(&mut self, dead: &[usize]) {
        self.members.retain(|m| !dead.contains(m));
        for &d in dead {
            if d < self.world {
                self.tx[d] = None;
                self.rx[d] = None;
            }
        }
    }

    /// Posts to every other member, then receives from every other member in
    /// order, draining all before reporting the first error.
    fn exchange(&mut self, out: &dyn Fn(usize) -> Vec<u8>) -> (Vec<Vec<u8>>, Option<Error>) {
        let members = self.members.clone();
        let mut err = None;
        for (j, &p) in members.iter().enumerate() {
            if p != self.me {
                if let Err(e) = self.post(p, &out(j)) {
                    err.get_or_insert(e);
                }
            }
        }
        let mut got = Vec::with_capacity(members.len());
        for (j, &p) in members.iter().enumerate() {
            if p == self.me {
                got.push(out(j));
            } else {
                match self.take(p) {
                    Ok(d) => got.push(d),
                    Err(e) => {
                        got.push(Vec::new());
                        if !matches!(err, Some(Error::PeerLost(_))) {
                            // a lost peer outranks a corrupt message: it changes the membership
                            if matches!(e, Error::PeerLost(_)) || err.is_none() {
                                err = Some(e);
                            }
                        }
                    }
                }
            }
        }
        (got, err)
    }
}

impl Collective for InProcComm {
    fn rank(&self) -> usize {
        self.members.iter().position(|&m| m == self.me).unwrap_or(0)
    }
    fn size(&self) -> usize {
        self.members.len()
    }
    fn world_rank(&self) -> usize {
        self.me
    }
    fn world_size(&self) -> usize {
        self.world
    }
    fn members(&self) -> Vec<usize> {
        self.members.clone()
    }

    fn all_gather_bytes(&mut self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mine = mine.to_vec();
        let (got, err) = self.exchange(&|_| mine.clone());
        let n = self.members.len() as u64;
        let me = self.rank();
        self.traffic
            .record(mine.len() as u64 * (n - 1), others_len(&got, me), n - 1);
        match err {
            Some(e) => Err(e),
            None => Ok(got),
        }
    }

    fn all_to_all_bytes(&mut self, chunks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        if chunks.len() != self.members.len() {
            return Err(Error::Transport(format!(
                "all-to-all: {} chunks for {} members",
                chunks.len(),
                self.members.len()
            )));
        }
        let (got, err) = self.exchange(&|j| chunks[j].clone());
        let me = self.rank();
        self.traffic.record(
            others_len(chunks, me),
            others_len(&got, me),
            self.members.len() as u64 - 1,
        );
        match err {
            Some(e) => Err(e),
            None => Ok(got),
        }
    }

    fn broadcast_bytes(&mut self, buf: &mut Vec<u8>, root: usize) -> Result<()> {
        let root_world = *self
            .members
            .get(root)
            .ok_or_else(|| Error::Transport(format!("broadcast root {root} of {} members", self.members.len())))?;
        if root_world == self.me {
            let mut err = None;
            for p in self.members.clone() {
                if p != self.me {
                    if let Err(e) = self.post(p, buf) {
                        err.get_or_insert(e);
                    }
                }
            }
            let n = self.members.len() as u64;
            self.traffic.record(buf.len() as u64 * (n - 1), 0, n - 1);
            err.map_or(Ok(()), Err)
        } else {
            let r = self.take(root_world);
            let len = r.as_ref().map_or(0, |d| d.len() as u64);
            self.traffic.record(0, len, 0);
            *buf = r?;
            Ok(())
        }
    }

    fn send_bytes(&mut self, peer: usize, data: &[u8]) -> Result<()> {
        let r = self.post(peer, data);
        self.traffic.record(data.len() as u64, 0, 1);
        r
    }

    fn recv_bytes(&mut self, peer: usize) -> Result<Vec<u8>> {
        let r = self.take(peer);
        self.traffic.record(0, r.as_ref().map_or(0, |d| d.len() as u64), 0);
        r
    }

    fn recv_flag(&mut self, peer: usize) -> Result<bool> {
        self.recv_flag_raw(peer)
    }

    fn vote(&mut self, ok: bool) -> Result<Vote> {
        let members = self.members.clone();
        let mut dead = BTreeSet::new();
        let mut all_ok = ok;
        for &p in &members {
            if p != self.me && self.post(p, &crate::collective::flag_bytes(ok)).is_err() {
                dead.insert(p);
            }
        }
        for &p in &members {
            if p == self.me {
                continue;
            }
            match self.take_raw(p) {
                Ok((v, sum_ok)) => {
                    if !sum_ok {
                        self.traffic.corrected += 1;
                    }
                    all_ok &= crate::collective::read_flag(&v)
                }
                Err(Error::PeerLost(_)) => {
                    dead.insert(p);
                }
                Err(e) => return Err(e),
            }
        }
        let others = members.iter().filter(|&&p| p != self.me).count() as u64;
        let alive = others - dead.len() as u64;
        self.traffic.record(8 * others, 8 * alive, others);
        let dead: Vec<usize> = dead.into_iter().collect();
        self.remove(&dead);
        Ok(Vote { all_ok, dead })
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }
    fn traffic_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

/// Runs `f` on `n` in-process ranks (one thread each) and returns their
/// results in rank order. A rank whose thread panicked yields
/// [`Error::Transport`].
pub fn run_inproc<R: Send>(
    n: usize,
    link: Option<Link>,
    faults: Faults,
    f: impl Fn(InProcComm) -> Result<R> + Sync,
) -> Vec<Result<R>> {
    let comms = InProcComm::group(n, link, faults);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = comms.into_iter().map(|c| s.spawn(move || f(c))).collect();
        handles
            .into_iter()
            .enumerate()
            .map(|(r, h)| {
                h.join()
                    .unwrap_or_else(|_| Err(Error::Transport(format!("rank {r} panicked"))))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collective::ReduceOp;

    #[test]
    fn all_reduce_is_identical_on_every_rank_and_exact() {
        for n in 1..=5 {
            let out = run_inproc(n, None, Faults::default(), |mut c| {
                let r = c.rank() as f64;
                let mut v: Vec<f64> = (0..13).map(|i| 0.1 * i as f64 + r * 1.7).collect();
                c.all_reduce(&mut v, ReduceOp::Mean)?;
                Ok((v, c.traffic().clone()))
            });
            let first = out[0].as_ref().unwrap().0.clone();
            for (r, o) in out.iter().enumerate() {
                let (v, t) = o.as_ref().unwrap();
                assert_eq!(v, &first, "rank {r} differs");
                let chunk = crate::collective::chunk_bounds(13, n);
                let mine = (chunk[r].1 - chunk[r].0) as u64 * 8;
                // reduce-scatter receives my chunk from n-1 peers; all-gather receives the other chunks
                assert_eq!(t.bytes_recv, mine * (n as u64 - 1) + (13 * 8 - mine));
            }
            for (i, x) in first.iter().enumerate() {
                let mut s = 0.0;
                for r in 0..n {
                    s += 0.1 * i as f64 + r as f64 * 1.7;
                }
                assert_eq!(*x, s / n as f64);
            }
        }
    }

    #[test]
    fn collectives_move_the_right_data() {
        let out = run_inproc(3, None, Faults::default(), |mut c| {
            let me = c.rank() as u8;
            let g = c.all_gather_bytes(&[me; 2])?;
            let a = c.all_to_all_bytes(&[vec![me, 0], vec![me, 1], vec![me, 2]])?;
            let mut b = if me == 1 { vec![9, 9, 9] } else { vec![] };
            c.broadcast_bytes(&mut b, 1)?;
            if me == 0 {
                c.send_bytes(2, &[42])?;
            }
            let p = if me == 2 { c.recv_bytes(0)? } else { vec![] };
            c.barrier()?;
            Ok((g, a, b, p))
        });
        for (r, o) in out.into_iter().enumerate() {
            let (g, a, b, p) = o.unwrap();
            assert_eq!(g, vec![vec![0, 0], vec![1, 1], vec![2, 2]]);
            assert_eq!(a, (0..3u8).map(|i| vec![i, r as u8]).collect::<Vec<_>>());
            assert_eq!(b, vec![9, 9, 9]);
            assert_eq!(p, if r == 2 { vec![42] } else { vec![] });
        }
    }

    #[test]
    fn a_corrupted_message_is_detected_and_the_retry_commits() {
        let out = run_inproc(
            3,
            None,
            Faults {
                corrupt: vec![(1, 0)],
                ..Faults::default()
            },
            |mut c| {
                let mut first = vec![c.rank() as f64 + 0.5; 6];
                let e = c.all_reduce(&mut first, ReduceOp::Sum);
                let detected = matches!(e, Err(Error::Corrupt { from: 1 }));
                let v = crate::collective::committed(&mut c, 3, |c| {
                    let mut v = vec![c.rank() as f64 + 0.5; 6];
                    c.all_reduce(&mut v, ReduceOp::Sum)?;
                    Ok(v)
                })?;
                Ok((detected, v))
            },
        );
        let detected: Vec<bool> = out.iter().map(|o| o.as_ref().unwrap().0).collect();
        // rank 1's first message goes to rank 0 (the chunk it addresses first)
        assert_eq!(detected, vec![true, false, false]);
        for o in out {
            assert_eq!(o.unwrap().1, vec![4.5; 6]);
        }
    }

    #[test]
    fn a_dead_rank_is_voted_out() {
        let out = run_inproc(3, None, Faults::default(), |mut c| {
            if c.rank() == 2 {
                return Err(Error::Killed(0));
            }
            let v = crate::collective::committed(&mut c, 3, |c| {
                let mut v = vec![c.world_rank() as f64 + 1.0; 4];
                c.all_reduce(&mut v, ReduceOp::Sum)?;
                Ok(v)
            })?;
            Ok((v, c.members()))
        });
        for o in out.into_iter().take(2) {
            let (v, m) = o.unwrap();
            assert_eq!(v, vec![3.0; 4]);
            assert_eq!(m, vec![0, 1]);
        }
    }
}

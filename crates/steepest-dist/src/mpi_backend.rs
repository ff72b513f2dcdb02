//! The MPI backend (cargo feature `mpi`): the [`Collective`] primitives over
//! MPI via rsmpi (the `mpi` crate) on the system's MPI library (Open MPI on
//! Debian: `openmpi-bin libopenmpi-dev`, plus `libclang-dev` for the bindings).
//! One process per rank: `mpirun -np 4 steepest dist train --backend mpi ...`.
//!
//! Variable-length exchanges first all-gather the lengths, then use
//! `MPI_Allgatherv` / `MPI_Alltoallv`; every message carries an 8-byte
//! checksum of its payload, verified on receipt. Numeric collectives are the
//! trait's own (reduce-scatter in rank order + all-gather), not
//! `MPI_Allreduce`, so MPI runs give the same bits as in-process runs.
//! A lost rank is not survivable here (MPI aborts the job by default): fault
//! tolerance is exercised on the in-process backend.

use mpi::datatype::{Partition, PartitionMut};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use steepest::state::checksum;

use crate::collective::{others_len, Collective, Link, Traffic, Vote};
use crate::error::{Error, Result};
use crate::train::{loss_of_mean, train_rank, workload, RankReport, TrainSpec};

/// One MPI process's end of `MPI_COMM_WORLD`.
pub struct MpiComm {
    world: SimpleCommunicator,
    traffic: Traffic,
}

fn seal(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend_from_slice(&checksum(data).to_le_bytes());
    v
}

fn open(from: usize, framed: &[u8]) -> Result<Vec<u8>> {
    if framed.len() < 8 {
        return Err(Error::Transport(format!(
            "message of {} bytes from rank {from}",
            framed.len()
        )));
    }
    let (d, s) = framed.split_at(framed.len() - 8);
    let want = u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
    if checksum(d) != want {
        return Err(Error::Corrupt { from });
    }
    Ok(d.to_vec())
}

fn count(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Transport(format!("message of {n} bytes is too large for MPI counts")))
}

/// Opens every member's framed slice of a variable-count receive buffer
/// (`counts[j]` bytes at `displs[j]`); a slice that fails its check becomes an
/// empty part, and the first error is returned beside the parts.
fn open_all(buf: &[u8], counts: &[i32], displs: &[i32]) -> (Vec<Vec<u8>>, Option<Error>) {
    let mut out = Vec::with_capacity(counts.len());
    let mut err = None;
    for (j, (&c, &d)) in counts.iter().zip(displs).enumerate() {
        match open(j, &buf[d as usize..(d + c) as usize]) {
            Ok(v) => out.push(v),
            Err(e) => {
                err.get_or_insert(e);
                out.push(Vec::new());
            }
        }
    }
    (out, err)
}

fn displs(counts: &[i32]) -> Vec<i32> {
    let mut d = Vec::with_capacity(counts.len());
    let mut a = 0;
    for c in counts {
        d.push(a);
        a += c;
    }
    d
}

impl MpiComm {
    /// Wraps the world communicator.
    pub fn new(world: SimpleCommunicator, link: Option<Link>) -> MpiComm {
        MpiComm {
            world,
            traffic: Traffic {
                link,
                ..Traffic::default()
            },
        }
    }
}

impl Collective for MpiComm {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }
    fn size(&self) -> usize {
        self.world.size() as usize
    }
    fn world_rank(&self) -> usize {
        self.rank()
    }
    fn world_size(&self) -> usize {
        self.size()
    }
    fn members(&self) -> Vec<usize> {
        (0..self.size()).collect()
    }

    fn all_gather_bytes(&mut self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        let n = self.size();
        let framed = seal(mine);
        let mut lens = vec![0i32; n];
        self.world.all_gather_into(&count(framed.len())?, &mut lens[..]);
        let total: usize = lens.iter().map(|&c| c as usize).sum();
        let mut buf = vec![0u8; total];
        let d = displs(&lens);
        {
            let mut part = PartitionMut::new(&mut buf[..], &lens[..], &d[..]);
            self.world.all_gather_varcount_into(&framed[..], &mut part);
        }
        let (out, err) = open_all(&buf, &lens, &d);
        let recv = others_len(&out, self.rank());
        self.traffic
            .record(mine.len() as u64 * (n as u64 - 1), recv, n as u64 - 1);
        err.map_or(Ok(out), Err)
    }

    fn all_to_all_bytes(&mut self, chunks: &[Vec<u8>]) -> Result<Vec<Vec<u8>>> {
        let n = self.size();
        if chunks.len() != n {
            return Err(Error::Transport(format!(
                "all-to-all: {} chunks for {n} ranks",
                chunks.len()
            )));
        }
        let framed: Vec<Vec<u8>> = chunks.iter().map(|c| seal(c)).collect();
        let scounts: Vec<i32> = framed.iter().map(|f| count(f.len())).collect::<Result<_>>()?;
        let mut rcounts = vec![0i32; n];
        self.world.all_to_all_into(&scounts[..], &mut rcounts[..]);
        let sbuf: Vec<u8> = framed.concat();
        let sd = displs(&scounts);
        let rd = displs(&rcounts);
        let mut rbuf = vec![0u8; rcounts.iter().map(|&c| c as usize).sum()];
        {
            let sp = Partition::new(&sbuf[..], &scounts[..], &sd[..]);
            let mut rp = PartitionMut::new(&mut rbuf[..], &rcounts[..], &rd[..]);
            self.world.all_to_all_varcount_into(&sp, &mut rp);
        }
        let (out, err) = open_all(&rbuf, &rcounts, &rd);
        let me = self.rank();
        self.traffic
            .record(others_len(chunks, me), others_len(&out, me), n as u64 - 1);
        err.map_or(Ok(out), Err)
    }

    fn broadcast_bytes(&mut self, buf: &mut Vec<u8>, root: usize) -> Result<()> {
        let n = self.size();
        if root >= n {
            return Err(Error::Transport(format!("broadcast root {root} of {n} ranks")));
        }
        let root_p = self.world.process_at_rank(root as i32);
        let mut framed = if self.rank() == root { seal(buf) } else { Vec::new() };
        let mut len = [count(framed.len())?];
        root_p.broadcast_into(&mut len[..]);
        framed.resize(len[0] as usize, 0);
        root_p.broadcast_into(&mut framed[..]);
        if self.rank() == root {
            self.traffic.record(buf.len() as u64 * (n as u64 - 1), 0, n as u64 - 1);
            Ok(())
        } else {
            let d = open(root, &framed)?;
            self.traffic.record(0, d.len() as u64, 0);
            *buf = d;
            Ok(())
        }
    }

    fn send_bytes(&mut self, peer: usize, data: &[u8]) -> Result<()> {
        if peer >= self.size() {
            return Err(Error::PeerLost(peer));
        }
        self.world.process_at_rank(peer as i32).send(&seal(data)[..]);
        self.traffic.record(data.len() as u64, 0, 1);
        Ok(())
    }

    fn recv_bytes(&mut self, peer: usize) -> Result<Vec<u8>> {
        if peer >= self.size() {
            return Err(Error::PeerLost(peer));
        }
        let (v, _) = self.world.process_at_rank(peer as i32).receive_vec::<u8>();
        let d = open(peer, &v)?;
        self.traffic.record(0, d.len() as u64, 0);
        Ok(d)
    }

    fn vote(&mut self, ok: bool) -> Result<Vote> {
        let all = match self.all_gather_bytes(&crate::collective::flag_bytes(ok)) {
            Ok(v) => v.iter().all(|b| crate::collective::read_flag(b)),
            Err(Error::Corrupt { .. }) => false,
            Err(e) => return Err(e),
        };
        Ok(Vote {
            all_ok: all,
            dead: Vec::new(),
        })
    }

    fn traffic(&self) -> &Traffic {
        &self.traffic
    }
    fn traffic_mut(&mut self) -> &mut Traffic {
        &mut self.traffic
    }
}

/// Runs `f` with this process's MPI communicator (initializes MPI once).
pub fn with_world<R>(link: Option<Link>, f: impl FnOnce(&mut MpiComm) -> Result<R>) -> Result<R> {
    let universe = mpi::initialize().ok_or_else(|| Error::Transport("MPI was already initialized".into()))?;
    let mut comm = MpiComm::new(universe.world(), link);
    f(&mut comm)
}

/// Statistics of a rank as f64s for an all-gather.
fn stats(r: &RankReport) -> Vec<f64> {
    let mut v = vec![
        r.final_loss,
        r.steps as f64,
        r.traffic.bytes_sent as f64,
        r.traffic.bytes_recv as f64,
        r.traffic.messages as f64,
        r.traffic.retries as f64,
        r.traffic.sim_seconds,
    ];
    v.extend_from_slice(&r.model);
    v
}

/// `steepest dist train --backend mpi`: trains on this rank, then rank 0 prints
/// every rank's summary.
pub fn train_mpi(spec: &TrainSpec, workers: Option<usize>, link: Option<Link>) -> Result<()> {
    with_world(link, |comm| {
        if let Some(w) = workers {
            if w != comm.size() {
                return Err(Error::config(
                    "workers",
                    format!("--workers {w} but mpirun started {} ranks", comm.size()),
                ));
            }
        }
        let problem = workload(&spec.workload)?;
        if comm.rank() == 0 {
            println!(
                "steepest dist train: {} on {} with {} MPI ranks, {} steps",
                spec.algo,
                spec.workload,
                comm.size(),
                spec.steps
            );
        }
        let mine = train_rank(comm, problem.as_ref(), spec)?;
        let before = comm.traffic().clone();
        let all = comm.all_gather_f64(&stats(&mine))?;
        if comm.rank() == 0 {
            let reports: Vec<Result<RankReport>> = all
                .iter()
                .enumerate()
                .map(|(r, s)| {
                    let mut rep = mine.clone();
                    rep.world_rank = r;
                    rep.final_loss = s[0];
                    rep.steps = s[1] as u64;
                    rep.traffic = Traffic {
                        bytes_sent: s[2] as u64,
                        bytes_recv: s[3] as u64,
                        messages: s[4] as u64,
                        retries: s[5] as u64,
                        sim_seconds: s[6],
                        ..before.clone()
                    };
                    rep.model = s[7..].to_vec();
                    Ok(rep)
                })
                .collect();
            print!("{}", crate::cli::summary(spec, &reports));
            let ok: Vec<&RankReport> = reports.iter().filter_map(|r| r.as_ref().ok()).collect();
            let _ = loss_of_mean(spec, &ok)?;
        }
        Ok(())
    })
}

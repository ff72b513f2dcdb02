//! Multi-process check of the MPI backend (run under `mpirun -np N`): every
//! distributed algorithm trains its registry demo over MPI, and rank 0
//! compares each rank's final model and byte counts with an in-process run of
//! the same N workers: they must agree bit for bit.

use std::process::ExitCode;

use steepest_dist::collective::Collective;
use steepest_dist::inproc::Faults;
use steepest_dist::mpi_backend::with_world;
use steepest_dist::registry::{self, parse_hyper};
use steepest_dist::train::{train_inproc, train_rank, workload, TrainSpec};
use steepest_dist::Result;

fn check() -> Result<bool> {
    with_world(None, |comm| {
        let n = comm.size();
        let mut all_ok = true;
        for e in registry::registry() {
            let mut spec = TrainSpec::new(e.name, parse_hyper(e.demo)?, "noisy-quadratic");
            spec.steps = 30;
            spec.eval_every = 0;
            spec.seed = 5;
            let problem = workload(&spec.workload)?;
            let before = comm.traffic().clone();
            let mine = train_rank(comm, problem.as_ref(), &spec)?;
            let mut stats = vec![mine.traffic.bytes_sent as f64 - before.bytes_sent as f64];
            stats.push(mine.traffic.bytes_recv as f64 - before.bytes_recv as f64);
            stats.extend_from_slice(&mine.model);
            let all = comm.all_gather_f64(&stats)?;
            if comm.rank() == 0 {
                let local = train_inproc(&spec, n, None, Faults::default())?;
                let mut ok = true;
                for (r, (m, l)) in all.iter().zip(&local).enumerate() {
                    let l = l.as_ref().map_err(|e| steepest_dist::Error::Transport(e.to_string()))?;
                    let same_model = m[2..] == l.model[..];
                    let same_bytes = m[0] as u64 == l.traffic.bytes_sent && m[1] as u64 == l.traffic.bytes_recv;
                    if !(same_model && same_bytes) {
                        ok = false;
                        println!(
                            "FAIL {} rank {r}: model equal {same_model}, bytes mpi {}/{} vs in-process {}/{}",
                            e.name, m[0], m[1], l.traffic.bytes_sent, l.traffic.bytes_recv
                        );
                    }
                }
                println!(
                    "{} {} on {n} MPI ranks: final loss {:.6}, {} bytes sent by rank 0",
                    if ok { "ok  " } else { "FAIL" },
                    e.name,
                    mine.final_loss,
                    all[0][0]
                );
                all_ok &= ok;
            }
        }
        let verdict = comm.all_gather_f64(&[f64::from(u8::from(all_ok))])?;
        let agree = verdict[0][0] == 1.0;
        if comm.rank() == 0 && agree {
            println!("MPI and in-process runs all agree bit for bit ({n} ranks)");
        }
        Ok(agree)
    })
}

fn main() -> ExitCode {
    match check() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

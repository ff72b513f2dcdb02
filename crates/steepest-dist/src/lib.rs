//! # steepest-dist
//!
//! Communication-efficient distributed training on top of the steepest
//! registry: every inner and outer optimizer is an ordinary registry optimizer
//! ([`steepest::Optimizer`], built by name and [`steepest::Hyper`]).
//!
//! - [`collective`]: the [`Collective`] trait (all-reduce, broadcast,
//!   all-gather, all-to-all, point-to-point, barrier, vote), with per-rank
//!   byte counts, checksummed messages and an optional link model.
//! - [`inproc`]: threads and channels, deterministic, with fault injection
//!   (kill a rank at a step, corrupt the m-th message of a rank, delay a rank).
//! - [`mpi_backend`] (cargo feature `mpi`): the same trait over MPI (rsmpi on
//!   the system's Open MPI), run with `mpirun -np N steepest dist train ...`.
//! - [`algo`]: DDP, DiLoCo, NoLoCo, Distributed Lion, 1-bit Adam, AdLoCo, semi-decentralized
//!   S2S/S2A, QSDP, and the
//!   distributed [`registry`] every algorithm joins.
//! - [`bench`]: `steepest bench --suite distributed` (loss against steps,
//!   bytes and simulated time; bytes per worker against DDP).
//! - [`train`]: the training driver over lab workloads, faults, checkpoints,
//!   and the `steepest dist train` command line ([`cli`]).
//!
//! Determinism: every reduction sums contributions in rank order with fixed
//! chunk boundaries, so every rank holds identical bits and the results do not
//! depend on thread scheduling or on the backend (in-process and MPI agree bit
//! for bit).

#![warn(missing_docs)]

pub mod algo;
pub mod bench;
pub mod checkpoint;
pub mod cli;
pub mod collective;
pub mod error;
pub mod inproc;
#[cfg(feature = "mpi")]
pub mod mpi_backend;
pub mod registry;
pub mod train;

pub use collective::{Collective, Link, ReduceOp, Traffic, Vote};
pub use error::{Error, Result};
pub use inproc::{run_inproc, Faults, InProcComm};

//! Errors of the distributed layer: never a panic, always a value naming what failed.

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad configuration (hyperparameters, optimizers, workers), naming the field.
    #[error(transparent)]
    Steepest(#[from] steepest::Error),
    /// A bad run configuration outside the algorithm's hyperparameters.
    #[error("invalid {field}: {message}")]
    Config {
        /// The offending option.
        field: String,
        /// Why.
        message: String,
    },
    /// A peer (world rank) is gone: its channel closed or it was killed.
    #[error("rank {0} is gone")]
    PeerLost(usize),
    /// A message failed its checksum.
    #[error("corrupted message from rank {from}: checksum mismatch")]
    Corrupt {
        /// World rank of the sender.
        from: usize,
    },
    /// This rank was killed by fault injection.
    #[error("rank killed by fault injection at step {0}")]
    Killed(u64),
    /// Transport failure (timeouts, protocol mismatches, MPI).
    #[error("transport: {0}")]
    Transport(String),
    /// A synchronization could not be committed after all attempts.
    #[error("synchronization not committed after {attempts} attempts: {last}")]
    GaveUp {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// File system.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The lab (workloads, data).
    #[error("lab: {0}")]
    Lab(String),
}

impl Error {
    /// A configuration error naming `field`.
    pub fn config(field: &str, message: impl Into<String>) -> Error {
        Error::Config {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

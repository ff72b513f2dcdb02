//! Real multi-process runs under `mpirun` (cargo feature `mpi`; needs Open MPI:
//! `apt-get install openmpi-bin libopenmpi-dev libclang-dev`). Every
//! algorithm's MPI run must equal the in-process run bit for bit, on 2, 3 and 4 ranks.
#![cfg(feature = "mpi")]

use std::process::Command;

#[test]
fn mpi_runs_equal_in_process_runs() {
    let exe = env!("CARGO_BIN_EXE_steepest-dist-mpi-check");
    for np in [2, 3, 4] {
        let out = Command::new("mpirun")
            .args(["--allow-run-as-root", "--oversubscribe", "-np", &np.to_string(), exe])
            .env("OMPI_MCA_btl", "self,tcp")
            .env("OMPI_MCA_btl_tcp_if_include", "lo")
            .env("OMPI_MCA_oob_tcp_if_include", "lo")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1")
            .output()
            .expect("mpirun not found: install openmpi-bin");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("all agree bit for bit"),
            "mpirun -np {np} failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
    }
}

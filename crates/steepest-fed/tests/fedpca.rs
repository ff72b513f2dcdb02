use steepest_fed::algorithms::fedpca::*;

#[test]
#[ignore]
fn explore() {
    for seed in [1u64, 2, 3] {
    let p = PcaProblem::synthetic(&PcaProblemConfig::default(), seed).unwrap();
    let cen = centralised(&p, 5).unwrap();
    println!("central vs truth {:.4} f1 {:.4}", subspace_distance(&cen, &p.basis, 40, 5), anomaly_f1(&p, &cen, 5, 0.99).unwrap());
    for variant in [Variant::FedPg, Variant::FedPe] {
        for eta in [1e-2, 2e-2] {
            for frac in [0.1] {
                let cfg = FedPcaConfig { variant, components: 5, eta, fraction: frac, seed: 2, ..Default::default() };
                let r = run(&p, &cfg).unwrap();
                println!("{variant:?} eta {eta} frac {frac}: dist {:.4} f1 {:.4}", subspace_distance(&r.z, &cen, 40, 5), anomaly_f1(&p, &r.z, 5, 0.99).unwrap());
            }
        }
    }
    }
}

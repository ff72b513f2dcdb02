use steepest_fed::algorithms::psofed::*;

#[test]
fn explore() {
    for &av in &[1.0, 0.25] {
    for &m in &[4usize, 20, 50, 100, 150, 200] {
        let cfg = PsoFedConfig { shared: m, attack_var: av, iters: 3000, ..PsoFedConfig::default() };
        let c = monte_carlo(&cfg, 1, 3).unwrap();
        eprintln!("av={av} M={m}: it1000 {:.2} it2000 {:.2} ss {:.2}", c[1000], c[2000], steady_state_db(&c, 500));
    }
    }
}

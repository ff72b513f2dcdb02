use steepest_fed::algorithms::fald::*;

#[test]
#[ignore]
fn explore() {
    for h in [0.1, 0.3] {
    let p = BlrProblem::synthetic(&BlrConfig { heterogeneity: h, ..Default::default() }, 1).unwrap();
    let (m, s) = p.posterior();
    for eta in [2e-5, 5e-5, 1e-4] {
        let mut line = format!("h {h} eta {eta}:");
        for k in [1usize, 5, 20, 50] {
            let (mu, sig) = stationary(&p, eta, k, Noise::Independent, 1.0).unwrap();
            let w = steepest_fed::algorithms::dense::w2_gaussian(&mu, &sig, &m, &s);
            line += &format!(" K{k} {w:.4}");
        }
        let steps = 400_000;
        for (name, part) in [("I", Participation::SchemeI(5)), ("II", Participation::SchemeII(5))] {
            let cfg = FaldConfig { eta, local_steps: 5, rounds: steps / 5, burn_in: steps / 50, participation: part, seed: 3, ..Default::default() };
            let r = run(&p, &cfg).unwrap();
            line += &format!(" {name}(K5) {:.4}", r.w2_to(&m, &s));
        }
        let r = sgld(&p, eta, steps, steps / 10, 4).unwrap();
        line += &format!(" sgld {:.4}", r.w2_to(&m, &s));
        println!("{line}");
    }
    }
}
